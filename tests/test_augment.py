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
