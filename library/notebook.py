"""Training from a notebook: one call takes a config and gives back the results and the state.

  from configs.convnets import mnist_convnet
  from library import notebook
  run = notebook.fit(mnist_convnet.get_config('embedded'))
  run.results['test']          # results.json's dict
  run.show()                   # history.png (and the run's other pictures), inline
  run.predict(images)          # Keras' predict(): softmax probabilities, ...
  run = notebook.load(workdir)  # a run elsewhere, read only (it may still be training)

`fit` is the loop of scripts.train (`train.train_and_evaluate`), with its checkpoints, resume
and results; it returns a `Run` holding the trained state. The workdir defaults to
runs/notebooks/<name>-<hash of the config>, so rerunning a cell with the same config reloads
its finished run at once (or resumes it where it was interrupted), and a changed config trains
in a workdir of its own: no cell is refused as "a different config". The data are not part of
that key: after changing a file the config reads, or the arrays given, pass
`start_over=True` (it trains again; the old run is moved aside, not deleted). `config` may be a ConfigDict or a config file path with its variant
('configs/mlp/mnist_dense.py:embedded'); `overrides` sets keys as --config.key=value does.
"""
import dataclasses
import hashlib
import os
from typing import Any

import jax
import numpy as np

from library import cli, config as config_lib, train
from library.errors import UserError

# Where fit() puts a run without a workdir of its own (DLWR_NOTEBOOK_RUNS overrides it).
RUNS = os.environ.get('DLWR_NOTEBOOK_RUNS', os.path.join('runs', 'notebooks'))


@dataclasses.dataclass
class Run:
  """A finished run: results.json's dict, the trained state and what made it."""
  workdir: str
  config: Any
  results: dict
  state: Any
  task: Any
  setup: Any                           # train.Setup: datasets, members, ...

  def predict(self, inputs, member: int | None = None):
    """The task's predict (Keras' outputs: softmax probabilities, ...) on raw inputs as the
    source gives them (pixels 0-255, ...): the run's own preprocessing (data.scale, flatten,
    standardization) is applied, as scripts.predict does, and images of another size or
    colour are converted as it converts image files (saying so), one image or a batch. With members: member `member`'s
    outputs, or every member's on a leading axis when it is None."""
    from library import inference  # pylint: disable=import-outside-toplevel
    from library.data import preprocessing  # pylint: disable=import-outside-toplevel
    if self.task.predict is None:
      raise UserError(f'task={self.config.task!r} has no predict')
    lay, datasets = self.setup.members, self.setup.datasets
    if lay is not None and lay.member_inputs is not None:
      raise UserError('these members each fitted their own preprocessing (Datasets.refit), '
                      'which run.predict cannot apply: predict with the project\'s own '
                      'function (its README names it)')
    if lay is not None and lay.stats is not None:
      raise UserError('these members each standardized with their own training rows, which '
                      'run.predict does not apply yet: train one model to predict with')
    raw = np.asarray(inputs)
    if datasets is not None:
      if datasets.raw_input_shape:   # colour or grey, any size, one example or a batch
        raw = inference.conform(raw, datasets.raw_input_shape)
      inference.check_range(raw, datasets.raw_input_range, self.config.data.scale)
      inference.check_examples(raw, datasets.raw_input_profile)
    x = preprocessing.transform_inputs(raw, self.config.data,
                                       datasets.stats if datasets is not None else None)
    if lay is None:
      return np.asarray(jax.jit(self.task.predict)(self.state, x))
    state = jax.tree.map(lambda v: v[:lay.size], jax.device_get(self.state))
    out = np.asarray(jax.jit(jax.vmap(self.task.predict, in_axes=(0, None)))(state, x))
    return out if member is None else out[member]

  def pictures(self, every_step: bool = False) -> list[str]:
    """The run's PNG files: history.png first, then the others (members' curves, artifacts;
    of an artifact drawn at every evaluation, '<name>-step<N>.png', the last one unless
    `every_step`)."""
    found = []
    for root, _, names in os.walk(self.workdir):
      if 'previous-' in root or 'checkpoints' in root:
        continue
      found += [os.path.join(root, n) for n in sorted(names) if n.endswith('.png')]
    if not every_step:
      last = {}
      for path in found:
        name, _, step = os.path.basename(path)[:-4].rpartition('-step')
        if name and step.isdigit():
          key = (os.path.dirname(path), name)
          if key not in last or int(step) > last[key][0]:
            last[key] = (int(step), path)
      kept = {path for _, path in last.values()}
      found = [p for p in found if p in kept or '-step' not in os.path.basename(p)]
    return sorted(found, key=lambda p: (os.path.basename(p) != 'history.png', p))

  def show(self, *names: str, every_step: bool = False) -> None:
    """Shows the run's pictures inline (all of them, or those whose file names contain one of
    `names`)."""
    from IPython import display  # pylint: disable=import-outside-toplevel
    for path in self.pictures(every_step):
      if not names or any(n in os.path.basename(path) for n in names):
        display.display(display.Image(filename=path))


