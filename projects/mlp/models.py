"""Densely connected networks (book 2.1, 3.4-3.6, 4.4). Outputs are logits."""
from typing import Sequence

import flax.linen as nn

from library import layers
from library.layers import KERNEL_INIT

# Keras' Dense default initializers, so that training curves match the book's.


class MLP(nn.Module):
  """Dense layers with `activation`, optional dropout after each, then a linear output.

  Book 2.1: MLP(hidden=(512,), num_outputs=10) on 784 inputs = 407,050 parameters.
  """
  hidden: Sequence[int] = (512,)
  num_outputs: int = 10
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x_BxD, train: bool = False):
    for width in self.hidden:
      x_BxD = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT)(x_BxD))
      if layers.active(self.dropout_rate):
        x_BxD = layers.Dropout(self.dropout_rate, deterministic=not train)(x_BxD)
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x_BxD)
