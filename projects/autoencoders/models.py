"""Autoencoders: an encoder to a small code, a decoder back to the input's shape (logits or
values). `encode` gives the codes (clustering, a classifier's base); calling the model gives the
reconstruction.

- DenseAutoencoder: flatten -> dense ReLU layers -> code (linear) -> the mirror layers ->
  the input's size, reshaped to `out_shape`.
- ConvAutoencoder (28x28 images): two 3x3 stride-2 convolutions (28 -> 14 -> 7), a dense code,
  and two stride-2 transposed convolutions back to 28x28xC.
"""
import math
from typing import Sequence

import flax.linen as nn

from library.layers import KERNEL_INIT



class DenseAutoencoder(nn.Module):
  out_shape: Sequence[int] = (28, 28, 1)
  hidden: Sequence[int] = (128,)
  code: int = 32

  def setup(self):
    self.encoder = [nn.Dense(w, kernel_init=KERNEL_INIT, name=f'enc_{i}')
                    for i, w in enumerate(self.hidden)]
    self.to_code = nn.Dense(self.code, kernel_init=KERNEL_INIT, name='code')
    self.decoder = [nn.Dense(w, kernel_init=KERNEL_INIT, name=f'dec_{i}')
                    for i, w in enumerate(reversed(self.hidden))]
    self.to_output = nn.Dense(math.prod(self.out_shape), kernel_init=KERNEL_INIT,
                              name='output')

  def encode(self, x):
    x = x.reshape(x.shape[0], -1)
    for layer in self.encoder:
      x = nn.relu(layer(x))
    return self.to_code(x)

  def decode(self, code):
    x = code
    for layer in self.decoder:
      x = nn.relu(layer(x))
    return self.to_output(x).reshape((code.shape[0], *self.out_shape))

  def __call__(self, x, train: bool = False):
    del train
    return self.decode(self.encode(x))


class ConvAutoencoder(nn.Module):
  channels: int = 1
  features: Sequence[int] = (16, 32)
  code: int = 32

  def setup(self):
    f1, f2 = self.features
    self.conv1 = nn.Conv(f1, (3, 3), strides=2, padding='SAME', kernel_init=KERNEL_INIT)
    self.conv2 = nn.Conv(f2, (3, 3), strides=2, padding='SAME', kernel_init=KERNEL_INIT)
    self.to_code = nn.Dense(self.code, kernel_init=KERNEL_INIT, name='code')
    self.from_code = nn.Dense(7 * 7 * f2, kernel_init=KERNEL_INIT)
    self.deconv1 = nn.ConvTranspose(f1, (3, 3), strides=(2, 2), padding='SAME',
                                    kernel_init=KERNEL_INIT)
    self.deconv2 = nn.ConvTranspose(self.channels, (3, 3), strides=(2, 2), padding='SAME',
                                    kernel_init=KERNEL_INIT)

  def encode(self, images_BxHxWxC):
    x = nn.relu(self.conv1(images_BxHxWxC))
    x = nn.relu(self.conv2(x))
    return self.to_code(x.reshape(x.shape[0], -1))

  def decode(self, code):
    x = nn.relu(self.from_code(code)).reshape(code.shape[0], 7, 7, self.features[1])
    x = nn.relu(self.deconv1(x))
    return self.deconv2(x)

  def __call__(self, images_BxHxWxC, train: bool = False):
    del train
    return self.decode(self.encode(images_BxHxWxC))


class ConvEncoderClassifier(nn.Module):
  """ConvAutoencoder's encoder (the same layer names: conv1, conv2, code) with a dense head of
  `num_outputs` logits on its code: a classifier that can start from a trained autoencoder
  (config.model_init.path=<its workdir>, skip='from_code|deconv|head')."""
  channels: int = 1
  features: Sequence[int] = (16, 32)
  code: int = 32
  num_outputs: int = 10

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    del train
    f1, f2 = self.features
    x = nn.relu(nn.Conv(f1, (3, 3), strides=2, padding='SAME', kernel_init=KERNEL_INIT,
                        name='conv1')(images_BxHxWxC))
    x = nn.relu(nn.Conv(f2, (3, 3), strides=2, padding='SAME', kernel_init=KERNEL_INIT,
                        name='conv2')(x))
    code = nn.Dense(self.code, kernel_init=KERNEL_INIT, name='code')(x.reshape(x.shape[0], -1))
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT, name='head')(code)
