"""Timeseries windows gathered on device: the book's generator semantics against a plain NumPy
reference, bad input, the common-sense baseline, and the CO2 and Jena configs end to end."""
import json

import ml_collections
import numpy as np
import pytest

from library import train
from library.data import pipeline, timeseries
from library.errors import UserError


def _window(**kwargs):
  base = dict(lookback=12, step=3, delay=5, target=1, train_end=60, val_end=80,
              relative=False)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def _reference_generator(data, lookback, step, delay, target, min_index, max_index):
  """The book's generator (Python twin, errata fixed), every window in order, written plainly."""
  samples, targets = [], []
  for r in range(min_index + lookback, max_index - delay):
    samples.append(data[range(r - lookback, r, step)])
    targets.append(data[r + delay][target])
  return np.array(samples), np.array(targets)


@pytest.mark.parametrize('kwargs', [{}, {'step': 1, 'delay': 0}, {'lookback': 9, 'step': 2}])
def test_windows_match_a_plain_numpy_generator(kwargs):
  series = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
  window = _window(**kwargs)
  splits, baselines = timeseries.make_splits(series, window)
  normalized = (series - series[:60].mean(0)) / series[:60].std(0)
  for name, (lo, hi) in (('train', (0, 60)), ('validation', (60, 80)), ('test', (80, 100))):
    split = splits[name]
    x, y = _reference_generator(normalized, window.lookback, window.step, window.delay,
                                window.target, lo, hi)
    got = timeseries.gather(split, np.arange(len(split['ends'])))
    np.testing.assert_allclose(got['inputs'], x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got['labels'], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(baselines[name]['baseline_mae'],
                               np.mean(np.abs(x[:, -1, window.target] - y)), rtol=1e-5)
  # On device, with JAX arrays and a (steps, batch) index, the same windows.
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  idx = np.array([[0, 3], [5, 1]])
  on_device = timeseries.gather({k: jnp.asarray(v) for k, v in splits['train'].items()}, idx)
  np.testing.assert_allclose(on_device['inputs'],
                             timeseries.gather(splits['train'], idx)['inputs'], rtol=1e-6)


def test_relative_windows_are_changes_from_the_last_row():
  series = np.cumsum(np.ones((100, 2), np.float32), 0)     # a pure trend
  splits, baselines = timeseries.make_splits(series, _window(relative=True))
  got = timeseries.gather(splits['test'], np.arange(3))
  np.testing.assert_allclose(got['inputs'][:, -1], 0.0, atol=1e-6)   # anchored at the last row
  # With a pure trend, the change over delay + step rows is constant: the baseline's error.
  np.testing.assert_allclose(np.abs(got['labels']), baselines['test']['baseline_mae'], rtol=1e-5)


@pytest.mark.parametrize('kwargs,fragment', [
    ({'lookback': 150}, 'lookback=150 is not shorter than the series'),
    ({'delay': 15}, 'no validation window fits rows \\[60, 80\\).*delay runs past'),
    ({'step': 20}, 'must satisfy 1 <= step <= lookback'),
    ({'target': 7}, 'target=7 is not a column index'),
    ({'val_end': 50}, 'must come after train_end'),
])
def test_bad_windows_are_clear_errors(kwargs, fragment):
  series = np.zeros((100, 3), np.float32)
  with pytest.raises(UserError, match=fragment):
    timeseries.make_splits(series, _window(**kwargs))


def test_csv_errors_name_the_column(tmp_path):
  import pandas as pd  # pylint: disable=import-outside-toplevel
  path = tmp_path / 'bad.csv'
  pd.DataFrame({'when': ['a', 'b'], 'x': [1.0, 2.0]}).to_csv(path, index=False)
  with pytest.raises(UserError, match="column 'when' .* is not numeric"):
    timeseries.load_csv(str(path))
  pd.DataFrame({'x': [1.0, None, 3.0], 'y': [1, 2, 3]}).to_csv(path, index=False)
  with pytest.raises(UserError, match="column 'x' .* has missing values \\(first at data row 1\\)"):
    timeseries.load_csv(str(path))
  with pytest.raises(UserError, match="drop_columns names 'Date Time'"):
    timeseries.load_csv(str(path), ('Date Time',))
  with pytest.raises(UserError, match='no such file'):
    timeseries.load_csv(str(tmp_path / 'absent.csv'))


def test_co2_is_real_offline_data():
  series, columns = timeseries.load_statsmodels_co2()
  assert series.shape == (2284, 1) and columns == ['co2'] and np.isfinite(series).all()
  assert 310 < series[0, 0] < 320 and 360 < series[-1, 0] < 375     # ppm, 1958 and 2001


@pytest.mark.parametrize('model', ['gru_dropout', 'dense'])
def test_co2_configs_end_to_end(load_config, tmp_path, model):
  config = load_config('configs/recurrent/co2_forecast.py', f'{model},smoke')
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert set(results['test']) >= {'mae', 'baseline_mae'}
  saved = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert saved['test']['baseline_mae'] == pytest.approx(results['test']['baseline_mae'])


@pytest.mark.parametrize('model', ['gru', 'conv_gru', 'bidirectional_gru', 'conv1d'])
def test_jena_configs_end_to_end_on_a_csv_of_its_layout(load_config, tmp_path, model):
  config = load_config('configs/recurrent/jena.py', f'{model},smoke')
  config.data.path = timeseries.write_jena_like(tmp_path / 'jena.csv')
  data = pipeline.prepare(config)
  lookback, step = config.data.window.lookback, config.data.window.step
  assert data.raw_input_shape == (lookback // step, 14)
  config.data.placement = 'host' if model == 'gru' else 'device'   # both gathers
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(results['test']['mae']) and 'baseline_mae' in results['test']
