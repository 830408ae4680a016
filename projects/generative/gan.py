"""Book 8.5's DCGAN as a task of the one loop: two players, one train step.

  python -m scripts.train --config=configs/generative/cifar_frogs_gan.py:digits --workdir=/tmp/gan

The state holds a (params, optimizer state) pair per player, each with its own optax chain
(config.optimizer, with the player's learning rate from task_config). One train step is the
book's iteration:
1. the discriminator learns on the batch's real images and as many generated ones, labelled as
   the book does: 1 for generated, 0 for real, each label plus `label_noise` x U(0, 1);
2. the generator learns from new latent points, through the updated discriminator, towards
   the label "real" (0), the discriminator's parameters left as they are (the book freezes it
   inside the GAN model).
Both losses are logged (d_loss, g_loss: the book's d_loss and a_loss), with the discriminator's
mean probability of "generated" on real and on generated images. Dropout is on in both
updates, as in Keras' train_on_batch. Padding rows of a last partial batch (weight 0) leave
the real-image loss untouched. Keras' `decay=1e-8` (a learning rate shrinking by 1e-4 over
10,000 steps) is left out.
Artifacts at each evaluation: `samples`, a `grid` x `grid` picture of the generator's images
for fixed latent points (the same points every time, so pictures of successive evaluations
compare). `predict(state, z)` returns generated images.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from library import config as config_lib, optimizers
from library.data import pipeline
from library.errors import UserError
from library.task import Task, make_model, summary_table
from projects.generative import pictures

PLAYERS = ('generator', 'discriminator')


@flax.struct.dataclass
class Player:
  params: Any
  opt_state: Any


@flax.struct.dataclass
class GANState:
  step: jax.Array
  generator: Player
  discriminator: Player
  rng: jax.Array


def _model(name: str, **kwargs) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({'module': 'projects.generative.models', 'name': name,
                                    'kwargs': kwargs})


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'latent': 32,
      'generator': _model('Generator', latent=32, size=32, channels=3),
      'discriminator': _model('Discriminator', dropout_rate=0.4),
      'generator_learning_rate': 4e-4, 'discriminator_learning_rate': 8e-4,
      'label_noise': 0.5, 'grid': 8})


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.',
                              free_form=tuple(f'task_config.{p}.kwargs' for p in PLAYERS))
  for key in ('latent', 'grid'):
    if t[key] < 1:
      raise UserError(f'task_config.{key}={t[key]} must be >= 1')
  for key in ('generator_learning_rate', 'discriminator_learning_rate'):
    if t[key] <= 0:
      raise UserError(f'task_config.{key}={t[key]} must be > 0')
  if t.label_noise < 0:
    raise UserError(f'task_config.label_noise={t.label_noise} must be >= 0')


def load_data(config, arrays=None) -> pipeline.Datasets:
  return pipeline.prepare(config, arrays)


KERAS_EPSILON = 1e-7


def _bce(logits_Bx1, labels_B):
  """Keras' binary cross-entropy of a sigmoid output: the probability clipped to
  [1e-7, 1 - 1e-7] first. With the book's noisy labels (up to 1.5) this clipping is what keeps
  the discriminator's loss bounded below: on logits alone, -(y log p + (1 - y) log(1 - p))
  falls without end as p -> 1 when y > 1, and the discriminator races its fakes' logits up."""
  p = jnp.clip(jax.nn.sigmoid(logits_Bx1[:, 0]), KERAS_EPSILON, 1 - KERAS_EPSILON)
  return -(labels_B * jnp.log(p) + (1 - labels_B) * jnp.log(1 - p))


def step_keys(state):
  """The step's keys: latent points for the discriminator's update, label noise, latent points
  for the generator's update, and the dropout of each update."""
  return jax.random.split(jax.random.fold_in(state.rng, state.step), 5)


def player_losses(generator, discriminator, t):
  """(discriminator_loss, generator_loss): each player's loss as a function of its own
  parameters first; train_step differentiates each with respect to those only."""

  def discriminator_loss(d_params, g_params, real, weights_B, keys):
    z_key, noise_key, _, d_drop, _ = keys
    b = real.shape[0]
    fake = generator.apply({'params': g_params}, jax.random.normal(z_key, (b, t.latent)))
    images = jnp.concatenate([fake, real])
    labels = jnp.concatenate([jnp.ones(b), jnp.zeros(b)])
    labels += t.label_noise * jax.random.uniform(noise_key, (2 * b,))
    weights = jnp.concatenate([jnp.ones(b), weights_B])
    logits = discriminator.apply({'params': d_params}, images, train=True,
                                 rngs={'dropout': d_drop})
    loss = jnp.sum(_bce(logits, labels) * weights) / jnp.sum(weights)
    return loss, jax.nn.sigmoid(logits[:, 0])

  def generator_loss(g_params, d_params, b: int, keys):
    _, _, z_key, _, g_drop = keys
    fake = generator.apply({'params': g_params}, jax.random.normal(z_key, (b, t.latent)))
    logits = discriminator.apply({'params': d_params}, fake, train=True,
                                 rngs={'dropout': g_drop})
    return jnp.mean(_bce(logits, jnp.zeros(b)))

  return discriminator_loss, generator_loss


