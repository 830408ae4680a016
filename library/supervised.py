"""Supervised learning as a Task: Keras' compile(loss, metrics) + fit() on a linen model.

Models take `(inputs, train: bool)` and return logits; dropout draws from the 'dropout' rng;
other variable collections (batch statistics) are carried in `model_state`. Inputs may be a
dict of named arrays (several inputs); with `task_config.outputs` the model returns a dict of
named outputs, each with its own loss, loss weight and metric, as Keras' functional API
(`loss=list(...)`, `loss_weights=...`): the training loss is the weighted sum, and each
output's loss and metric are reported as `<output>_loss` and `<output>_<metric>`.

Its settings are `config.task_config` (default_task_config below); `config.model` names the
model, `config.data` the dataset (library/data/pipeline.py). Members of a run that take values
of `dropout_rate`, `l1` or `l2` (library/members.py) find them in the state's `hyper`: the
penalty then takes its factors from there, and the model is built in the step with its
`dropout_rate` set to the member's (library/layers.py's Dropout takes a traced rate).
"""
import functools
import re
from typing import Any

import flax
import flax.traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from library import config as config_lib, losses, members, optimizers, precision
from library.data import augment, pipeline
from library.errors import UserError
from library.task import Task, layers_in_call_order, make_model, summary_table

# Keras' names, as the book writes them in `compile()`.
LOSSES = ('categorical_crossentropy', 'sparse_categorical_crossentropy', 'binary_crossentropy',
          'mse', 'mae')
METRICS = ('accuracy', 'mae', 'mse', 'auc')


def default_task_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Keras `compile()` semantics: the model outputs logits; losses apply the activation.
  c.loss = 'sparse_categorical_crossentropy'
  c.metrics = ('accuracy',)
  # Several named outputs: the model returns {name: logits}; the labels are {name: array}.
  # One loss and one loss weight per output, in this order; one metric each ('' for none).
  c.outputs = ()
  c.output_losses = ()
  c.loss_weights = ()
  c.output_metrics = ()
  # Keras' kernel_regularizer: l1 * sum|w| + l2 * sum w^2 over the parameters whose path
  # ('Dense_0/kernel', 'hidden_1/kernel', ...) matches `pattern` (a regular expression), added
  # to the training and evaluation loss as Keras does.
  c.regularization = ml_collections.ConfigDict({'l1': 0.0, 'l2': 0.0, 'pattern': 'kernel'})
  # Parameters whose path matches this regular expression are not trained ('' : none), e.g.
  # 'Embed_0/embedding' for a pretrained embedding.
  c.freeze = ''
  # Freeze every layer called before this one ('conv_base/block3_conv1', the R book's
  # unfreeze_weights(conv_base, from = ...)); joined with `freeze`.
  c.unfreeze_from = ''
  # 'bfloat16': compute in bfloat16, with float32 parameters, optimizer state and losses
  # (library/precision.py); 'float32': everything in float32.
  c.precision = 'float32'
  return c


def validate_task_config(config, defaults=None) -> None:
  """The supervised settings: names Keras knows, one loss per output, labels that fit.
  `defaults`: the keys a task built on this one knows (its own default_task_config)."""
  t = config.task_config
  config_lib.check_known_keys(t, defaults or default_task_config(), 'task_config.')
  config_lib.one_of('task_config.loss', t.loss, LOSSES)
  for m in t.metrics:
    config_lib.one_of('task_config.metrics', m, METRICS)
  if not config.model.module or not config.model.name:
    raise UserError('model.module and model.name must name a linen Module class')
  if t.outputs:
    n = len(t.outputs)
    for key in ('output_losses', 'loss_weights', 'output_metrics'):
      if t[key] and len(t[key]) != n:
        raise UserError(f'task_config.{key} has {len(t[key])} entries for {n} outputs '
                        f'{tuple(t.outputs)}: give one per output')
    if not t.output_losses:
      raise UserError('task_config.outputs needs task_config.output_losses, one per output')
    for name in t.output_losses:
      config_lib.one_of('task_config.output_losses', name, LOSSES)
    for name in t.output_metrics:
      config_lib.one_of('task_config.output_metrics', name, ('',) + METRICS)
  elif t.output_losses or t.loss_weights or t.output_metrics:
    raise UserError('task_config.output_losses/loss_weights/output_metrics need '
                    'task_config.outputs, the names of the model\'s outputs')
  for name, loss, _, metrics in _outputs(t):
    if 'auc' in metrics and loss != 'binary_crossentropy':
      key = f'output_metrics (output {name!r})' if name else 'metrics'
      raise UserError(f"task_config.{key}: 'auc' (Keras' AUC of sigmoid probabilities) needs "
                      f"the loss 'binary_crossentropy', not {loss!r}")
  precision.compute_dtype(t.precision)     # refuses a policy it does not know
  for key in ('l1', 'l2'):
    if t.regularization[key] < 0:
      raise UserError(f'task_config.regularization.{key}={t.regularization[key]} must be >= 0')
  if not t.outputs:
    if t.loss == 'categorical_crossentropy' and not config.data.one_hot:
      raise UserError('task_config.loss=categorical_crossentropy needs one-hot labels: set '
                      'data.one_hot=True (or use sparse_categorical_crossentropy)')
    if t.loss == 'sparse_categorical_crossentropy' and config.data.one_hot:
      raise UserError('task_config.loss=sparse_categorical_crossentropy needs integer labels: '
                      'set data.one_hot=False (or use categorical_crossentropy)')


