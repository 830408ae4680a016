"""The optax chain from `config.optimizer`: clipping, weight decay, optimizer, schedule, and a
learning-rate scale held in the optimizer state.

The scale (`lr_scale`, 1 at the start) multiplies the updates after the optimizer, so the rate
in effect is schedule(step) * lr_scale. It is an injected hyperparameter
(`optax.inject_hyperparams`): an array in the state, not a constant of the compiled step, so
ReduceLROnPlateau changes it without recompiling, a checkpoint keeps it, and members of one
run (a sweep of learning rates) each carry their own along the member axis.
"""
import functools
import math
import re

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict
import optax

from library.errors import UserError


OPTIMIZERS = ('sgd', 'momentum', 'nesterov', 'rmsprop', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'exponential', 'linear')
# Every key of this section makes a resumed run another experiment's: none may change.
RESUME_SAFE = frozenset()


def default_config() -> ml_collections.ConfigDict:
  """config.optimizer: the optimizer, its schedule and its clipping (make_optimizer)."""
  c = ml_collections.ConfigDict()
  c.name = 'rmsprop'
  c.learning_rate = 1e-3
  c.schedule = 'constant'
  c.warmup_steps = 0        # linear warmup from 0, before the schedule
  c.decay_steps = config_dict.placeholder(int)  # default: all training steps
  c.decay_rate = 0.1        # exponential: lr * decay_rate ** (step / decay_steps)
  c.end_value = 0.0         # cosine and linear end here
  c.momentum = 0.9          # momentum, nesterov
  c.rho = 0.9               # rmsprop's moving-average decay (Keras' rho)
  c.beta1 = 0.9
  c.beta2 = 0.999
  c.eps = 1e-7              # Keras' epsilon
  c.weight_decay = 0.0      # adamw: decoupled; others: added to the gradient (L2)
  c.clip_value = config_dict.placeholder(float)  # element-wise, as Keras' clipvalue
  c.clip_norm = config_dict.placeholder(float)   # by global norm
  return c


def validate(config) -> None:
  """Raises UserError for a bad optimizer setting (library.config.validate calls it)."""
  opt = config.optimizer
  for key, value, allowed in (('name', opt.name, OPTIMIZERS),
                              ('schedule', opt.schedule, SCHEDULES)):
    if value not in allowed:
      raise UserError(f'optimizer.{key}={value!r} is not one of {", ".join(allowed)}')
  if not (math.isfinite(opt.learning_rate) and opt.learning_rate > 0):
    raise UserError(f'optimizer.learning_rate={opt.learning_rate} must be a finite number > 0')

