"""Word sequences: Keras-format files read safely and as Keras reads them, tokenizer, multi-hot,
regularization, and the IMDB/Reuters configs end to end on mock data in every format."""
import json
import os

import numpy as np
import pytest

from library import train
from library.data import pipeline, sequences
from library.errors import UserError


def _ragged(rng, count, max_index, min_len=1, max_len=30):
  return np.array([rng.integers(1, max_index, rng.integers(min_len, max_len)).tolist()
                   for _ in range(count)] + [[1, 2]], dtype=object)[:-1]


def write_keras_imdb(path, num_train=48, num_test=24, max_index=12000, seed=0):
  """A small imdb.npz laid out as Keras' (ragged object arrays of raw word ranks)."""
  rng = np.random.default_rng(seed)
  np.savez(path, x_train=_ragged(rng, num_train, max_index),
           y_train=rng.integers(0, 2, num_train), x_test=_ragged(rng, num_test, max_index),
           y_test=rng.integers(0, 2, num_test))
  return str(path)


def write_keras_reuters(path, count=60, max_index=12000, seed=0):
  rng = np.random.default_rng(seed)
  np.savez(path, x=_ragged(rng, count, max_index), y=rng.integers(0, 46, count))
  return str(path)


def write_keras_boston(path, seed=0):
  rng = np.random.default_rng(seed)
  np.savez(path, x=rng.normal(size=(50, 13)), y=rng.uniform(5, 50, 50))
  return str(path)


@pytest.fixture
def keras_datasets(monkeypatch):
  """Keras' own load_data functions, reading the given file instead of downloading."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  from keras.src.datasets import (  # pylint: disable=import-outside-toplevel
      boston_housing, imdb, reuters)

  def use(path):
    for module in (boston_housing, imdb, reuters):
      monkeypatch.setattr(module, 'get_file', lambda *a, **k: path)
    return {'imdb': imdb, 'reuters': reuters, 'boston': boston_housing}

  return use


def _same_sequences(ours, theirs):
  assert len(ours) == len(theirs)
  for a, b in zip(ours, theirs):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_imdb_and_reuters_load_exactly_as_keras_load_data(tmp_path, keras_datasets):
  """Every kind of num_words (0 = all words, where Keras turns the largest index itself into
  oov_char; below, at and above the largest index; random ones) on random files: the same
  sequences and labels as Keras' own load_data."""
  rng = np.random.default_rng(0)
  imdb_path = write_keras_imdb(tmp_path / 'imdb.npz', max_index=300)
  reuters_path = write_keras_reuters(tmp_path / 'reuters.npz', max_index=300)
  largest = 300 - 1 + sequences.INDEX_FROM
  for num_words in [0, 1, 2, 3, 4, largest - 1, largest, largest + 1, 10000,
                    *rng.integers(5, largest, 4).tolist()]:
    (x_train, y_train), (x_test, y_test) = keras_datasets(imdb_path)['imdb'].load_data(
        num_words=num_words or None)
    ours = sequences.load_keras_imdb(imdb_path, num_words)
    _same_sequences(ours['train']['inputs'], x_train)
    _same_sequences(ours['test']['inputs'], x_test)
    np.testing.assert_array_equal(ours['train']['labels'], y_train)
    np.testing.assert_array_equal(ours['test']['labels'], y_test)
    assert all(s[0] == sequences.START_CHAR or num_words <= sequences.START_CHAR
               for s in ours['train']['inputs'])

    (x_train, y_train), (x_test, y_test) = keras_datasets(reuters_path)['reuters'].load_data(
        num_words=num_words or None)
    ours = sequences.load_keras_reuters(reuters_path, num_words)
    _same_sequences(ours['train']['inputs'], x_train)
    _same_sequences(ours['test']['inputs'], x_test)
    np.testing.assert_array_equal(ours['test']['labels'], y_test)

  boston_path = write_keras_boston(tmp_path / 'boston.npz')
  (x_train, y_train), (x_test, y_test) = keras_datasets(boston_path)['boston'].load_data()
  ours = sequences.load_keras_boston(boston_path)
  np.testing.assert_array_equal(ours['train']['inputs'], x_train)
  np.testing.assert_array_equal(ours['test']['labels'], y_test)


class _RunsCode:

  def __reduce__(self):
    return (os.system, ('touch /tmp/dlwr_pwned',))


def test_a_crafted_npz_is_refused_without_running_its_code(tmp_path):
  path = tmp_path / 'evil.npz'
  np.savez(path, x=np.array([_RunsCode(), [1, 2]], dtype=object), y=np.array([0, 1]))
  with pytest.raises(UserError, match='refusing to load'):
    sequences.load_keras_reuters(str(path), 100)
  assert not os.path.exists('/tmp/dlwr_pwned')


