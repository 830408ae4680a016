"""Layers the families' models share, where linen's own cannot serve, and Keras' defaults.

`KERNEL_INIT` is Keras' default kernel initializer (glorot_uniform) for Dense, Conv and a
recurrent layer's input kernel; linen's default (lecun_normal) differs, so every family's
models name this one.

`Dropout` is linen's `nn.Dropout`, except that its rate may also be an array traced in the step:
members of one run that differ in dropout rate (library/members.py) each carry their rate in the
state, and library/supervised.py builds the model with it. With a Python rate it computes what
`nn.Dropout` computes, with the same name and the same keys, so masks are bit for bit linen's.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

KERNEL_INIT = nn.initializers.xavier_uniform()


def active(rate) -> bool:
  """Whether a model should apply dropout of `rate`: a traced rate always (it varies)."""
  return not isinstance(rate, (int, float)) or rate > 0


class Dropout(nn.Module):
  rate: Any
  broadcast_dims: Sequence[int] = ()
  deterministic: bool | None = None
  rng_collection: str = 'dropout'

  @nn.compact
  def __call__(self, inputs, deterministic: bool | None = None):
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    fixed = isinstance(self.rate, (int, float))
    if deterministic or (fixed and self.rate == 0.0):
      return inputs
    if fixed and self.rate == 1.0:     # no gradient NaNs at 1, as linen
      return jnp.zeros_like(inputs)
    keep_prob = 1.0 - self.rate
    rng = self.make_rng(self.rng_collection)
    broadcast_shape = list(inputs.shape)
    for dim in self.broadcast_dims:
      broadcast_shape[dim] = 1
    mask = jax.random.bernoulli(rng, p=keep_prob, shape=broadcast_shape)
    mask = jnp.broadcast_to(mask, inputs.shape)
    return jax.lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))
