"""On-device augmentation: Keras' ImageDataGenerator geometry, per example and seeded."""
import jax
import numpy as np
import pytest

from library.data import augment


def _aug(**kwargs):
  config = augment.default_config()
  config.update(kwargs)
  return config


@pytest.mark.parametrize('params,fill', [
    (dict(theta=30.0), 'nearest'), (dict(tx=3.0, ty=-5.0), 'nearest'),
    (dict(shear=15.0), 'constant'), (dict(zx=0.8, zy=1.2), 'reflect'),
    (dict(theta=-40.0, tx=2.5, ty=4.0, shear=-10.0, zx=1.1, zy=0.9), 'nearest'),
])
def test_the_transform_is_keras_apply_affine_transform(params, fill):
  from keras.src.legacy.preprocessing import image  # pylint: disable=import-outside-toplevel
  img = np.random.default_rng(0).uniform(size=(17, 23, 3)).astype(np.float32)
  full = {**dict(theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0), **params}
  expected = image.apply_affine_transform(img, row_axis=0, col_axis=1, channel_axis=2,
                                          fill_mode=fill, cval=0.0, order=1, **full)
  matrix = augment.keras_matrix(*(np.float32(full[k]) for k in
                                  ('theta', 'tx', 'ty', 'shear', 'zx', 'zy')), 17, 23)
  got = augment.warp(img, matrix, fill)
  np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize('ranges', [
    dict(width_shift=0.2, height_shift=0.1), dict(width_shift=3.0, height_shift=1.0),
    dict(width_shift=0.999, height_shift=7.5, rotation=30.0, shear=10.0, zoom=0.3)])
def test_the_draws_follow_keras_get_random_transform(ranges):
  """Ours and Keras' ImageDataGenerator.get_random_transform on a 40x30 image: every drawn
  parameter inside Keras' range, and the same distribution (two-sample Kolmogorov-Smirnov)."""
  import scipy.stats  # pylint: disable=import-outside-toplevel
  from keras.src.legacy.preprocessing import image  # pylint: disable=import-outside-toplevel
  keras_kwargs = {'width_shift': 'width_shift_range', 'height_shift': 'height_shift_range',
                  'rotation': 'rotation_range', 'shear': 'shear_range', 'zoom': 'zoom_range'}
  generator = image.ImageDataGenerator(**{keras_kwargs[k]: v for k, v in ranges.items()})
  theirs = [generator.get_random_transform((40, 30, 1), seed=i) for i in range(1000)]
  keys = jax.random.split(jax.random.PRNGKey(0), 1000)
  ours = jax.jit(jax.vmap(lambda k: augment.random_parameters(k, _aug(**ranges), 40, 30)))(keys)
  for name in ('tx', 'ty', 'theta', 'shear', 'zx'):
    a, b = np.asarray(ours[name], np.float64), np.array([t[name] for t in theirs], np.float64)
    if not b.any():
      assert not a.any(), name
      continue
    assert a.min() >= b.min() - 0.05 * np.ptp(b) and a.max() <= b.max() + 0.05 * np.ptp(b), name
    assert scipy.stats.ks_2samp(a, b).pvalue > 1e-3, name
  # A pixel range moves images by pixels, not by that many image sizes (a 3.0 used to move a
  # 30-pixel-wide image by up to 90 pixels).
  assert np.abs(np.asarray(ours['ty'])).max() <= max(ranges['width_shift'] * (
      30 if ranges['width_shift'] < 1 else 1), 1e-9) + 1e-5


