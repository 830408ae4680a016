"""Autoencoders as a task of the one loop: the data's inputs are their own targets.

  python -m scripts.train --config=configs/autoencoders/digits.py --workdir=/tmp/ae

A dataset task (the shared pipeline: sources, held-out splits, scaling, standardization fitted
on the training split) whose labels are kept but never trained on: they say which examples are
anomalies (`normal_classes`) or how well codes cluster, in scripts.anomaly and scripts.cluster.
- `loss`: binary_crossentropy on logits (pixels in [0, 1]) or mse (standardized features); per
  example, the mean over the input's values.
- `noise_std` > 0 makes it a denoising autoencoder: each training input gets Gaussian noise
  drawn from the step's key (clipped to [0, 1] with binary cross-entropy); the target is the
  clean input.
- `normal_classes`: train on these labels only (the training split is filtered; validation and
  test keep every class, so that an anomaly threshold can be chosen and scored on them).
`predict` returns reconstructions (sigmoid probabilities with binary cross-entropy).
"""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from library import config as config_lib, optimizers
from library.data import pipeline
from library.errors import UserError
from library.supervised import TrainState
from library.task import Task, make_model, summary_table

LOSSES = ('binary_crossentropy', 'mse')


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({'loss': 'binary_crossentropy', 'noise_std': 0.0,
                                    'normal_classes': ()})


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  config_lib.one_of('task_config.loss', t.loss, LOSSES)
  if t.noise_std < 0:
    raise UserError(f'task_config.noise_std={t.noise_std} must be >= 0')


def load_data(config, arrays=None) -> pipeline.Datasets:
  datasets = pipeline.prepare(config, arrays)
  normal = tuple(config.task_config.normal_classes)
  if not normal:
    return datasets
  train = datasets.splits['train']
  labels = np.asarray(train['labels'])
  if labels.ndim != 1:
    raise UserError('task_config.normal_classes needs integer labels (set data.one_hot=False)')
  keep = np.isin(labels, normal)
  if not keep.any():
    raise UserError(f'task_config.normal_classes={normal}: no training example has those '
                    f'labels (they are {sorted(np.unique(labels).tolist())})')
  splits = dict(datasets.splits, train={k: np.asarray(v)[keep] for k, v in train.items()})
  return dataclasses.replace(datasets, splits=splits)


def per_example_loss(name: str, logits, targets):
  flat = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731
  if name == 'binary_crossentropy':
    return jnp.mean(flat(optax.sigmoid_binary_cross_entropy(logits, targets)), axis=-1)
  return jnp.mean(flat(jnp.square(logits - targets)), axis=-1)


def reconstruction(name: str, logits):
  return jax.nn.sigmoid(logits) if name == 'binary_crossentropy' else logits


def make_task(config, data: pipeline.Datasets, total_steps: int) -> Task:
  t = config.task_config
  model = make_model(config.model)
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps)
  example = data.example(1)['inputs']
  out = jax.eval_shape(lambda: model.init(jax.random.key(0), example))
  shape = jax.eval_shape(lambda v: model.apply(v, example), out).shape
  if tuple(shape) != tuple(example.shape):
    raise UserError(f'model {config.model.name} reconstructs shape {tuple(shape[1:])}, the '
                    f'inputs are {tuple(example.shape[1:])}: set its out_shape/channels')

  def init(rng, batch):
    params_rng, state_rng = jax.random.split(rng)
    params = model.init(params_rng, batch['inputs'])['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state={},
                      opt_state=tx.init(params), rng=state_rng)

  def losses(params, inputs, targets):
    return per_example_loss(t.loss, model.apply({'params': params}, inputs), targets)

  def train_step(state, batch):
    clean, weights = batch['inputs'], batch['weights']
    noisy = clean
    if t.noise_std:
      rng = jax.random.fold_in(state.rng, state.step)
      noisy = clean + t.noise_std * jax.random.normal(rng, clean.shape, clean.dtype)
      if t.loss == 'binary_crossentropy':
        noisy = jnp.clip(noisy, 0.0, 1.0)

    def loss_fn(params):
      return jnp.sum(losses(params, noisy, clean) * weights) / jnp.maximum(jnp.sum(weights), 1)

    loss, _, params, opt_state, health = optimizers.update(tx, schedule, state, loss_fn)
    metrics = {'loss': loss, 'count': jnp.sum(weights), **health}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_step(state, batch):
    values = losses(state.params, batch['inputs'], batch['inputs'])
    return {'loss': jnp.sum(values * batch['weights']), 'count': jnp.sum(batch['weights'])}

  def predict(state, inputs):
    return reconstruction(t.loss, model.apply({'params': state.params}, inputs))

  def summary(batch):
    return summary_table(model, batch['inputs'][:1])

  return Task(init=init, train_step=train_step, eval_step=eval_step, predict=predict,
              summary=summary, params=lambda state: state.params,
              variables=lambda state: {'params': state.params})


def codes(config, params, inputs, batch_size: int = 500) -> np.ndarray:
  """The encoder's codes of `inputs`, in batches (scripts.cluster, a classifier's base)."""
  model = make_model(config.model)
  encode = jax.jit(lambda x: model.apply({'params': params}, x, method='encode'))
  return np.concatenate([np.asarray(encode(inputs[i:i + batch_size]))
                         for i in range(0, len(inputs), batch_size)])


def reconstruction_errors(config, params, inputs, batch_size: int = 500) -> np.ndarray:
  """Each example's reconstruction error, the anomaly score: the training loss per example."""
  model = make_model(config.model)
  loss = config.task_config.loss
  score = jax.jit(lambda x: per_example_loss(loss, model.apply({'params': params}, x), x))
  return np.concatenate([np.asarray(score(inputs[i:i + batch_size]))
                         for i in range(0, len(inputs), batch_size)])

