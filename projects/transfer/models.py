"""ImageNet networks of keras.applications in linen (book 5.3, 5.4; chapter 8), and a base+head.

Every layer carries the name Keras gives it ('block1_conv1', 'conv2_block1_1_bn'), so converted
Keras weights land by name and freeze patterns read like the book ('conv_base/block5_'). Inputs
are NHWC. `preprocess` applies keras.applications' `preprocess_input` inside the network to
images in [0, 255]: 'caffe' (VGG, ResNet: RGB -> BGR, ImageNet means subtracted), 'tf'
(Inception: x / 127.5 - 1), 'torch' (torchvision weights) or 'none' (inputs already
preprocessed, or the book's 5.3, which feeds images rescaled to [0, 1]). Outputs are logits:
Keras' `predictions` layer without its softmax.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from library import layers
from library.layers import KERNEL_INIT

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def preprocess_input(images, mode: str):
  """keras.applications' preprocess_input for NHWC images in [0, 255]."""
  if mode == 'none':
    return images
  if mode == 'caffe':
    return images[..., ::-1] - jnp.asarray(CAFFE_MEAN_BGR, images.dtype)[None, None, None]
  if mode == 'tf':
    return images / 127.5 - 1.0
  if mode == 'torch':   # torchvision's weights: RGB in [0, 1], ImageNet mean and std
    mean = jnp.asarray(TORCH_MEAN, images.dtype)[None, None, None]
    std = jnp.asarray(TORCH_STD, images.dtype)[None, None, None]
    return (images / 255.0 - mean) / std
  raise ValueError(f'preprocess={mode!r} is not one of none, caffe, tf, torch')


def _top(x, include_top: bool, pooling: str | None, num_classes: int, flatten: bool):
  """Keras' top: the classifier, or 'avg'/'max' global pooling of the features, or nothing."""
  if include_top:
    if flatten:
      return x
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(num_classes, kernel_init=KERNEL_INIT, name='predictions')(x)
  if pooling == 'avg':
    return jnp.mean(x, axis=(1, 2))
  if pooling == 'max':
    return jnp.max(x, axis=(1, 2))
  if pooling is not None:
    raise ValueError(f'pooling={pooling!r} is not one of None, avg, max')
  return x


class VGG(nn.Module):
  """VGG16 (depth 16, 138,357,544 parameters with the top) and VGG19 (143,667,240).

  widths: the five blocks' convolution widths; other values than VGG's give a network of the
  same layers and names that no pretrained weights fit (the tests' tiny variant).
  """
  depth: int = 16
  include_top: bool = True
  pooling: str | None = None
  num_classes: int = 1000
  preprocess: str = 'caffe'
  widths: Sequence[int] = (64, 128, 256, 512, 512)

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    del train   # no dropout or batch norm in VGG
    convs = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
    if self.depth not in convs:
      raise ValueError(f'VGG depth={self.depth} is not one of 16, 19')
    x = preprocess_input(images_BxHxWxC, self.preprocess)
    for block, (count, width) in enumerate(zip(convs[self.depth], self.widths, strict=True), 1):
      for i in range(1, count + 1):
        x = nn.relu(nn.Conv(width, (3, 3), padding='SAME', kernel_init=KERNEL_INIT,
                            name=f'block{block}_conv{i}')(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    if self.include_top:
      x = x.reshape(x.shape[0], -1)   # NHWC flattening, as Keras'
      x = nn.relu(nn.Dense(4096, kernel_init=KERNEL_INIT, name='fc1')(x))
      x = nn.relu(nn.Dense(4096, kernel_init=KERNEL_INIT, name='fc2')(x))
      return nn.Dense(self.num_classes, kernel_init=KERNEL_INIT, name='predictions')(x)
    return _top(x, False, self.pooling, self.num_classes, flatten=True)


def _batch_norm(train: bool, name: str, epsilon: float, use_scale: bool = True):
  # Keras' BatchNormalization: momentum 0.99, gamma/beta = scale/bias, moving mean/variance.
  return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=epsilon,
                      use_scale=use_scale, name=name)


class ResNet50(nn.Module):
  """Keras' ResNet50 (v1: stride in the first 1x1 convolution; 25,636,712 variables, Keras'
  count: 25,583,592 parameters and 53,120 batch-norm statistics)."""
  include_top: bool = True
  pooling: str | None = None
  num_classes: int = 1000
  preprocess: str = 'caffe'

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    eps = 1.001e-5

    def conv(x, width, size, stride, name, padding='VALID'):
      return nn.Conv(width, (size, size), strides=(stride, stride), padding=padding,
                     kernel_init=KERNEL_INIT, name=name)(x)

    x = preprocess_input(images_BxHxWxC, self.preprocess)
    x = jnp.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)))
    x = conv(x, 64, 7, 2, 'conv1_conv')
    x = nn.relu(_batch_norm(train, 'conv1_bn', eps)(x))
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    x = nn.max_pool(x, (3, 3), strides=(2, 2))
    for stage, (width, blocks, stride) in enumerate(
        ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 2):
      for b in range(1, blocks + 1):
        name = f'conv{stage}_block{b}'
        s = stride if b == 1 else 1
        if b == 1:
          shortcut = conv(x, 4 * width, 1, s, f'{name}_0_conv')
          shortcut = _batch_norm(train, f'{name}_0_bn', eps)(shortcut)
        else:
          shortcut = x
        y = nn.relu(_batch_norm(train, f'{name}_1_bn', eps)(conv(x, width, 1, s, f'{name}_1_conv')))
        y = conv(y, width, 3, 1, f'{name}_2_conv', padding='SAME')
        y = nn.relu(_batch_norm(train, f'{name}_2_bn', eps)(y))
        y = _batch_norm(train, f'{name}_3_bn', eps)(conv(y, 4 * width, 1, 1, f'{name}_3_conv'))
        x = nn.relu(shortcut + y)
    return _top(x, self.include_top, self.pooling, self.num_classes, flatten=False)