def make_schedule(opt: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Learning rate per step: optional linear warmup, then the named schedule."""
  lr = opt.learning_rate
  warmup = opt.warmup_steps
  if warmup < 0 or (warmup > 0 and warmup >= total_steps):
    raise UserError(f'optimizer.warmup_steps={warmup} must be in [0, {total_steps}) '
                    f'(the run has {total_steps} steps)')
  decay_steps = opt.decay_steps or max(total_steps - warmup, 1)
  if decay_steps < 1:
    raise UserError(f'optimizer.decay_steps={decay_steps} must be >= 1')
  if opt.schedule == 'constant':
    main = optax.constant_schedule(lr)
  elif opt.schedule == 'cosine':
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=opt.end_value / lr)
  elif opt.schedule == 'exponential':
    main = optax.exponential_decay(lr, decay_steps, opt.decay_rate)
  elif opt.schedule == 'linear':
    main = optax.linear_schedule(lr, opt.end_value, decay_steps)
  else:
    raise UserError(f'optimizer.schedule={opt.schedule!r} is not one of '
                    'constant, cosine, exponential, linear')
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(opt: ml_collections.ConfigDict, total_steps: int, freeze: str = '',
                   varied: tuple = ()) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Returns the gradient transformation and its schedule (logged as learning_rate).

  freeze: parameters whose path ('Embed_0/embedding', 'Dense_1/kernel') matches this regular
  expression get no update at all (optax.multi_transform with set_to_zero).
  varied: hyperparameters that members of the run take values of (library/members.py).
  'weight_decay' there makes the decay an array of the state named `weight_decay`
  (inject_hyperparams), set per member; adamw is then its own parts, as optax composes it.
  """
  schedule = make_schedule(opt, total_steps)
  # A constant rate is passed as a number: no step counter in the optimizer state to update.
  rate = opt.learning_rate if opt.schedule == 'constant' and not opt.warmup_steps else schedule
  chain = []
  if opt.clip_value is not None:
    chain.append(optax.clip(opt.clip_value))
  if opt.clip_norm is not None:
    chain.append(optax.clip_by_global_norm(opt.clip_norm))
  injected_decay = 'weight_decay' in varied
  decay = (optax.inject_hyperparams(optax.add_decayed_weights)(weight_decay=opt.weight_decay)
           if injected_decay else optax.add_decayed_weights(opt.weight_decay))
  if (opt.weight_decay or injected_decay) and opt.name != 'adamw':
    chain.append(decay)
  if opt.name == 'sgd':
    chain.append(optax.sgd(rate))
  elif opt.name == 'momentum':
    chain.append(optax.sgd(rate, momentum=opt.momentum))
  elif opt.name == 'nesterov':
    chain.append(optax.sgd(rate, momentum=opt.momentum, nesterov=True))
  elif opt.name == 'rmsprop':
    # Keras' RMSprop: g / sqrt(v + eps), velocity starting at zero (optax's defaults).
    chain.append(optax.rmsprop(rate, decay=opt.rho, eps=opt.eps))
  elif opt.name == 'adam':
    chain.append(optax.adam(rate, b1=opt.beta1, b2=opt.beta2, eps=opt.eps))
  elif opt.name == 'adamw' and injected_decay:
    chain += [optax.scale_by_adam(b1=opt.beta1, b2=opt.beta2, eps=opt.eps), decay,
              optax.scale_by_learning_rate(rate)]
  elif opt.name == 'adamw':
    chain.append(optax.adamw(rate, b1=opt.beta1, b2=opt.beta2, eps=opt.eps,
                             weight_decay=opt.weight_decay))
  else:
    raise UserError(f'optimizer.name={opt.name!r} is not one of '
                    'sgd, momentum, nesterov, rmsprop, adam, adamw')
  chain.append(optax.inject_hyperparams(_scaled)(lr_scale=1.0))
  tx = optax.chain(*chain)
  if freeze:
    tx = optax.multi_transform({'trained': tx, 'frozen': optax.set_to_zero()},
                               functools.partial(_freeze_labels, freeze))
  return tx, schedule


def _scaled(lr_scale):
  return optax.scale(lr_scale)


def hyperparameter(state, name: str):
  """The array named `name` (e.g. 'lr_scale', 'weight_decay') in any state or optimizer state:
  the first found, or None."""
  found = optax.tree_utils.tree_get_all_with_path(state, name)
  return found[0][1] if found else None


def update(tx, schedule, state, loss_fn, has_aux: bool = False):
  """One step of the optimizer on `loss_fn(params)`'s gradient at state.params, with the health
  metrics every family's train step reports (the loop logs them, guards them against NaN/Inf,
  and shows learning_rate and param_norm as last values).

  Returns (loss, aux or None, new params, new opt_state, {'grad_norm', 'param_norm',
  'learning_rate'}): the norms of the gradient and of the new parameters, and the rate this
  step used (the schedule's, times the lr_scale ReduceLROnPlateau moves)."""
  if has_aux:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  else:
    (loss, grads), aux = jax.value_and_grad(loss_fn)(state.params), None
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  health = {'grad_norm': optax.tree.norm(grads), 'param_norm': optax.tree.norm(params),
            'learning_rate': jnp.asarray(schedule(state.step) * lr_scale(state.opt_state),
                                         jnp.float32)}
  return loss, aux, params, opt_state, health


def lr_scale(state):
  """The learning-rate scale of the (first) optimizer in any state or optimizer state."""
  return hyperparameter(state, 'lr_scale')


def with_hyperparameter(state, name: str, value):
  """`state` with every array named `name` set to `value`, placed as the old one was."""
  old = hyperparameter(state, name)
  if old is None:
    return state
  new = jnp.broadcast_to(jnp.asarray(value, old.dtype), old.shape)
  if isinstance(old, jax.Array) and hasattr(old, 'sharding'):
    new = jax.device_put(new, old.sharding)
  return optax.tree_utils.tree_set(state, **{name: new})


def _freeze_labels(pattern: str, params):
  flat = flax.traverse_util.flatten_dict(params, sep='/')
  labels = {path: 'frozen' if re.search(pattern, path) else 'trained' for path in flat}
  if 'frozen' not in labels.values():
    raise UserError(f'freeze={pattern!r} matches no parameter; the model has '
                    f'{", ".join(sorted(flat))}')
  return flax.traverse_util.unflatten_dict(labels, sep='/')