@pytest.mark.parametrize('theta', [90.0, 180.0, -90.0, 270.0, 360.0])
def test_quarter_turns_with_constant_fill(theta):
  """At multiples of 90 degrees with 'constant' fill, ours is the exact rotation (np.rot90);
  Keras equals it except on edge pixels its float64 rounding puts outside (filled with cval)."""
  from keras.src.legacy.preprocessing import image  # pylint: disable=import-outside-toplevel
  img = np.random.default_rng(0).uniform(1, 2, size=(16, 16, 2)).astype(np.float32)
  got = np.asarray(augment.warp(img, augment.keras_matrix(
      np.float32(theta), 0.0, 0.0, 0.0, 1.0, 1.0, 16, 16), 'constant'))
  np.testing.assert_allclose(got, np.rot90(img, round(theta / 90) % 4), atol=1e-5)
  keras_out = image.apply_affine_transform(img, theta=theta, row_axis=0, col_axis=1,
                                           channel_axis=2, fill_mode='constant', cval=0.0,
                                           order=1)
  differ = np.abs(got - keras_out).max(-1) > 1e-4
  border = np.ones((16, 16), bool)
  border[1:-1, 1:-1] = False
  assert not (differ & ~border).any() and (keras_out[differ] == 0).all()


def test_a_known_pixel_lands_where_it_should():
  img = np.zeros((9, 9, 1), np.float32)
  img[2, 6] = 1.0
  shifted = augment.warp(img, augment.keras_matrix(0.0, 1.0, -2.0, 0.0, 1.0, 1.0, 9, 9))
  # Keras builds its matrix on (x, y) and swaps it: tx ends up on columns, ty on rows, so
  # output (r, c) samples input (r - 2, c + 1) and the pixel at (2, 6) lands on (4, 5).
  assert np.unravel_index(np.argmax(shifted[..., 0]), (9, 9)) == (4, 5)
  quarter = augment.warp(img, augment.keras_matrix(90.0, 0.0, 0.0, 0.0, 1.0, 1.0, 9, 9))
  assert np.isclose(quarter.max(), 1.0) and np.count_nonzero(quarter > 0.5) == 1


def test_flip_twice_is_identity_and_draws_are_per_example_and_seeded():
  images = np.random.default_rng(1).uniform(size=(6, 12, 12, 3)).astype(np.float32)
  flip = _aug(horizontal_flip=True)
  key = jax.random.PRNGKey(0)
  once = np.asarray(augment.augment(key, images, flip))
  flipped = [not np.allclose(o, i) for o, i in zip(once, images)]
  assert any(flipped) and not all(flipped)                  # each image its own coin
  for o, i, f in zip(once, images, flipped):
    np.testing.assert_allclose(o, i[:, ::-1] if f else i, atol=1e-6)
    np.testing.assert_allclose(o[:, ::-1][:, ::-1], o)
  full = _aug(rotation=40.0, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2,
              horizontal_flip=True)
  a = augment.augment(key, images, full)
  np.testing.assert_array_equal(a, augment.augment(key, images, full))          # seeded
  assert not np.allclose(a, augment.augment(jax.random.PRNGKey(1), images, full))
  assert np.isfinite(np.asarray(a)).all() and 0 <= float(a.min()) and float(a.max()) <= 1


def test_the_training_loop_augments_each_batch_on_device(load_config, tmp_path):
  from library import train  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  config = load_config('configs/convnets/mnist_convnet.py', 'embedded,smoke')
  config.data.augment.update(dict(rotation=40.0, width_shift=0.2, height_shift=0.2, shear=0.2,
                                  zoom=0.2, horizontal_flip=True))
  plain = load_config('configs/convnets/mnist_convnet.py', 'embedded,smoke')
  augmented = train.train_and_evaluate(config, str(tmp_path / 'aug'))
  reference = train.train_and_evaluate(plain, str(tmp_path / 'plain'))
  assert np.isfinite(augmented['test']['loss'])
  assert augmented['test']['loss'] != reference['test']['loss']   # the batches were changed
  flat = load_config('configs/mlp/mnist_dense.py', 'embedded,smoke')
  flat.data.augment.rotation = 10.0
  with pytest.raises(UserError, match='needs image batches'):
    train.train_and_evaluate(flat, str(tmp_path / 'flat'))
