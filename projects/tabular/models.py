"""A network for a table: an embedding per categorical column beside the numeric block.

  TabularNet(hidden=(128, 64), num_outputs=1, embeddings=((10, 6), (4, 3)))

Inputs are what projects/tabular/preprocessing.py makes: {'numeric': (B, F) float32,
'categorical': (B, C) int32 codes, 0 for missing or unseen}. Each categorical column c has
its own table of embeddings[c] = (codes, width) (fastai's size rule; the task passes the sizes
its fitted preprocessing decided). The embeddings are concatenated with the numeric block and
go through dense ReLU layers, with dropout after each, to a linear output (logits).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from library import layers
from library.layers import KERNEL_INIT


class TabularNet(nn.Module):
  hidden: Sequence[int] = (128, 64)
  num_outputs: int = 1
  embeddings: Sequence[Sequence[int]] = ()
  dropout_rate: float = 0.0
  embedding_dropout: float = 0.0

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    parts = [inputs['numeric']]
    codes_BxC = inputs.get('categorical')
    if self.embeddings:
      if codes_BxC is None or codes_BxC.shape[-1] != len(self.embeddings):
        got = 0 if codes_BxC is None else codes_BxC.shape[-1]
        raise ValueError(f'{len(self.embeddings)} embeddings for {got} categorical columns')
      embedded = [nn.Embed(codes, width, name=f'embed_{c}')(codes_BxC[:, c])
                  for c, (codes, width) in enumerate(self.embeddings)]
      x_BxE = jnp.concatenate(embedded, axis=-1)
      if layers.active(self.embedding_dropout):
        x_BxE = layers.Dropout(self.embedding_dropout, deterministic=not train)(x_BxE)
      parts.append(x_BxE)
    x_BxD = jnp.concatenate(parts, axis=-1)
    for width in self.hidden:
      x_BxD = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT)(x_BxD))
      if layers.active(self.dropout_rate):
        x_BxD = layers.Dropout(self.dropout_rate, deterministic=not train)(x_BxD)
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x_BxD)
