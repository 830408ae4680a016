"""Convolutional networks (book 5.1, 5.2, 7.1.4, 7.3.1). NHWC inputs, logits out."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from library import layers
from library.layers import KERNEL_INIT
from library.errors import UserError



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
    if x.ndim != 4:
      raise UserError(f'SmallConvnet takes images of shape (height, width, channels); got '
                      f'examples of shape {tuple(x.shape[1:])}: give greyscale images their '
                      'channel axis, (N, H, W) -> (N, H, W, 1)')
    for width, pool in zip(self.features, self.pool_after, strict=True):
      x = nn.relu(nn.Conv(width, (3, 3), padding='VALID', kernel_init=KERNEL_INIT)(x))
      if pool:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    if layers.active(self.dropout_rate):
      x = layers.Dropout(self.dropout_rate, deterministic=not train)(x)
    for width in self.dense:
      x = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT)(x))
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x)


class SeparableConv(nn.Module):
  """Keras' SeparableConv2D (depth_multiplier 1): a depthwise k x k convolution, one filter per
  input channel and no bias, then a 1x1 pointwise convolution with bias; Cin x (k x k + F) + F
  parameters, as Keras counts them."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  padding: str = 'SAME'

  @nn.compact
  def __call__(self, x_BxHxWxC):
    channels = x_BxHxWxC.shape[-1]
    x = nn.Conv(channels, self.kernel_size, padding=self.padding, feature_group_count=channels,
                use_bias=False, kernel_init=KERNEL_INIT, name='depthwise')(x_BxHxWxC)
    return nn.Conv(self.features, (1, 1), kernel_init=KERNEL_INIT, name='pointwise')(x)


def _batch_norm(train: bool, name: str):
  # Keras' BatchNormalization defaults: momentum 0.99, epsilon 1e-3.
  return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3, name=name)


class SeparableConvnet(nn.Module):
  """Book 7.3.1's lightweight image classifier of depthwise separable convolutions, optionally
  with batch normalization after each convolution and residual connections (7.1.4) around
  each pair:

    [sepconv 32 -> sepconv 64] -> max pool 2 -> [sepconv 64 -> sepconv 128] -> max pool 2 ->
    [sepconv 64 -> sepconv 128] -> global average pooling -> dense 32 -> dense num_outputs

  With `residual`, a pair's input is added to its output, through a 1x1 convolution when the
  widths differ (Keras' projection shortcut). With `batch_norm`, each convolution is followed
  by BatchNormalization (its statistics are the model state the loop carries) before the ReLU.
  """
  blocks: Sequence[Sequence[int]] = ((32, 64), (64, 128), (64, 128))
  dense: int = 32
  num_outputs: int = 10
  residual: bool = False
  batch_norm: bool = False

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = images_BxHxWxC
    for b, widths in enumerate(self.blocks):
      if b:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      shortcut = x
      for j, width in enumerate(widths):
        x = SeparableConv(width, name=f'sepconv{b}_{j}')(x)
        if self.batch_norm:
          x = _batch_norm(train, f'bn{b}_{j}')(x)
        x = nn.relu(x)
      if self.residual:
        if shortcut.shape[-1] != x.shape[-1]:
          shortcut = nn.Conv(x.shape[-1], (1, 1), kernel_init=KERNEL_INIT,
                             name=f'shortcut{b}')(shortcut)
        x = x + shortcut
    x = jnp.mean(x, axis=(1, 2))
    x = nn.relu(nn.Dense(self.dense, kernel_init=KERNEL_INIT)(x))
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x)
