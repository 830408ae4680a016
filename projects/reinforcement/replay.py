"""A ring buffer of transitions, held in the state on the device.

Each transition stores the observation it ends in as the environment returned it *before* any
auto-reset (gymnax 1.x's `info['final_observation']`), and whether the episode terminated. So a
pair never spans two episodes, a truncated episode (CartPole's 500-step limit) still bootstraps
from its real last observation, and only termination zeroes the bootstrap. A trajectory buffer
that pairs consecutive observations would pair the last one of an episode with the first of the
next.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Buffer:
  obs: Any            # (C, ...) observation the action was taken in
  action: jax.Array   # (C,) int32
  reward: jax.Array   # (C,) float32
  next_obs: Any       # (C, ...) observation it led to, before any reset
  terminated: jax.Array  # (C,) float32: 1 where the episode ended by termination
  position: jax.Array    # () int32: where the next transition goes
  size: jax.Array        # () int32: how many are stored (<= C)


def empty(capacity: int, obs_example) -> Buffer:
  """A buffer for `capacity` transitions of observations shaped like `obs_example` (one)."""
  obs = jnp.zeros((capacity, *obs_example.shape), obs_example.dtype)
  return Buffer(obs=obs, action=jnp.zeros((capacity,), jnp.int32),
                reward=jnp.zeros((capacity,), jnp.float32), next_obs=obs,
                terminated=jnp.zeros((capacity,), jnp.float32),
                position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def capacity(buffer: Buffer) -> int:
  return buffer.action.shape[0]


def add(buffer: Buffer, obs, action, reward, next_obs, terminated, valid=True) -> Buffer:
  """Appends N transitions (leading axis N <= capacity), overwriting the oldest when full.
  Where `valid` (a scalar) is false the buffer stays as it was: the N slots get their own
  values back, so only N rows are touched either way."""
  c = capacity(buffer)
  n = action.shape[0]
  idx = (buffer.position + jnp.arange(n)) % c
  valid = jnp.asarray(valid)

  def put(stored, new):
    return stored.at[idx].set(jnp.where(valid, new.astype(stored.dtype), stored[idx]))

  grown = jnp.where(valid, n, 0)
  return buffer.replace(
      obs=put(buffer.obs, obs), action=put(buffer.action, action),
      reward=put(buffer.reward, reward), next_obs=put(buffer.next_obs, next_obs),
      terminated=put(buffer.terminated, terminated),
      position=(buffer.position + grown) % c, size=jnp.minimum(buffer.size + grown, c))


def sample(buffer: Buffer, rng, batch_size: int) -> dict:
  """`batch_size` transitions drawn uniformly, with replacement, from those stored."""
  idx = jax.random.randint(rng, (batch_size,), 0, jnp.maximum(buffer.size, 1))
  return {'obs': buffer.obs[idx], 'action': buffer.action[idx], 'reward': buffer.reward[idx],
          'next_obs': buffer.next_obs[idx], 'terminated': buffer.terminated[idx]}
