"""Supervised learning as a Task: Keras' fit(loss, metrics) on a linen model.

Models take `(inputs, train: bool)` and return logits; dropout draws from the 'dropout' rng;
other variable collections (batch statistics) are carried in `model_state`.
"""
import re
from typing import Any

import flax
import flax.traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from library import losses, optimizers
from library.data import augment
from library.errors import UserError
from library.task import Task, layers_in_call_order


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any      # variable collections other than params (e.g. batch_stats)
  opt_state: Any
  rng: jax.Array        # per-step keys are fold_in(rng, step): resume replays them exactly


def _weighted_mean(values, weights):
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def make_penalty(reg_config):
  """params -> Keras' kernel-regularizer loss (None when there is no regularization)."""
  l1, l2, pattern = reg_config.l1, reg_config.l2, reg_config.pattern
  if not (l1 or l2):
    return None

  def penalty(params):
    flat = flax.traverse_util.flatten_dict(params, sep='/')
    chosen = [w for path, w in flat.items() if re.search(pattern, path)]
    if not chosen:
      raise UserError(f'regularization.pattern={pattern!r} matches no parameter; the model has '
                      f'{", ".join(sorted(flat))}')
    total = jnp.zeros((), jnp.float32)
    for w in chosen:
      if l1:
        total += l1 * jnp.sum(jnp.abs(w))
      if l2:
        total += l2 * jnp.sum(jnp.square(w))
    return total

  return penalty


def frozen_pattern(config, model: nn.Module, example_inputs) -> str:
  """config.freeze, joined with the layers called before config.unfreeze_from (R book 5.3:
  unfreeze_weights(conv_base, from = "block3_conv1"))."""
  if not config.unfreeze_from:
    return config.freeze
  if example_inputs is None:
    raise ValueError('unfreeze_from needs make_task(..., example_inputs)')
  order = layers_in_call_order(model, example_inputs)
  start = config.unfreeze_from.strip('/')
  if start not in order:
    raise UserError(f'unfreeze_from={config.unfreeze_from!r} is not a layer of the model; its '
                    f'layers are {", ".join(order[:12])}{" ..." if len(order) > 12 else ""}')
  # Frozen: layers before it in call order, not containing it (conv_base holds block3_conv1).
  before = [p for p in order[:order.index(start)] if not start.startswith(p + '/')]
  parts = [f'^{re.escape(p)}/' for p in before] + ([config.freeze] if config.freeze else [])
  return '|'.join(f'(?:{p})' for p in parts) if parts else ''


def make_task(config, model: nn.Module, total_steps: int, example_inputs=None) -> Task:
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps,
                                           frozen_pattern(config, model, example_inputs))
  loss_name = config.loss
  metric_names = tuple(config.metrics)
  penalty = make_penalty(config.regularization)
  aug = config.data.augment if augment.enabled(config.data.augment) else None

  def init(rng, batch):
    params_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    variables = model.init({'params': params_rng, 'dropout': dropout_rng}, batch['inputs'],
                           train=False)
    variables = dict(variables)
    params = variables.pop('params')
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=tx.init(params), rng=state_rng)

  def apply(params, model_state, inputs, train, rng=None):
    variables = {'params': params, **model_state}
    if train and model_state:
      return model.apply(variables, inputs, train=True, rngs={'dropout': rng},
                         mutable=list(model_state))
    rngs = {'dropout': rng} if train else {}
    return model.apply(variables, inputs, train=train, rngs=rngs), model_state

  def train_step(state, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    weights = batch['weights']
    if aug is not None:   # each example its own draw, from the step's key
      batch = dict(batch, inputs=augment.augment(jax.random.fold_in(rng, 1), batch['inputs'],
                                                 aug))

    def loss_fn(params):
      logits, model_state = apply(params, state.model_state, batch['inputs'], True, rng)
      loss = _weighted_mean(losses.per_example_loss(loss_name, logits, batch['labels']),
                            weights)
      if penalty is not None:
        loss += penalty(params)
      return loss, (logits, model_state)

    (loss, (logits, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, 'count': jnp.sum(weights),
               'grad_norm': optax.tree.norm(grads), 'param_norm': optax.tree.norm(params),
               'learning_rate': jnp.asarray(schedule(state.step), jnp.float32)}
    for name in metric_names:
      metrics[name] = _weighted_mean(
          losses.per_example_metric(name, loss_name, logits, batch['labels']), weights)
    new_state = state.replace(step=state.step + 1, params=params, model_state=model_state,
                              opt_state=opt_state)
    return new_state, metrics

  def eval_step(state, batch):
    logits, _ = apply(state.params, state.model_state, batch['inputs'], False)
    weights = batch['weights']
    sums = {'count': jnp.sum(weights),
            'loss': jnp.sum(losses.per_example_loss(loss_name, logits, batch['labels']) *
                            weights)}
    if penalty is not None:   # Keras' evaluate() reports the loss with its penalty
      sums['loss'] += penalty(state.params) * sums['count']
    for name in metric_names:
      sums[name] = jnp.sum(
          losses.per_example_metric(name, loss_name, logits, batch['labels']) * weights)
    return sums

  def predict(state, inputs):
    logits, _ = apply(state.params, state.model_state, inputs, False)
    return losses.output_activation(loss_name, logits)

  def summary(batch):
    rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
    return nn.tabulate(model, rngs, compute_flops=False,
                       console_kwargs={'width': 110, 'force_terminal': False})(
                           batch['inputs'][:1], train=False)

  def variables(state):
    return {'params': state.params, **state.model_state}

  def with_params(state, values):
    """The state with some variables replaced (by 'collection/path') and the optimizer state
    afresh."""
    flat = flax.traverse_util.flatten_dict(variables(state), sep='/')
    for path, value in values.items():
      if path not in flat:
        raise UserError(f'cannot initialize {path!r}: the model has no such variable (it has '
                        f'{", ".join(sorted(flat)[:12])} ...)')
      if tuple(flat[path].shape) != tuple(value.shape):
        raise UserError(f'cannot initialize {path} of shape {tuple(flat[path].shape)} from an '
                        f'array of shape {tuple(value.shape)}')
      flat[path] = jnp.asarray(value, flat[path].dtype)
    new = flax.traverse_util.unflatten_dict(flat, sep='/')
    params = new.pop('params')
    return state.replace(params=params, model_state=new, opt_state=tx.init(params))

  return Task(init=init, train_step=train_step, eval_step=eval_step, predict=predict,
              summary=summary, params=lambda state: state.params, with_params=with_params,
              variables=variables)
