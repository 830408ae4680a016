"""Image augmentation on device, per example and seeded, as Keras' ImageDataGenerator (book 5.2).

Each image gets its own random rotation (degrees), height and width shifts (as Keras: a range
below 1 is a fraction of the size, from 1 up a number of pixels), shear (degrees), zoom (independent x and y factors in [1 - zoom, 1 + zoom]) and
horizontal flip, composed exactly as Keras' `apply_affine_transform` composes them (rotation,
shift, shear, zoom, about the image centre) and sampled bilinearly with Keras' fill modes
('nearest' repeats the edge pixels, 'constant' fills with `cval`, 'reflect'). Tested against
Keras' own function on the same parameters (within 1e-4), and the draws against Keras'
get_random_transform. One difference, deliberate: at exact multiples of 90 degrees with
'constant' fill, Keras' float64 matrix puts some edge pixels a rounding error outside the image,
which scipy then fills with cval (a 360-degree turn blanks 25 edge pixels of a 16x16 image);
here points within 1e-3 px of the edge are inside, so a quarter turn is np.rot90 exactly.
"""
import jax
import jax.numpy as jnp
import ml_collections

from library.errors import UserError

# Keras' 'wrap' is scipy's legacy wrap, which no JAX mode reproduces: refused, not approximated.
FILL_MODES = ('nearest', 'constant', 'reflect')
_JAX_MODE = {'nearest': 'nearest', 'constant': 'constant', 'reflect': 'reflect'}


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'rotation': 0.0, 'width_shift': 0.0, 'height_shift': 0.0, 'shear': 0.0, 'zoom': 0.0,
      'horizontal_flip': False, 'fill_mode': 'nearest', 'cval': 0.0})


def enabled(aug) -> bool:
  return bool(aug.rotation or aug.width_shift or aug.height_shift or aug.shear or aug.zoom
              or aug.horizontal_flip)


def keras_matrix(theta, tx, ty, shear, zx, zy, height: int, width: int):
  """Keras' transform, as the 3x3 matrix taking an output pixel (row, col, 1) to the input
  position it is sampled from. theta and shear in degrees; tx rows, ty columns."""
  theta, shear = jnp.deg2rad(theta), jnp.deg2rad(shear)
  one, zero = jnp.ones_like(theta), jnp.zeros_like(theta)
  rotation = jnp.array([[jnp.cos(theta), -jnp.sin(theta), zero],
                        [jnp.sin(theta), jnp.cos(theta), zero], [zero, zero, one]])
  shift = jnp.array([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
  shear_m = jnp.array([[one, -jnp.sin(shear), zero], [zero, jnp.cos(shear), zero],
                       [zero, zero, one]])
  zoom = jnp.array([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
  m = rotation @ shift @ shear_m @ zoom
  o_x, o_y = height / 2 - 0.5, width / 2 - 0.5
  m = (jnp.array([[1.0, 0, o_x], [0, 1, o_y], [0, 0, 1]]) @ m @
       jnp.array([[1.0, 0, -o_x], [0, 1, -o_y], [0, 0, 1]]))
  # Keras builds the matrix on (x, y) and swaps it to (row, col): M' = P M P.
  perm = jnp.array([1, 0, 2])
  return m[perm][:, perm]


def warp(image_HxWxC, matrix, fill_mode: str = 'nearest', cval: float = 0.0):
  """The image resampled (bilinear) at matrix @ (row, col, 1) for every output pixel."""
  h, w, _ = image_HxWxC.shape
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                            indexing='ij')
  src_r = matrix[0, 0] * rows + matrix[0, 1] * cols + matrix[0, 2]
  src_c = matrix[1, 0] * rows + matrix[1, 1] * cols + matrix[1, 2]
  channels = jnp.moveaxis(image_HxWxC, -1, 0)
  # scipy's (and so Keras') 'constant' does not blend edge pixels with cval: a point outside the
  # image is cval, a point inside interpolates image pixels only.
  mode = 'nearest' if fill_mode == 'constant' else _JAX_MODE[fill_mode]
  out = jax.vmap(lambda ch: jax.scipy.ndimage.map_coordinates(
      ch, [src_r, src_c], order=1, mode=mode))(channels)
  if fill_mode == 'constant':
    # Keras builds the matrix in float64; in float32, cos(90 degrees) is -4.4e-8, not 6e-17,
    # which put the edge rows of a quarter turn a hair outside: a margin of float32's error.
    eps = 1e-3
    outside = (src_r < -eps) | (src_r > h - 1 + eps) | (src_c < -eps) | (src_c > w - 1 + eps)
    out = jnp.where(outside[None], jnp.asarray(cval, out.dtype), out)
  return jnp.moveaxis(out, 0, -1)


def random_parameters(key, aug, height: int, width: int) -> dict:
  """One image's parameters, drawn as Keras' get_random_transform draws them from float
  ranges: a shift range below 1 is a fraction of the size, from 1 up a number of pixels."""
  k = jax.random.split(key, 6)
  uniform = lambda kk, r: jax.random.uniform(kk, (), minval=-r, maxval=r)  # noqa: E731
  zx, zy = jax.random.uniform(k[4], (2,), minval=1 - aug.zoom, maxval=1 + aug.zoom)
  return {'theta': uniform(k[0], aug.rotation),
          'tx': uniform(k[1], aug.height_shift) * (height if aug.height_shift < 1 else 1),
          'ty': uniform(k[2], aug.width_shift) * (width if aug.width_shift < 1 else 1),
          'shear': uniform(k[3], aug.shear), 'zx': zx, 'zy': zy,
          'flip_horizontal': jax.random.bernoulli(k[5], 0.5) & aug.horizontal_flip}


def random_transform(key, aug, height: int, width: int):
  """One image's (matrix, flip)."""
  p = random_parameters(key, aug, height, width)
  matrix = keras_matrix(p['theta'], p['tx'], p['ty'], p['shear'], p['zx'], p['zy'], height,
                        width)
  return matrix, p['flip_horizontal']


def augment(key, images_BxHxWxC, aug):
  """A batch, each image transformed by its own draw from `key`."""
  if images_BxHxWxC.ndim != 4:
    raise UserError(f'data.augment needs image batches (batch, height, width, channels), got '
                    f'inputs of shape {images_BxHxWxC.shape}')
  _, h, w, _ = images_BxHxWxC.shape

  def one(k, image):
    matrix, flip = random_transform(k, aug, h, w)
    out = warp(image, matrix, aug.fill_mode, aug.cval)
    return jnp.where(flip, out[:, ::-1], out)

  keys = jax.random.split(key, images_BxHxWxC.shape[0])
  return jax.vmap(one)(keys, images_BxHxWxC.astype(jnp.float32))
