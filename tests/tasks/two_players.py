"""Two players updated in one step: a small GAN whose generator learns a 1-d distribution.

The data are real samples (no labels) from load_data; the state holds two (params, optimizer
state) pairs, each player with its own optax chain and learning rate. One train_step updates
the discriminator on real and generated samples, then the generator through the updated
discriminator, and reports both losses. The zero weights of a last partial batch's padding
leave the discriminator's real-sample loss untouched.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from library import config as config_lib, optimizers
from library.data import pipeline
from library.task import Task
from projects.generative.gan import GANState, Player   # the real GAN's state, smaller players
from projects.mlp.models import MLP


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'latent': 4, 'hidden': 16, 'generator_learning_rate': 5e-3,
      'discriminator_learning_rate': 5e-3, 'real_mean': 2.0, 'real_std': 0.5,
      'num_examples': 512})


def validate_task_config(config) -> None:
  config_lib.check_known_keys(config.task_config, default_task_config(), 'task_config.')


def load_data(config, arrays=None) -> pipeline.Datasets:
  del arrays
  t = config.task_config
  rng = np.random.default_rng(config.seed)
  x = (t.real_mean + t.real_std * rng.normal(size=(t.num_examples, 1))).astype(np.float32)
  return pipeline.Datasets({'train': {'inputs': x}}, None, (1,))


def _bce(logits, is_real):
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, is_real))[:, 0]


def make_task(config, data, total_steps: int) -> Task:
  del data
  t = config.task_config
  generator = MLP(hidden=(t.hidden,), num_outputs=1)
  discriminator = MLP(hidden=(t.hidden,), num_outputs=1)

  def optimizer(learning_rate):
    opt = ml_collections.ConfigDict(config.optimizer.to_dict())
    opt.learning_rate = learning_rate
    return optimizers.make_optimizer(opt, total_steps)[0]

  g_tx = optimizer(t.generator_learning_rate)
  d_tx = optimizer(t.discriminator_learning_rate)

  def init(rng, batch):
    g_rng, d_rng, state_rng = jax.random.split(rng, 3)
    g_params = generator.init(g_rng, jnp.zeros((1, t.latent)))['params']
    d_params = discriminator.init(d_rng, batch['inputs'][:1])['params']
    return GANState(step=jnp.zeros((), jnp.int32),
                    generator=Player(g_params, g_tx.init(g_params)),
                    discriminator=Player(d_params, d_tx.init(d_params)), rng=state_rng)

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    real_Bx1, weights_B = batch['inputs'], batch['weights']
    z_BxL = jax.random.normal(key, (real_Bx1.shape[0], t.latent))
    g, d = state.generator, state.discriminator
    fake_Bx1 = generator.apply({'params': g.params}, z_BxL)

    def d_loss_fn(d_params):
      real = _bce(discriminator.apply({'params': d_params}, real_Bx1), 1.0)
      fake = _bce(discriminator.apply({'params': d_params}, jax.lax.stop_gradient(fake_Bx1)),
                  0.0)
      return (jnp.sum(real * weights_B) / jnp.maximum(jnp.sum(weights_B), 1.0) +
              jnp.mean(fake))

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(d.params)
    d_updates, d_opt = d_tx.update(d_grads, d.opt_state, d.params)
    d_params = optax.apply_updates(d.params, d_updates)

    def g_loss_fn(g_params):
      fake = generator.apply({'params': g_params}, z_BxL)
      return jnp.mean(_bce(discriminator.apply({'params': d_params}, fake), 1.0))

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g.params)
    g_updates, g_opt = g_tx.update(g_grads, g.opt_state, g.params)
    g_params = optax.apply_updates(g.params, g_updates)
    metrics = {'d_loss': d_loss, 'g_loss': g_loss, 'fake_mean': jnp.mean(fake_Bx1),
               'fake_std': jnp.std(fake_Bx1)}
    return state.replace(step=state.step + 1, generator=Player(g_params, g_opt),
                         discriminator=Player(d_params, d_opt)), metrics

  def params(state):
    return {'generator': state.generator.params, 'discriminator': state.discriminator.params}

  def predict(state, z_BxL):
    return generator.apply({'params': state.generator.params}, z_BxL)

  return Task(init=init, train_step=train_step, params=params, predict=predict)
