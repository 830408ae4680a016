"""A trained workdir back in memory: evaluate a split, predict on new inputs."""
import json
import os
import sys

import jax
import numpy as np

from library import checkpoints, config as config_lib, members, parallel, steps
from library.data import features, pipeline, preprocessing
from library.errors import UserError


def load_config(workdir: str):
  if not os.path.exists(workdir):
    raise UserError(f'--workdir={workdir}: no such folder')
  if not os.path.isdir(workdir):
    raise UserError(f'--workdir={workdir} is a file, not a training workdir')
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{workdir} has no config.json: not a training workdir')
  with open(path) as f:
    return config_lib.from_json(f.read(), path)


def _checkpointer(workdir: str, config) -> checkpoints.Checkpointer:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise UserError(f'{workdir} has no checkpoints/')
  # Read only: a run training in this workdir is never disturbed (no clean-up, no lock).
  return checkpoints.Checkpointer(
      directory, config.checkpoint.keep, config.checkpoint.best_metric,
      config.checkpoint.best_mode, remedy=f'train it again (python -m scripts.train '
      f'--workdir={workdir} --config=... --start_over moves the old run aside)',
      read_only=True)


def _pick_step(ckpt: checkpoints.Checkpointer, which: str) -> int | None:
  if which == 'latest':
    return None
  if which == 'best':
    step = ckpt.best_step()
    if step is None:
      raise UserError('no best checkpoint: the run kept none (checkpoint.best_metric unset?)')
    return step
  if which.isdigit() and int(which) in ckpt.all_steps():
    return int(which)
  raise UserError(f'checkpoint={which!r}: use latest, best or one of steps {ckpt.all_steps()}')


def _keeps_best_state(config) -> bool:
  """Whether the run saved a best state beside its state: members.keep_best (each member's
  best evaluation) or EarlyStopping's restore_best_weights."""
  return bool(config.members.get('keep_best') or (
      config.callbacks.early_stopping.monitor and
      config.callbacks.early_stopping.restore_best_weights))


def restore(workdir, config, state, which, size: int | None = None):
  """(state, meta) of a workdir's checkpoint `which` (latest, best or a step), into `state`'s
  structure and placement; `size`: its number of members, if it has members (a checkpoint
  written on another device count then comes back re-padded for this one: Setup.hook.size). For a
  run that kept a best state (members.keep_best, restore_best_weights), 'best' is that state,
  as saved with the latest checkpoint: the weights its results.json reports."""
  ckpt = _checkpointer(workdir, config)
  kept = which == 'best' and _keeps_best_state(config)
  try:     # closed on every path: an unclosed manager's cleanup thread outlives the interpreter
    restored = ckpt.restore(checkpoints.abstract(state),
                            None if kept else _pick_step(ckpt, which), with_best_state=kept,
                            members=size)
  finally:
    ckpt.close()
  if restored is None:
    raise UserError(f'{workdir}/checkpoints holds no checkpoint')
  restored[1]['passed_over'] = [[s, why] for s, why in ckpt.skipped]
  passed = ''.join(f'; passed over step {s}: {why}' for s, why in ckpt.skipped)
  print(f'read the checkpoint of step {restored[1]["step"]} in {workdir}{passed}',
        file=sys.stderr, flush=True)
  if kept:
    state, meta, best = restored
    if best is None:
      raise UserError(f'{workdir}: its latest checkpoint holds no best state yet (none was '
                      'evaluated); use --checkpoint=latest')
    return best, meta
  return restored[:2]


def load_state(workdir: str, which: str = 'latest'):
  """(state, meta) of a workdir's checkpoint, on the mesh of all devices."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = load_config(workdir)
  s = train.setup(config)
  return restore(workdir, config, s.state, which, s.hook.size)


def evaluate_workdir(workdir: str, split: str = 'test', which: str = 'latest') -> dict:
  """Metrics of a workdir's checkpoint on one split of the data it was trained on."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = load_config(workdir)
  s = train.setup(config)
  if s.task.eval_step is None or not s.feed.splits:
    raise UserError(f'{workdir} is a run of task={config.task!r}, which has no evaluation')
  if split not in s.feed.splits:
    raise UserError(f'split={split!r} is not one of {", ".join(sorted(s.feed.splits))}')
  state, meta = restore(workdir, config, s.state, which, s.hook.size)
  metrics = s.feed.evaluate(state, split)
  if s.members is not None:    # members: each one's metrics, and their mean
    metrics = {name: {'mean': float(np.mean(v)), 'members': np.asarray(v).tolist()}
               for name, v in metrics.items()}
  return {'split': split, 'step': meta['step'], **metrics}


