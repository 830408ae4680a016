"""The interface between the one training loop and whatever it trains.

A config names a module (`config.task`) with
`make_task(config, model, total_steps, example_inputs) -> Task`.
The loop owns everything else: devices, batches, chunking, evaluation cadence, checkpoints,
resume, logging, NaN guards. A task is plain functions over a plain pytree state:

- supervised (MLP, convnet, RNN): state = params + model state + optimizer state + step;
- several folds or seeds: the same functions under jax.vmap over a leading axis;
- GAN: the state holds two (params, opt_state) pairs and train_step updates both;
- DQN: the state holds environment, replay buffer and target params; the batch is unused;
- VAE: train_step draws its noise from fold_in(state.rng, state.step).
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
  # (rng, example batch) -> state; the state has an integer `step` field.
  init: Callable[[Any, Batch], State]
  # (state, batch) -> (state, metrics): pure, jit-compiled once. Metrics are scalars; they
  # include 'loss' (the NaN guard reads it) and 'count' (examples, to weight averages).
  train_step: Callable[[State, Batch], tuple[State, dict]]
  # (state, batch) -> metric sums over the batch's weighted examples, with 'count'.
  eval_step: Callable[[State, Batch], dict]
  # (state, inputs) -> outputs, as Keras' predict() returns them.
  predict: Callable[[State, Any], Any]
  # example batch -> a printable model summary (layers, shapes, parameter counts).
  summary: Callable[[Batch], str]
  # state -> the parameters alone (norms, export, comparisons).
  params: Callable[[State], Any]
  # (state, {'params/<path>' or 'batch_stats/<path>': array}) -> the state starting from
  # those values (pretrained embeddings, converted weights); None if the task cannot.
  with_params: Callable[[State, dict], State] | None = None
  # state -> every model variable by collection ({'params': ..., 'batch_stats': ...}).
  variables: Callable[[State], dict] | None = None


def make_model(model_config):
  """The linen Module named by config.model (a plain import, no registry)."""
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
  kwargs = model_config.kwargs.to_dict()
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
                   jax.ShapeDtypeStruct(inputs.shape, inputs.dtype))
  return order


def make_task(config, model, total_steps: int, example_inputs=None) -> Task:
  """The Task of config.task; example_inputs (a batch of inputs, or their shape and dtype)
  lets it look at the model's layers (config.unfreeze_from)."""
  try:
    module = importlib.import_module(config.task)
  except ModuleNotFoundError as e:
    raise UserError(f'task={config.task!r} cannot be imported ({e})') from None
  if not hasattr(module, 'make_task'):
    raise UserError(f'task={config.task!r} has no '
                    'make_task(config, model, total_steps, example_inputs)')
  return module.make_task(config, model, total_steps, example_inputs)