def load_data(config, arrays=None) -> pipeline.Datasets:
  """The labelled splits of config.data, preprocessed with training statistics only."""
  return pipeline.prepare(config, arrays)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any      # variable collections other than params (e.g. batch_stats)
  opt_state: Any
  rng: jax.Array        # per-step keys are fold_in(rng, step): resume replays them exactly
  hyper: Any = None     # {'dropout_rate', 'l1', 'l2': float32} varied by members, else None


def _weighted_mean(values, weights):
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def make_penalty(reg_config, varied=()):
  """(params, hyper) -> Keras' kernel-regularizer loss (None when there is no regularization).

  A factor named in `varied` is read from `hyper` (a member's value), the others are constants.
  """
  l1, l2, pattern = reg_config.l1, reg_config.l2, reg_config.pattern
  if not (l1 or l2 or 'l1' in varied or 'l2' in varied):
    return None

  def penalty(params, hyper):
    flat = flax.traverse_util.flatten_dict(params, sep='/')
    chosen = [w for path, w in flat.items() if re.search(pattern, path)]
    if not chosen:
      raise UserError(f'task_config.regularization.pattern={pattern!r} matches no parameter; '
                      'the model has '
                      f'{", ".join(sorted(flat))}')
    f1 = hyper['l1'] if 'l1' in varied else l1
    f2 = hyper['l2'] if 'l2' in varied else l2
    total = jnp.zeros((), jnp.float32)
    for w in chosen:
      if 'l1' in varied or l1:
        total += f1 * jnp.sum(jnp.abs(w))
      if 'l2' in varied or l2:
        total += f2 * jnp.sum(jnp.square(w))
    return total

  return penalty


def frozen_pattern(t, model: nn.Module, example_inputs) -> str:
  """task_config.freeze, joined with the layers called before task_config.unfreeze_from (R
  book 5.3: unfreeze_weights(conv_base, from = "block3_conv1"))."""
  if not t.unfreeze_from:
    return t.freeze
  order = layers_in_call_order(model, example_inputs)
  start = t.unfreeze_from.strip('/')
  if start not in order:
    raise UserError(f'task_config.unfreeze_from={t.unfreeze_from!r} is not a layer of the '
                    'model; its '
                    f'layers are {", ".join(order[:12])}{" ..." if len(order) > 12 else ""}')
  # Frozen: layers before it in call order, not containing it (conv_base holds block3_conv1).
  before = [p for p in order[:order.index(start)] if not start.startswith(p + '/')]
  parts = [f'^{re.escape(p)}/' for p in before] + ([t.freeze] if t.freeze else [])
  return '|'.join(f'(?:{p})' for p in parts) if parts else ''


def _outputs(t) -> list[tuple[str | None, str, float, tuple[str, ...]]]:
  """(output name or None, loss, loss weight, metrics) of each output."""
  if not t.outputs:
    return [(None, t.loss, 1.0, tuple(t.metrics))]
  weights = tuple(t.loss_weights) or (1.0,) * len(t.outputs)
  metrics = tuple(t.output_metrics) or ('',) * len(t.outputs)
  return [(name, loss, float(w), (m,) if m else ())
          for name, loss, w, m in zip(t.outputs, t.output_losses, weights, metrics)]


def _pick(tree, name):
  if name is None:
    return tree
  if not isinstance(tree, dict) or name not in tree:
    have = sorted(tree) if isinstance(tree, dict) else 'one array'
    raise UserError(f'task_config.outputs names {name!r}, but the model/labels give {have}')
  return tree[name]


def _first_rows(tree, n: int = 1):
  return jax.tree.map(lambda x: x[:n], tree)