def conform(x, raw_shape: tuple[int, ...], what: str = 'the inputs') -> np.ndarray:
  """An array of examples as training saw them: (N, *raw_shape). One example gets its batch
  axis; images of another size or colour are converted as the image files are (PIL:
  bilinear resize, RGB -> L by ITU-R 601 luma, grey repeated to RGB, alpha dropped), with a
  note saying what was converted. Anything else that does not fit is a UserError."""
  x = np.asarray(x)
  raw_shape, given = tuple(raw_shape), x.shape
  if x.shape == raw_shape:
    return x[None]
  if x.shape[1:] == raw_shape:
    return x
  # A picture is at least 8 x 8 pixels: a (2, 5) array is no image to resize.
  spatial = x.shape[:2] if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3, 4)) else (
      x.shape[1:3])
  if (len(raw_shape) != 3 or x.ndim not in (2, 3, 4) or not np.issubdtype(x.dtype, np.number)
      or min(spatial) < 8):
    raise UserError(f'{what} have shape {x.shape}; expected (N, '
                    f'{", ".join(map(str, raw_shape))}) as in training')
  height, width, channels = raw_shape
  # One image (H, W) or (H, W, 1|3|4), or a batch (N, H, W) or (N, H, W, C).
  if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3, 4)):
    x = x[None]
  if x.ndim == 3:
    x = x[..., None]
  from PIL import Image  # pylint: disable=import-outside-toplevel
  out = []
  for image in x.astype(np.float32):
    if image.shape[-1] == 4:
      image = image[..., :3]
    if image.shape[-1] == 3 and channels == 1:
      image = image @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    elif image.shape[-1] == 1 and channels == 3:
      image = np.repeat(image, 3, axis=-1)
    if image.shape[-1] != channels:
      raise UserError(f'{what} have {image.shape[-1]} channels; training saw {channels}')
    if image.shape[:2] != (height, width):
      image = np.stack([np.asarray(Image.fromarray(image[..., c], mode='F').resize(
          (width, height), Image.BILINEAR)) for c in range(channels)], axis=-1)
    out.append(image)
  print(f'note: {what} of shape {given} converted to {len(out)} x {height}x{width}x'
        f'{channels}, as training saw them', file=sys.stderr, flush=True)
  return np.stack(out)


def check_examples(raw: np.ndarray, profile: dict | None, names=None) -> None:
  """Says, one line each, which examples are blank or unlike every training example (their
  mean value outside the training examples' spread by more than its width: a digit drawn dark
  on light where training digits were light on dark, say): their predictions mean little."""
  if profile is None or not raw.size or not np.issubdtype(raw.dtype, np.number):
    return
  flat = raw.reshape(len(raw), -1).astype(np.float64)
  width = max(profile['mean_high'] - profile['mean_low'], 1e-12)
  for i, (mean, std) in enumerate(zip(flat.mean(axis=1), flat.std(axis=1))):
    name = names[i] if names is not None and len(names) == len(raw) else f'input {i}'
    if std == 0 and profile['std_low'] > 0:
      print(f'note: {name} is blank (every value {mean:g}); no training example was: its '
            'prediction means little', file=sys.stderr, flush=True)
    elif mean < profile['mean_low'] - width or mean > profile['mean_high'] + width:
      print(f'note: {name} has mean value {mean:.4g}, far from every training example\'s '
            f'({profile["mean_low"]:.4g} to {profile["mean_high"]:.4g}): an inverted '
            'background (dark on light)? Its prediction means little', file=sys.stderr,
            flush=True)


def load_inputs(paths: list[str], raw_shape: tuple[int, ...]) -> np.ndarray:
  """A .npy batch, or PNG/JPEG files resized to the training images' (H, W, C)."""
  if len(paths) == 1 and paths[0].endswith('.npy'):
    if not os.path.exists(paths[0]):
      raise UserError(f'input {paths[0]!r}: no such file')
    return conform(np.load(paths[0], allow_pickle=False), raw_shape, f'input {paths[0]}')
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if len(raw_shape) != 3:
    raise UserError(f'images cannot be fed to a model trained on inputs of shape {raw_shape}')
  height, width, channels = raw_shape
  images = []
  mode = 'L' if channels == 1 else 'RGB'
  for path in paths:
    try:
      image = Image.open(path)
      image.load()
    except (OSError, ValueError) as e:
      raise UserError(f'input {path!r} is not a readable image ({e})') from None
    if image.mode != mode or image.size != (width, height):
      print(f'note: {path} is {image.size[0]}x{image.size[1]} {image.mode}; converted to the '
            f'{width}x{height} {mode} that training saw', file=sys.stderr, flush=True)
    # bilinear, as the image_folder source resized the training images
    array = np.asarray(image.convert(mode).resize((width, height), Image.BILINEAR), np.float32)
    images.append(array.reshape(height, width, channels))
  return np.stack(images)


