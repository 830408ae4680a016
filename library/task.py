"""The seam between the one training loop and whatever it trains.

A config names a module (`config.task`) with

  make_task(config, data, total_steps) -> Task      # data: a Datasets, or None
  load_data(config, arrays) -> Datasets             # optional: a task with a dataset
  default_task_config() -> ConfigDict               # optional: the task's own settings
  validate_task_config(config)                      # optional: checks them (UserError)

The loop owns everything else: devices and the mesh, batches and their gathering on device,
chunks of steps per dispatch, evaluation cadence, checkpoints and resume, SIGTERM, callbacks,
progress, metrics files and TensorBoard, the NaN/Inf guard, members (folds, seeds, values) as
a leading axis. A task is plain functions over a plain pytree state, and its settings are its
own config section (`config.task_config`), which library/config.py never names.

What the loop assumes of a task, and nothing more:
- The state is a pytree with an integer `step` field (the loop reads it on resume).
- `train_step(state, batch) -> (state, metrics)` is pure: jit-compiled once, scanned over a
  chunk of steps, vmapped over members. Its randomness comes from keys in the state
  (`fold_in(key, step)`), so a resumed run replays it. Metrics are scalars; every floating
  one is checked for NaN/Inf; `count` (the batch's weight) is optional and weights the
  running means when present; `learning_rate` and `param_norm` are shown as last values.
- Without a dataset (no load_data), `batch` is None: the task makes its own inputs on the
  device, and its durations and cadences are in steps. Its `eval_step(state, None)`, if any,
  makes its own evaluation inputs too (greedy episodes); the sums it returns are the
  'validation' split, so checkpoint.best_metric and callbacks can watch them.
- With one, a batch is a pytree of named arrays gathered on the device by index (several
  inputs, several targets, all the same leading size), plus 'weights': 0 for the padding of a
  last partial batch.

The families, walked through it:
- supervised (MLP, convnet, RNN; library/supervised.py): state = params + model state (batch
  statistics) + optimizer state + step + rng; load_data is the shared pipeline; eval_step
  returns weighted sums, predict Keras' outputs.
- several inputs or outputs (chapter 7): the same task; inputs and labels are dicts of named
  arrays, the loss a weighted sum over named outputs (task_config.outputs).
- k-fold, seeds, a sweep of values: members. The loop stacks M states (each init with its own
  seed), vmaps train_step and eval_step over them, gathers each member's own batch (its rows,
  its order) and masks members past their own epoch end; a continuous hyperparameter is an
  array in the state found by name (the optimizer's `lr_scale` and injected `weight_decay`,
  supervised's `hyper` for dropout rate and L1/L2), so members differ in values, not in
  programs. A task without a dataset has seeds and values as members (each its own
  environments). The loop shards the member axis over the devices.
- transfer learning: `variables` and `with_params` let the loop start the state from converted
  weights or another run (config.model_init); freezing is the task's optimizer mask.
- VAE (projects/generative/vae.py): a dataset task whose labels are never trained on;
  train_step draws its noise from fold_in(state.rng, state.step); `artifacts` draws the latent
  grid and scatter.
- GAN (projects/generative/gan.py): the state holds two (params, opt_state) pairs, each with
  its own optax chain; one train_step updates both, each player by the gradient of its own
  loss only, and reports both losses (tests/tasks/two_players.py has a small one).
- text generation (projects/generative/text.py): the supervised task on windows of a corpus,
  plus `artifacts` sampling text at several temperatures.
- DQN (projects/reinforcement/dqn.py): no dataset; the state also holds the gymnax
  environment states, the replay buffer and the target params; train_step steps the
  environments on device and learns from the buffer, eval_step plays greedy episodes; seeds
  are members. A batch of environments can be split over the devices (state_sharding)
  instead of replicated. Host environments (Atari's emulators) are stepped by a host
  callback from inside train_step, batched over members by a custom vmap rule; the state
  keeps their identity and step count, not the emulators.
- input optimisation (projects/generative/dream.py, style.py): no dataset; the "params" are
  the image (DeepDream: one array per octave, so that every shape is static, and lax.switch
  on the step picks the octave; style transfer: one L-BFGS iteration per step, with the fixed
  targets in the state); `artifacts` writes the image at each evaluation.
- tabular (final project; projects/tabular/task.py): the supervised task on a competition
  folder's table; inputs are a pytree ({'numeric', 'categorical'} codes), the embedding sizes
  the fitted columns decide reach the model through Datasets.model_kwargs, and the fitted
  preprocessing is saved with the run (Datasets.preprocessing -> preprocessing.json). As
  members, each fold fits its own preprocessing on its own training rows (Datasets.refit):
  every member then gathers its batches from its own copy of the inputs, a leading member
  axis sharded like the state, while the labels stay shared.
"""
import dataclasses
import importlib
from typing import Any, Callable