class InceptionV3(nn.Module):
  """Keras' InceptionV3 (23,851,784 variables: 23,817,352 parameters, 34,432 batch-norm
  statistics; 299x299 inputs).

  Keras names its 94 convolutions and batch norms automatically; ours are 'conv2d_{i}' and
  'batch_normalization_{i}' numbered in Keras' creation order, which the converter restores.
  """
  include_top: bool = True
  pooling: str | None = None
  num_classes: int = 1000
  preprocess: str = 'tf'
  # Every convolution's width divided by this: the same layers and names, a network no
  # pretrained weights fit (the tests' tiny variant).
  width_divisor: int = 1
  # Stop after block mixed<k> and return its output (DeepDream reads mixed2-5 only): the
  # blocks after it are neither traced nor computed. 10 is the whole network.
  last_mixed: int = 10

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    count = iter(range(10_000))

    def cbr(x, width, rows, cols, padding='SAME', strides=(1, 1)):
      i = next(count)
      width = max(1, width // self.width_divisor)
      x = nn.Conv(width, (rows, cols), strides=strides, padding=padding, use_bias=False,
                  kernel_init=KERNEL_INIT, name=f'conv2d_{i}')(x)
      return nn.relu(_batch_norm(train, f'batch_normalization_{i}', 1e-3, use_scale=False)(x))

    def avg3(x):   # AveragePooling2D(3, 1, 'same'): the padding is not counted
      return nn.avg_pool(x, (3, 3), strides=(1, 1), padding='SAME', count_include_pad=False)

    def max3s2(x):
      return nn.max_pool(x, (3, 3), strides=(2, 2))

    def cat(parts):
      return jnp.concatenate(parts, axis=-1)

    def mixed_35(x, pool_width):   # mixed0-2, 35x35
      b1 = cbr(x, 64, 1, 1)
      b5 = cbr(cbr(x, 48, 1, 1), 64, 5, 5)
      b3 = cbr(cbr(cbr(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
      return cat([b1, b5, b3, cbr(avg3(x), pool_width, 1, 1)])

    def mixed3(x):   # -> 17x17
      b3 = cbr(x, 384, 3, 3, 'VALID', (2, 2))
      bd = cbr(cbr(cbr(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, 'VALID', (2, 2))
      return cat([b3, bd, max3s2(x)])

    def mixed_17(x, width):   # mixed4-7
      b1 = cbr(x, 192, 1, 1)
      b7 = cbr(cbr(cbr(x, width, 1, 1), width, 1, 7), 192, 7, 1)
      bd = cbr(x, width, 1, 1)
      for w, (r, c) in ((width, (7, 1)), (width, (1, 7)), (width, (7, 1)), (192, (1, 7))):
        bd = cbr(bd, w, r, c)
      return cat([b1, b7, bd, cbr(avg3(x), 192, 1, 1)])

    def mixed8(x):   # -> 8x8
      b3 = cbr(cbr(x, 192, 1, 1), 320, 3, 3, 'VALID', (2, 2))
      b7 = cbr(cbr(cbr(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
      b7 = cbr(b7, 192, 3, 3, 'VALID', (2, 2))
      return cat([b3, b7, max3s2(x)])

    def mixed_8(x):   # mixed9, mixed10
      b1 = cbr(x, 320, 1, 1)
      b3 = cbr(x, 384, 1, 1)
      b3 = cat([cbr(b3, 384, 1, 3), cbr(b3, 384, 3, 1)])
      bd = cbr(cbr(x, 448, 1, 1), 384, 3, 3)
      bd = cat([cbr(bd, 384, 1, 3), cbr(bd, 384, 3, 1)])
      return cat([b1, b3, bd, cbr(avg3(x), 192, 1, 1)])

    blocks = ([lambda x, w=w: mixed_35(x, w) for w in (32, 64, 64)] + [mixed3] +
              [lambda x, w=w: mixed_17(x, w) for w in (128, 160, 160, 192)] + [mixed8] +
              [mixed_8, mixed_8])
    x = preprocess_input(images_BxHxWxC, self.preprocess)
    x = cbr(x, 32, 3, 3, 'VALID', (2, 2))
    x = cbr(x, 32, 3, 3, 'VALID')
    x = max3s2(cbr(x, 64, 3, 3))
    x = cbr(x, 80, 1, 1, 'VALID')
    x = max3s2(cbr(x, 192, 3, 3, 'VALID'))
    for k, block in enumerate(blocks):
      x = block(x)
      self.sow('intermediates', f'mixed{k}', x)   # Keras' layer names (DeepDream reads them)
      if k == self.last_mixed < 10:
        return x
    return _top(x, self.include_top, self.pooling, self.num_classes, flatten=False)


ARCHITECTURES = {
    'vgg16': (VGG, dict(depth=16)),
    'vgg19': (VGG, dict(depth=19)),
    'resnet50': (ResNet50, {}),
    'inception_v3': (InceptionV3, {}),
}


def make_base(arch: str, **kwargs) -> nn.Module:
  if arch not in ARCHITECTURES:
    raise ValueError(f'arch={arch!r} is not one of {", ".join(ARCHITECTURES)}')
  cls, fixed = ARCHITECTURES[arch]
  return cls(**fixed, **kwargs)


class DenseHead(nn.Module):
  """Flatten -> dense layers (ReLU, each followed by dropout) -> outputs: book 5.3's classifier
  on cached features (4x4x512 VGG16 maps -> 256 -> dropout 0.5 -> 1)."""
  dense: Sequence[int] = (256,)
  dropout_rate: float = 0.5
  num_outputs: int = 1

  @nn.compact
  def __call__(self, features, train: bool = False):
    x = features.reshape(features.shape[0], -1)
    for i, width in enumerate(self.dense):
      x = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT, name=f'dense_{i}')(x))
      if layers.active(self.dropout_rate):
        x = layers.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT, name='output')(x)


class TransferNet(nn.Module):
  """A pretrained base ('conv_base', without its top) -> DenseHead ('head') (book 5.3).

  Book 5.3, frozen base end to end: VGG16 on 150x150 -> flatten (8,192) -> 256 -> 1.
  `base_training`: whether the base runs in training mode (batch statistics). False, as Keras
  runs a frozen base and as its fine-tuning guide advises, keeps the converted statistics.
  """
  arch: str = 'vgg16'
  preprocess: str = 'none'
  dense: Sequence[int] = (256,)
  dropout_rate: float = 0.0
  num_outputs: int = 1
  base_training: bool = False
  base_widths: Sequence[int] | None = None   # VGG only: the tests' tiny variant

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    extra = {} if self.base_widths is None else {'widths': tuple(self.base_widths)}
    base = make_base(self.arch, include_top=False, preprocess=self.preprocess, name='conv_base',
                     **extra)
    x = base(images_BxHxWxC, train=train and self.base_training)
    return DenseHead(self.dense, self.dropout_rate, self.num_outputs, name='head')(x, train)
