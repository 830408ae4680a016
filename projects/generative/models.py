"""Chapter 8's generative models, as the book builds them (Keras layer for layer, NHWC).

- CharLSTM (8.1): characters as integer codes, one-hot (or embedded), an LSTM of 128, a dense
  layer of logits over the characters.
- VAE (8.4): the book's convolutional encoder to a 2-d latent (mean, log-variance) and its
  conv-transpose decoder, which returns pixel logits (the loss applies the sigmoid).
- Generator / Discriminator (8.5): the book's DCGAN. On 32x32x3 they have 6,264,579 and 790,913
  parameters; `size=28, channels=1` is the same design on digits. The discriminator returns
  logits.
"""
import math

import flax.linen as nn
import jax.numpy as jnp

from library import layers
from library.layers import KERNEL_INIT
from library.recurrent import Recurrent



def _leaky(x):
  return nn.leaky_relu(x, negative_slope=0.3)     # Keras' layer_activation_leaky_relu()


class CharLSTM(nn.Module):
  vocab_size: int
  units: int = 128
  embed_dim: int = 0            # 0: one-hot characters, as the book
  unroll: int = 1

  @nn.compact
  def __call__(self, codes_BxT, train: bool = False):
    if self.embed_dim:
      x = nn.Embed(self.vocab_size, self.embed_dim)(codes_BxT)
    else:
      x = nn.one_hot(codes_BxT, self.vocab_size)
    h = Recurrent('lstm', self.units, unroll=self.unroll)(x, train=train)
    return nn.Dense(self.vocab_size, kernel_init=KERNEL_INIT)(h)


class VAE(nn.Module):
  """Book 8.4: conv 32 -> conv 64 /2 -> conv 64 -> conv 64 -> dense 32 -> (mean, log-var) of a
  `latent`-d code; decoder dense -> 14x14x64 -> conv-transpose 32 /2 -> conv 1 (logits)."""
  image_shape: tuple = (28, 28, 1)
  latent: int = 2
  features: tuple = (32, 64, 64, 64)
  hidden: int = 32

  def setup(self):
    conv = lambda f, s=1: nn.Conv(f, (3, 3), strides=s, padding='SAME',  # noqa: E731
                                  kernel_init=KERNEL_INIT)
    first, *rest = self.features
    self.encoder_convs = [conv(first)] + [conv(f, 2 if i == 0 else 1)
                                          for i, f in enumerate(rest)]
    self.encoder_dense = nn.Dense(self.hidden, kernel_init=KERNEL_INIT)
    self.mean = nn.Dense(self.latent, kernel_init=KERNEL_INIT)
    self.log_var = nn.Dense(self.latent, kernel_init=KERNEL_INIT)
    h, w, _ = self.image_shape
    self.before_flatten = (h // 2, w // 2, self.features[-1])
    self.decoder_dense = nn.Dense(math.prod(self.before_flatten),
                                  kernel_init=KERNEL_INIT)
    self.decoder_up = nn.ConvTranspose(self.features[0], (3, 3), strides=(2, 2),
                                       padding='SAME', kernel_init=KERNEL_INIT)
    self.decoder_out = nn.Conv(self.image_shape[-1], (3, 3), padding='SAME',
                               kernel_init=KERNEL_INIT)

  def encode(self, images_BxHxWxC):
    x = images_BxHxWxC
    for layer in self.encoder_convs:
      x = nn.relu(layer(x))
    x = nn.relu(self.encoder_dense(x.reshape(x.shape[0], -1)))
    return self.mean(x), self.log_var(x)

  def decode(self, z_BxL):
    x = nn.relu(self.decoder_dense(z_BxL)).reshape((z_BxL.shape[0],) + self.before_flatten)
    return self.decoder_out(nn.relu(self.decoder_up(x)))

  def __call__(self, images_BxHxWxC, train: bool = False):
    """Reconstruction logits from the mean code (deterministic; the task samples)."""
    del train
    return self.decode(self.encode(images_BxHxWxC)[0])


class Generator(nn.Module):
  """Book 8.5: latent -> dense `base` x (size/2)^2 -> conv `width` k5 -> conv-transpose k4 /2 ->
  conv k5 x2 -> conv `channels` k7 tanh; LeakyReLU between (base 128, width 256)."""
  latent: int = 32
  size: int = 32
  channels: int = 3
  width: int = 256
  base: int = 128

  @nn.compact
  def __call__(self, z_BxL, train: bool = False):
    del train
    half = self.size // 2
    x = _leaky(nn.Dense(self.base * half * half, kernel_init=KERNEL_INIT)(z_BxL))
    x = x.reshape(z_BxL.shape[0], half, half, self.base)
    x = _leaky(nn.Conv(self.width, (5, 5), padding='SAME', kernel_init=KERNEL_INIT)(x))
    x = _leaky(nn.ConvTranspose(self.width, (4, 4), strides=(2, 2), padding='SAME',
                                kernel_init=KERNEL_INIT)(x))
    for _ in range(2):
      x = _leaky(nn.Conv(self.width, (5, 5), padding='SAME', kernel_init=KERNEL_INIT)(x))
    return jnp.tanh(nn.Conv(self.channels, (7, 7), padding='SAME', kernel_init=KERNEL_INIT)(x))


class Discriminator(nn.Module):
  """Book 8.5: conv 128 k3 -> conv 128 k4 /2 x3 ('valid'), LeakyReLU, flatten, dropout 0.4,
  dense 1 (a logit; the book's sigmoid is in the loss)."""
  width: int = 128
  dropout_rate: float = 0.4

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = _leaky(nn.Conv(self.width, (3, 3), padding='VALID', kernel_init=KERNEL_INIT)(
        images_BxHxWxC))
    for _ in range(3):
      x = _leaky(nn.Conv(self.width, (4, 4), strides=(2, 2), padding='VALID',
                         kernel_init=KERNEL_INIT)(x))
    x = x.reshape(x.shape[0], -1)
    if layers.active(self.dropout_rate):
      x = layers.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(1, kernel_init=KERNEL_INIT)(x)