import flax.linen as nn
import jax

from library.errors import UserError

State = Any
Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Task:
  # (rng, example batch or None) -> state; the state has an integer `step` field.
  init: Callable[[Any, Batch | None], State]
  # (state, batch or None) -> (state, metrics): pure, jit-compiled once. Metrics are scalars.
  train_step: Callable[[State, Batch | None], tuple[State, dict]]
  # state -> the parameters alone (counts, norms, export, comparisons).
  params: Callable[[State], Any]
  # (state, batch) -> metric sums over the batch's weighted examples, with 'count'; None for
  # a task without evaluation on a dataset.
  eval_step: Callable[[State, Batch], dict] | None = None
  # (state, inputs) -> outputs, as Keras' predict() returns them.
  predict: Callable[[State, Any], Any] | None = None
  # example batch or None -> a printable model summary (layers, shapes, parameter counts).
  summary: Callable[[Batch | None], str] | None = None
  # (state, {'params/<path>' or 'batch_stats/<path>': array}) -> the state starting from
  # those values (pretrained embeddings, converted weights); None if the task cannot.
  with_params: Callable[[State, dict], State] | None = None
  # state -> every model variable by collection ({'params': ..., 'batch_stats': ...}).
  variables: Callable[[State], dict] | None = None
  # (mesh, abstract state) -> a sharding per leaf (a prefix tree is enough); None: every leaf
  # replicated. E.g. a batch of environments split over 'data'.
  state_sharding: Callable[[Any, State], Any] | None = None
  # (state, step) -> {name: str (text) or uint8 array (H, W[, C]) (a PNG)}: what the loop
  # writes into workdir/artifacts/ at each evaluation, main process only, named
  # '<name>-step<step>.txt/.png' (with members: each member's state in turn, named
  # '<name>-member<m>'), and scripts.generate from a finished workdir. Called on every process
  # (it may compute on the device).
  artifacts: Callable[[State, int], dict] | None = None
  # {metric: sums -> value} for metrics that are not a mean over examples (AUC from its
  # confusion counts): the step reports their sums (over its examples, and a train step's over
  # them too), the loop adds them over a split or between log lines and reduces them with
  # this. Every other metric is the default evaluation's: its sum over 'count'.
  reducers: dict[str, Callable[[Any], Any]] | None = None


def summary_table(model, *inputs, **call_kwargs) -> str:
  """Flax's table of `model` called on `inputs` (its layers, shapes and parameters), as every
  family's Task.summary shows it: 110 columns, plain text (summary.txt), no FLOPs."""
  rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
  return nn.tabulate(model, rngs, compute_flops=False,
                     console_kwargs={'width': 110, 'force_terminal': False})(
                         *inputs, **call_kwargs)


def make_model(model_config, **from_data):
  """The linen Module named by config.model (a plain import, no registry), with the settings
  the data decides (Datasets.model_kwargs) beside config.model.kwargs."""
  try:
    module = importlib.import_module(model_config.module)
  except ModuleNotFoundError as e:
    raise UserError(f'model.module={model_config.module!r} cannot be imported ({e})') from None
  cls = getattr(module, model_config.name, None)
  if cls is None:
    names = sorted(n for n in dir(module) if not n.startswith('_') and isinstance(
        getattr(module, n), type))
    raise UserError(f'model.name={model_config.name!r} is not in {model_config.module}; '
                    f'it has {", ".join(names)}')
  kwargs = {**model_config.kwargs.to_dict(), **from_data}
  try:
    return cls(**kwargs)
  except TypeError as e:
    raise UserError(f'model.kwargs {sorted(kwargs)} do not fit {model_config.name}: {e}') from None


def layers_in_call_order(model, inputs) -> list[str]:
  """Paths ('conv_base/block3_conv1') of the model's submodules in the order they are first
  called: the order Keras lists layers in, which parameter dictionaries lose (jax sorts them)."""
  order = []

  def record(next_fun, args, kwargs, context):
    path = '/'.join(context.module.path)
    if path and path not in order:
      order.append(path)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda x: model.init({'params': jax.random.key(0),
                                         'dropout': jax.random.key(1)}, x, train=False),
                   jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), inputs))
  return order