def check_range(raw: np.ndarray, trained, scale: float) -> None:
  """Refuses inputs that cannot be what training saw: values already scaled to [0, 1] where
  training's raw inputs went far above 1 (predict scales them itself, by data.scale), and
  says so where they leave training's range by more than its width."""
  if trained is None or not raw.size or not np.issubdtype(raw.dtype, np.number):
    return
  low, high = trained
  lo, hi = float(np.min(raw)), float(np.max(raw))
  # Floats in [0, 1] (not integer codes such as a 0/1 mask) where training saw far larger.
  if high > 2.0 and 0.0 < hi <= 1.0 and np.issubdtype(raw.dtype, np.floating):
    raise UserError(f'the inputs lie in [{lo:g}, {hi:g}], but training saw raw values in '
                    f'[{low:g}, {high:g}]: give them as training did; predict applies its own '
                    f'preprocessing (data.scale={scale:g}), so scaled inputs would be scaled '
                    'twice')
  width = max(high - low, 1e-12)
  if lo < low - width or hi > high + width:
    print(f'note: the inputs lie in [{lo:g}, {hi:g}], far outside the [{low:g}, {high:g}] '
          'training saw; the outputs may mean little', file=sys.stderr, flush=True)


def predict_workdir(workdir: str, paths: list[str], which: str = 'latest') -> np.ndarray:
  """The model's outputs (class probabilities for classifiers) on new inputs."""
  config = load_config(workdir)
  if members.enabled(config):
    raise UserError(f'{workdir} holds {config.members.scheme or "value"} members, not one '
                    'model: predict with a model trained alone (scripts.train without members)')
  if not os.path.exists(os.path.join(workdir, 'data_spec.json')):
    raise UserError(f'{workdir} has no data_spec.json: its task={config.task!r} trained '
                    'without a dataset to predict on')
  with open(os.path.join(workdir, 'data_spec.json')) as f:
    spec = json.load(f)
  raw = load_inputs(paths, tuple(spec['input_shape']))
  check_range(raw, spec.get('input_range'), config.data.scale)
  check_examples(raw, spec.get('input_profile'), paths)
  stats = None
  if config.data.standardize:
    with np.load(os.path.join(workdir, 'preprocessing.npz'), allow_pickle=False) as f:
      stats = dict(f)
  inputs = preprocessing.transform_inputs(raw, config.data, stats)
  if features.enabled(config.data.features):
    inputs = features.Extractor(config.data.features, inputs)(inputs)
  mesh = parallel.make_mesh(jax.devices()[:1])
  example = {'inputs': inputs[:1], 'labels': np.zeros(1, np.int32)}
  datasets = pipeline.Datasets({'train': example}, None)
  task = config_lib.task_module(config.task).make_task(config, datasets, 1)
  if task.predict is None:
    raise UserError(f'task={config.task!r} has no predict')
  state = steps.make_init(task, mesh)(jax.random.PRNGKey(config.seed),
                                      datasets.example(1))
  state, _ = restore(workdir, config, state, which)
  return np.asarray(jax.jit(task.predict)(state, inputs))


def describe(row) -> str:
  """One prediction in words: the class and its probability. A one-output model (one
  sigmoid) gives the probability of class 1, which is the class when above 0.5, as Keras'
  binary accuracy thresholds it; the argmax of that one-element row would always be 0."""
  row = np.atleast_1d(np.asarray(row))
  if row.size == 1:
    return (f'class {int(row[0] > 0.5)} (p(class 1) = {row[0]:.4f}; class 1 when above 0.5, '
            'class 0 otherwise)')
  top = int(np.argmax(row))
  with np.printoptions(precision=4, suppress=True, linewidth=120):
    return f'class {top} ({row[top]:.4f})  {row}'


def write_samples(workdir: str, output: str, which: str, assignments) -> tuple[dict, list]:
  """({name: artifact}, the paths written) of the task's artifacts (Task.artifacts) for the
  workdir's checkpoint `which`, written into `output` (default WORKDIR/samples), with the
  task_config.KEY=VALUE assignments applied for this call only (scripts.generate)."""
  from library import train, writers  # pylint: disable=import-outside-toplevel
  config = load_config(workdir)
  for assignment in assignments:
    if not assignment.startswith('task_config.'):
      raise UserError(f'--set={assignment!r}: only task_config.KEY=VALUE (sampling settings) '
                      'can change here')
    config_lib.apply_override(config, assignment)
  s = train.setup(config)
  task = s.task
  if task.artifacts is None:
    raise UserError(f'{workdir} is a run of task={config.task!r}, which writes no samples')
  state, meta = restore(workdir, config, s.state, which, s.hook.size)
  step = int(meta['step'])
  produced = s.hook.artifacts(task, state, step)
  paths = writers.write_artifacts(workdir, step, produced,
                                  output or os.path.join(workdir, 'samples'))
  return produced, paths
