"""Convolutional networks (book 5.1, 5.2). NHWC inputs, logits out."""
from typing import Sequence

import flax.linen as nn

KERNEL_INIT = nn.initializers.xavier_uniform()  # Keras' default for Conv2D and Dense


class SmallConvnet(nn.Module):
  """3x3 'valid' convolutions with ReLU, 2x2 max pooling after those flagged, then dense layers.

  Book 5.1: conv32-pool-conv64-pool-conv64 -> 64 -> 10 on 28x28x1 = 93,322 parameters.
  Flattening is NHWC, as Keras' layer_flatten, so Keras weights load unchanged.
  """
  features: Sequence[int] = (32, 64, 64)
  pool_after: Sequence[bool] = (True, True, False)
  dense: Sequence[int] = (64,)
  num_outputs: int = 10
  dropout_rate: float = 0.0   # before the dense layers, as the book's 5.2 variant

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = images_BxHxWxC
    for width, pool in zip(self.features, self.pool_after, strict=True):
      x = nn.relu(nn.Conv(width, (3, 3), padding='VALID', kernel_init=KERNEL_INIT)(x))
      if pool:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    if self.dropout_rate:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for width in self.dense:
      x = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT)(x))
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x)