def make_task(config, data: pipeline.Datasets, total_steps: int) -> Task:
  t = config.task_config
  model = make_model(config.model, **data.model_kwargs)
  example_inputs = data.example(1)['inputs']
  varied = members.varied(config)
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps,
                                           frozen_pattern(t, model, example_inputs), varied)
  outputs = _outputs(t)
  penalty = make_penalty(t.regularization, varied)
  if 'dropout_rate' in varied and not hasattr(model, 'dropout_rate'):
    raise UserError(f'members.dropout_rate: model {config.model.name} has no dropout_rate')
  hyper = {name: float(value) for name, value in (
      ('dropout_rate', getattr(model, 'dropout_rate', 0.0)), ('l1', t.regularization.l1),
      ('l2', t.regularization.l2)) if name in varied} or None
  aug = config.data.augment if augment.enabled(config.data.augment) else None
  reducers = {f'{name}_auc' if name else 'auc': losses.auc_from_counts
              for name, _, _, metrics in outputs if 'auc' in metrics}

  def init(rng, batch):
    params_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    variables = model.init({'params': params_rng, 'dropout': dropout_rng}, batch['inputs'],
                           train=False)
    variables = dict(variables)
    params = variables.pop('params')
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=tx.init(params), rng=state_rng,
                      hyper=None if hyper is None else jax.tree.map(jnp.float32, hyper))

  apply = _applier(model, precision.compute_dtype(t.precision))
  per_output = functools.partial(_per_output, outputs)

  def train_step(state, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    weights = batch['weights']
    if aug is not None:   # each example its own draw, from the step's key
      batch = dict(batch, inputs=augment.augment(jax.random.fold_in(rng, 1), batch['inputs'],
                                                 aug))

    def loss_fn(params):
      logits, model_state = apply(params, state.model_state, batch['inputs'], True, rng,
                                  state.hyper)
      named, loss = per_output(logits, batch['labels'], weights, _weighted_mean)
      if penalty is not None:
        loss += penalty(params, state.hyper)
      return loss, (named, model_state)

    loss, (named, model_state), params, opt_state, health = optimizers.update(
        tx, schedule, state, loss_fn, has_aux=True)
    metrics = {'loss': loss, 'count': jnp.sum(weights), **health, **named}
    new_state = state.replace(step=state.step + 1, params=params, model_state=model_state,
                              opt_state=opt_state)
    return new_state, metrics

  def eval_step(state, batch):
    logits, _ = apply(state.params, state.model_state, batch['inputs'], False)
    weights = batch['weights']
    sums, loss = per_output(logits, batch['labels'], weights,
                            lambda values, w: jnp.sum(values * w))
    sums.update(count=jnp.sum(weights), loss=loss)
    if penalty is not None:   # Keras' evaluate() reports the loss with its penalty
      sums['loss'] += penalty(state.params, state.hyper) * sums['count']
    return sums

  def predict(state, inputs):
    logits, _ = apply(state.params, state.model_state, inputs, False)
    if not t.outputs:
      return losses.output_activation(t.loss, logits)
    return {name: losses.output_activation(loss_name, _pick(logits, name))
            for name, loss_name, _, _ in outputs}

  def summary(batch):
    return summary_table(model, _first_rows(batch['inputs']), train=False)

  return Task(init=init, train_step=train_step, eval_step=eval_step, predict=predict,
              summary=summary, params=lambda state: state.params,
              with_params=functools.partial(_with_params, tx), variables=_variables,
              reducers=reducers or None)


def _applier(model, dtype):
  """apply(params, model_state, inputs, train, rng, hyper_values) -> (float32 outputs, model
  state), computed in the precision's dtype; a member's traced dropout rate in place."""

  def apply(params, model_state, inputs, train, rng=None, hyper_values=None):
    params, inputs = precision.cast_floating((params, inputs), dtype)
    variables = {'params': params, **model_state}
    net = model
    if train and hyper_values is not None and 'dropout_rate' in hyper_values:
      net = model.clone(dropout_rate=hyper_values['dropout_rate'])
    if train and model_state:
      outputs, model_state = net.apply(variables, inputs, train=True, rngs={'dropout': rng},
                                       mutable=list(model_state))
    else:
      rngs = {'dropout': rng} if train else {}
      outputs = net.apply(variables, inputs, train=train, rngs=rngs)
    if dtype is not None:
      outputs = precision.to_float32(outputs)
    return outputs, model_state

  return apply


def _per_output(outputs, logits, labels, weights, reduce):
  """{metric name: reduce(per-example values, weights)} and the weighted total loss, over the
  task's outputs (_outputs: name, loss, loss weight, metrics)."""
  out, total = {}, 0.0
  for name, loss_name, loss_weight, metric_names in outputs:
    y_hat, y = _pick(logits, name), _pick(labels, name)
    prefix = f'{name}_' if name is not None else ''
    value = reduce(losses.per_example_loss(loss_name, y_hat, y), weights)
    total += loss_weight * value
    if name is not None:
      out[f'{prefix}loss'] = value
    for metric in metric_names:    # (AUC: its counts, summed alike in training and evaluation)
      out[prefix + metric] = losses.auc_counts(y_hat, y, weights) if metric == 'auc' else reduce(
          losses.per_example_metric(metric, loss_name, y_hat, y), weights)
  return out, total


def _variables(state):
  return {'params': state.params, **state.model_state}


def _with_params(tx, state, values):
  """The state with some variables replaced (by 'collection/path') and the optimizer state
  afresh."""
  flat = flax.traverse_util.flatten_dict(_variables(state), sep='/')
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