def describe_devices() -> dict:
  """Prints and returns what JAX sees: its version, the backend and the devices (a notebook's
  first cell calls this, so that a Colab user knows whether the GPU or TPU is in use)."""
  import platform  # pylint: disable=import-outside-toplevel
  devices = jax.devices()
  info = {'python': platform.python_version(), 'jax': jax.__version__,
          'backend': jax.default_backend(), 'devices': len(devices),
          'device_kind': devices[0].device_kind, 'processes': jax.process_count()}
  print(f'JAX {info["jax"]} on Python {info["python"]}: {info["devices"]} '
        f'{info["backend"].upper()} device(s) ({info["device_kind"]})')
  return info


def _as_config(config, overrides: dict):
  if isinstance(config, str):
    path, _, variant = config.partition(':')
    cli.check_config_path(path)
    config = cli.config_module(path).get_config(variant or None)
  else:
    config = config_lib.from_json(config_lib.to_json(config))   # a copy: the cell's stays
  for key, value in overrides.items():
    *parents, name = key.split('.')
    node = config
    for part in parents:
      node = node.get(part) if hasattr(node, 'get') else None
      if node is None:
        raise UserError(f'the config has no key {key!r}')
    if name not in node and parents != ['model', 'kwargs']:
      raise UserError(f'the config has no key {key!r}')
    node[name] = value
  return config


def workdir_for(config) -> str:
  """runs/notebooks/<model or task>-<12 hex digits of the config's JSON>."""
  text = config_lib.to_json(config)
  name = (config.model.get('name') or config.task.rsplit('.', 1)[-1]).lower()
  return os.path.join(RUNS, f'{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}')


def fit(config, workdir: str | None = None, *, start_over: bool = False, arrays=None,
        **overrides) -> Run:
  """Trains `config` (a ConfigDict, or 'path.py[:variant]') and returns the finished Run.

  Keyword arguments beyond these set config keys: fit(cfg, num_epochs=2.0) or, for nested
  ones, fit(cfg, **{'optimizer.learning_rate': 1e-3}).
  """
  config = _as_config(config, overrides)
  workdir = workdir or workdir_for(config)
  results, state, setup = train.train_and_evaluate(config, workdir, arrays=arrays,
                                                   start_over=start_over, return_state=True)
  return Run(workdir, config, results, state, setup.task, setup)


def load(workdir: str, checkpoint: str = 'latest', *, arrays=None) -> Run:
  """A workdir's run, read only: its checkpoint `checkpoint` (latest, best or a step) and its
  results.json ({} while it trains). Nothing is written and no lock is taken, so a run
  training in that workdir (from a terminal, another notebook) goes on undisturbed; the
  Run's predict and show work as after fit. arrays: the in-memory data of a run trained with
  data.source='arrays', as fit was given them."""
  import json  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  config = inference.load_config(workdir)
  setup = train.setup(config, arrays)
  state, _ = inference.restore(workdir, config, setup.state, checkpoint,
                               setup.hook.size)
  results = {}
  if os.path.exists(os.path.join(workdir, 'results.json')):
    with open(os.path.join(workdir, 'results.json')) as f:
      results = json.load(f)
  return Run(workdir, config, results, state, setup.task, setup)
