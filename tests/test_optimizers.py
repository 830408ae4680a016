"""The optax chain from the config: every optimizer, schedules, clipping, weight decay."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from library import optimizers
from library.config import default_config
from library.errors import UserError
from library.optimizers import OPTIMIZERS


def _opt(**changes):
  opt = default_config().optimizer
  opt.update(changes)
  return opt


@pytest.mark.parametrize('name', OPTIMIZERS)
def test_every_optimizer_descends_a_quadratic(name):
  tx, _ = optimizers.make_optimizer(_opt(name=name, learning_rate=0.05), total_steps=100)
  params = {'w': jnp.array([3.0, -2.0])}
  state = tx.init(params)
  for _ in range(50):
    grads = {'w': 2 * params['w']}
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  assert float(jnp.sum(params['w'] ** 2)) < 13.0 * 0.5


def test_rmsprop_matches_keras_update_rule():
  # Keras 3 RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps).
  tx, _ = optimizers.make_optimizer(_opt(name='rmsprop', learning_rate=0.01), total_steps=10)
  w, g = jnp.array([1.0]), jnp.array([0.5])
  updates, _ = tx.update(g, tx.init(w), w)
  v = 0.1 * 0.25
  np.testing.assert_allclose(updates, -0.01 * 0.5 / np.sqrt(v + 1e-7), rtol=1e-6)


@pytest.mark.parametrize('schedule,step,expected', [
    ('constant', 50, 1.0), ('cosine', 0, 1.0), ('cosine', 50, 0.5), ('cosine', 100, 0.0),
    ('exponential', 100, 0.1), ('linear', 50, 0.5)])
def test_schedules(schedule, step, expected):
  fn = optimizers.make_schedule(_opt(learning_rate=1.0, schedule=schedule), total_steps=100)
  np.testing.assert_allclose(float(fn(step)), expected, atol=1e-6)


def test_warmup_then_schedule():
  fn = optimizers.make_schedule(_opt(learning_rate=1.0, warmup_steps=10, schedule='cosine'),
                                total_steps=110)
  np.testing.assert_allclose([float(fn(s)) for s in (0, 5, 10, 60, 110)],
                             [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)
  with pytest.raises(UserError, match='warmup_steps'):
    optimizers.make_schedule(_opt(warmup_steps=200), total_steps=100)


def test_clip_by_value_and_by_global_norm():
  for changes, check in (({'clip_value': 0.1}, lambda g: np.abs(g).max() <= 0.1 + 1e-7),
                         ({'clip_norm': 1.0}, lambda g: np.linalg.norm(g) <= 1.0 + 1e-6)):
    tx, _ = optimizers.make_optimizer(_opt(name='sgd', learning_rate=1.0, **changes), 10)
    w = jnp.zeros(3)
    updates, _ = tx.update(jnp.array([5.0, -3.0, 0.05]), tx.init(w), w)
    assert check(np.asarray(updates))


def test_weight_decay_pulls_weights_to_zero_without_gradient():
  for name in ('sgd', 'adamw'):
    tx, _ = optimizers.make_optimizer(_opt(name=name, learning_rate=0.1, weight_decay=0.5), 10)
    w = jnp.array([2.0])
    updates, _ = tx.update(jnp.zeros(1), tx.init(w), w)
    assert float(updates[0]) < 0