def players(config):
  """The generator and discriminator modules of a GAN config."""
  return make_model(config.task_config.generator), make_model(config.task_config.discriminator)


def make_task(config, data: pipeline.Datasets, total_steps: int) -> Task:
  t = config.task_config
  generator, discriminator = players(config)
  example = data.example(1)['inputs']
  fake = jax.eval_shape(lambda: generator.init_with_output(
      jax.random.key(0), jnp.zeros((1, t.latent)))[0])
  if tuple(fake.shape) != tuple(example.shape):
    raise UserError(f'the generator makes images of shape {tuple(fake.shape[1:])}, the data '
                    f'are {tuple(example.shape[1:])}: set task_config.generator.kwargs '
                    '(size, channels)')

  def optimizer(learning_rate):
    opt = ml_collections.ConfigDict(config.optimizer.to_dict())
    opt.learning_rate = learning_rate
    return optimizers.make_optimizer(opt, total_steps)[0]

  g_tx = optimizer(t.generator_learning_rate)
  d_tx = optimizer(t.discriminator_learning_rate)
  fixed_z = jax.random.normal(jax.random.key(config.seed), (t.grid * t.grid, t.latent))
  generate = jax.jit(lambda params, z: generator.apply({'params': params}, z))

  def init(rng, batch):
    g_rng, d_rng, state_rng = jax.random.split(rng, 3)
    g_params = generator.init(g_rng, jnp.zeros((1, t.latent)))['params']
    d_params = discriminator.init(d_rng, batch['inputs'][:1])['params']
    return GANState(step=jnp.zeros((), jnp.int32),
                    generator=Player(g_params, g_tx.init(g_params)),
                    discriminator=Player(d_params, d_tx.init(d_params)), rng=state_rng)

  d_loss_fn, g_loss_fn = player_losses(generator, discriminator, t)

  def train_step(state, batch):
    keys = step_keys(state)
    real, weights_B = batch['inputs'], batch['weights']
    g, d = state.generator, state.discriminator
    (d_loss, p_generated), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        d.params, g.params, real, weights_B, keys)
    d_updates, d_opt = d_tx.update(d_grads, d.opt_state, d.params)
    d_params = optax.apply_updates(d.params, d_updates)
    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g.params, d_params, real.shape[0], keys)
    g_updates, g_opt = g_tx.update(g_grads, g.opt_state, g.params)
    g_params = optax.apply_updates(g.params, g_updates)
    b = real.shape[0]
    metrics = {'d_loss': d_loss, 'g_loss': g_loss,
               'd_on_fake': jnp.mean(p_generated[:b]),
               'd_on_real': jnp.sum(p_generated[b:] * weights_B) / jnp.maximum(
                   jnp.sum(weights_B), 1.0)}
    return state.replace(step=state.step + 1, generator=Player(g_params, g_opt),
                         discriminator=Player(d_params, d_opt)), metrics

  def params(state):
    return {'generator': state.generator.params, 'discriminator': state.discriminator.params}

  def predict(state, z_BxL):
    return generator.apply({'params': state.generator.params}, z_BxL)

  def artifacts(state, step):
    del step
    return {'samples': pictures.tile(generate(state.generator.params, fixed_z), t.grid)}

  def summary(batch):
    table = summary_table
    return ('generator\n' + table(generator, jnp.zeros((1, t.latent))) +
            '\ndiscriminator\n' + table(discriminator, batch['inputs'][:1]))

  return Task(init=init, train_step=train_step, params=params, predict=predict,
              artifacts=artifacts, summary=summary)


def sample(config, state, key, count: int):
  """`count` images from the generator at latent points drawn from N(0, I), clipped to the
  data's [0, 1] (the generator's tanh reaches [-1, 1])."""
  t = config.task_config
  generator = make_model(t.generator)
  z = jax.random.normal(key, (count, t.latent))
  images = jax.jit(lambda p, z: generator.apply({'params': p}, z))(state.generator.params, z)
  return jnp.clip(images, 0.0, 1.0)