def test_missing_or_malformed_keras_files_are_one_line_errors(tmp_path):
  with pytest.raises(UserError, match='no such file'):
    sequences.load_keras_imdb(str(tmp_path / 'absent.npz'), 100)
  bad = tmp_path / 'bad.npz'
  bad.write_text('not a zip file')
  with pytest.raises(UserError, match='not a readable Keras-format .npz'):
    sequences.load_keras_imdb(str(bad), 100)
  other = tmp_path / 'other.npz'
  np.savez(other, x=np.zeros((3, 2)), y=np.zeros(3))
  with pytest.raises(UserError, match="no 'x_train' array"):
    sequences.load_keras_imdb(str(other), 100)
  ragged_floats = tmp_path / 'floats.npz'
  np.savez(ragged_floats, x=np.array([[0.5, 1.5], [2.5]], dtype=object), y=np.zeros(2))
  with pytest.raises(UserError, match='not a sequence of word indices'):
    sequences.load_keras_reuters(str(ragged_floats), 100)


def test_vectorize_sequences_is_multi_hot_and_refuses_indices_beyond_it():
  out = sequences.vectorize_sequences([np.array([1, 3]), np.array([0, 2, 2]), np.array([])], 4)
  np.testing.assert_array_equal(out, [[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]])
  assert out.dtype == np.uint8
  with pytest.raises(UserError, match='word index 7 does not fit a vectorization dimension of '
                     '5 \\(allowed: 0 to 4\\)'):
    sequences.vectorize_sequences([np.array([1, 7])], 5)


def test_regularization_adds_keras_penalty_to_the_loss(load_config):
  from library import supervised  # pylint: disable=import-outside-toplevel
  from library.task import make_model  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  config = load_config('configs/mlp/imdb_overfit.py', 'l1_l2,smoke')
  model = make_model(config.model)
  params = model.init(jax.random.PRNGKey(0), np.zeros((1, 10000), np.float32))['params']
  penalty = supervised.make_penalty(config.task_config.regularization)(params, None)
  kernels = [params['Dense_0']['kernel'], params['Dense_1']['kernel']]   # not the output's
  expected = sum(0.001 * np.abs(k).sum() + 0.001 * np.square(k).sum() for k in kernels)
  np.testing.assert_allclose(float(penalty), expected, rtol=1e-5)
  config.task_config.regularization.pattern = 'no_such_layer'
  with pytest.raises(UserError, match="regularization.pattern='no_such_layer' matches no"):
    supervised.make_penalty(config.task_config.regularization)(params, None)


def _train(config, workdir):
  results = train.train_and_evaluate(config, str(workdir))
  assert np.isfinite(results['test' if 'test' in results else 'validation']['loss'])
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['steps'] == results['steps']
  return results


def test_imdb_configs_end_to_end_on_a_keras_format_file(load_config, tmp_path):
  path = write_keras_imdb(tmp_path / 'imdb.npz')
  config = load_config('configs/mlp/imdb_holdout.py', 'smoke')
  config.data.path = path
  data = pipeline.prepare(config)
  assert data.splits['validation']['inputs'].shape == (8, 10000)   # the first 8, unshuffled
  assert data.splits['train']['inputs'].dtype == np.uint8
  results = _train(config, tmp_path / 'holdout')
  assert set(results) >= {'validation', 'test'}
  for name in ('imdb_final.py', 'imdb_overfit.py'):
    config = load_config(f'configs/mlp/{name}', 'l2,smoke' if 'overfit' in name else 'smoke')
    config.data.path = path
    _train(config, tmp_path / name)


def test_imdb_config_end_to_end_on_tfds_mock_text(load_config, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  config = load_config('configs/mlp/imdb_holdout.py', 'tfds,smoke')
  config.data.data_dir = str(tmp_path / 'tfds')
  with tfds.testing.mock_data(num_examples=48):
    data = pipeline.prepare(config)
    assert data.splits['train']['inputs'].shape == (40, 10000)
    assert data.splits['train']['inputs'].max() == 1
    results = _train(config, tmp_path / 'run')
  assert 0.0 <= results['test']['accuracy'] <= 1.0


def test_reuters_configs_end_to_end_on_a_keras_format_file(load_config, tmp_path):
  path = write_keras_reuters(tmp_path / 'reuters.npz')
  for name in ('reuters_holdout.py', 'reuters_final.py', 'reuters_bottleneck.py'):
    config = load_config(f'configs/mlp/{name}', 'smoke')
    config.data.path = path
    data = pipeline.prepare(config)
    assert data.splits['train']['labels'].shape[1] == 46     # one-hot, 46 topics
    _train(config, tmp_path / name)


def test_tokenize_refuses_inputs_that_are_not_text(load_config):
  config = load_config('configs/mlp/boston_final.py', 'embedded,smoke')
  config.data.tokenize = 'words'
  with pytest.raises(UserError, match='not text'):
    pipeline.prepare(config)
