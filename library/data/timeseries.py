"""Timeseries as windows gathered on device (book 6.3): the series stays whole, an example is
the row where its window ends.

The book's generator (Python twin, with the errata fix), for a window ending at row r:
inputs are rows r - lookback, r - lookback + step, ..., r - step (lookback / step rows, every
column); the target is column `target` at row r + delay. Here the rows are split in time order
(train, then validation, then test) and a window belongs to a split when all its rows and its
target row lie inside it, so no split sees another's rows. Every column is z-scored with the
training rows' statistics (the target too: MAE is in standard deviations, as the book's 0.29).

The common-sense baseline predicts the target column's value at the window's last row; its MAE
on the same windows is reported next to the model's (`baseline_mae`).

With window.relative, every window is taken relative to its last row (each column minus its
value there) and the target is the change from that row: a series with a trend (CO2) leaves
the training range later on, and a network that sees levels cannot extrapolate them, while
changes stay in range. The MAE is the same quantity either way (forecast = last value + change;
the baseline forecasts no change).
"""
import os

import numpy as np

from library.data import fetch
from library.errors import UserError


def load_csv(path: str, drop_columns=()) -> tuple[np.ndarray, list[str]]:
  """A numeric CSV (the Jena climate file, or any) as float32 (rows, columns)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  if not path:
    raise UserError('data.source=csv needs data.path, the .csv file')
  path = fetch.on_first_use(path)      # the Jena CSV, at its default place
  if not os.path.isfile(path):
    where = fetch.hint(path) or ' (the Jena climate CSV: see projects/recurrent/README.md)'
    raise UserError(f'data.path={path!r}: no such file{where}')
  try:
    frame = pd.read_csv(path)
  except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is not a readable CSV file ({e})') from None
  missing = [c for c in drop_columns if c not in frame.columns]
  if missing:
    raise UserError(f'data.drop_columns names {missing[0]!r}, which {path} does not have '
                    f'(columns: {", ".join(frame.columns)})')
  frame = frame.drop(columns=list(drop_columns))
  for column in frame.columns:
    if not pd.api.types.is_numeric_dtype(frame[column]):
      raise UserError(f'column {column!r} of {path} is not numeric (e.g. '
                      f'{frame[column].iloc[0]!r}); list it in data.drop_columns')
    if frame[column].isna().any():
      row = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
      raise UserError(f'column {column!r} of {path} has missing values (first at data row '
                      f'{row}); fill or drop them first')
  if not len(frame.columns) or not len(frame):
    raise UserError(f'{path} has no numeric data')
  return frame.to_numpy(np.float32), list(frame.columns)


def load_statsmodels_co2() -> tuple[np.ndarray, list[str]]:
  """Weekly atmospheric CO2 at Mauna Loa, 1958-2001 (2,284 weeks), shipped with statsmodels.
  Its 59 missing weeks are filled by linear interpolation in time."""
  import statsmodels.api as sm  # pylint: disable=import-outside-toplevel
  frame = sm.datasets.co2.load_pandas().data
  frame = frame.interpolate(method='time')
  return frame.to_numpy(np.float32), list(frame.columns)


# The 14 numeric columns of jena_climate_2009_2016.csv, after its 'Date Time' column.
JENA_COLUMNS = ('p (mbar)', 'T (degC)', 'Tpot (K)', 'Tdew (degC)', 'rh (%)', 'VPmax (mbar)',
                'VPact (mbar)', 'VPdef (mbar)', 'sh (g/kg)', 'H2OC (mmol/mol)',
                'rho (g/m**3)', 'wv (m/s)', 'max. wv (m/s)', 'wd (deg)')


def write_jena_like(path, rows: int = 900, seed: int = 0) -> str:
  """Writes a synthetic CSV laid out as jena_climate_2009_2016.csv ('Date Time', then the 14
  columns: seeded sines plus noise), for the tests and the benchmark, which run offline."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  t = np.arange(rows)
  data = {c: np.sin(t / (20 + i)) * (i + 1) + rng.normal(0, 0.1, rows) + i * 10
          for i, c in enumerate(JENA_COLUMNS)}
  frame = pd.DataFrame({'Date Time': [f'01.01.2009 {i:05d}' for i in t], **data})
  frame.to_csv(path, index=False)
  return str(path)


def _bound(value: float, rows: int, name: str) -> int:
  row = int(round(value * rows)) if 0 < value < 1 else int(value)
  if not 0 < row < rows:
    raise UserError(f'data.window.{name}={value} must be a row in (0, {rows}) or a fraction')
  return row


def make_splits(series: np.ndarray, window) -> tuple[dict, dict]:
  """The window splits ({name: {'series', 'offsets', 'ends', 'labels'}}) and baseline MAEs."""
  rows, columns = series.shape
  lookback, step, delay, target = window.lookback, window.step, window.delay, window.target
  if step < 1 or lookback < step:
    raise UserError(f'data.window: lookback={lookback} and step={step} must satisfy '
                    '1 <= step <= lookback')
  if lookback >= rows:
    raise UserError(f'data.window.lookback={lookback} is not shorter than the series '
                    f'({rows} rows)')
  if delay < 0:
    raise UserError(f'data.window.delay={delay} must be >= 0')
  if not 0 <= target < columns:
    raise UserError(f'data.window.target={target} is not a column index (0 to {columns - 1})')
  train_end = _bound(window.train_end, rows, 'train_end')
  val_end = _bound(window.val_end, rows, 'val_end')
  if val_end <= train_end:
    raise UserError(f'data.window.val_end ({val_end}) must come after train_end ({train_end})')
  mean = series[:train_end].mean(0, dtype=np.float64)
  std = series[:train_end].std(0, dtype=np.float64)
  normalized = ((series - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
  offsets = np.arange(-lookback, 0, step, dtype=np.int32)
  splits, baselines = {}, {}
  for name, (start, end) in (('train', (0, train_end)), ('validation', (train_end, val_end)),
                             ('test', (val_end, rows))):
    first, last = start + lookback, end - 1 - delay      # window end rows r, inclusive
    if last < first:
      raise UserError(f'no {name} window fits rows [{start}, {end}): lookback {lookback} + '
                      f'delay {delay} need {lookback + delay + 1} rows (the delay runs past '
                      'the split\'s last row)')
    ends = np.arange(first, last + 1, dtype=np.int32)
    labels = normalized[ends + delay, target]
    last_seen = normalized[ends + offsets[-1], target]
    baselines[name] = {'baseline_mae': float(np.mean(np.abs(last_seen - labels)))}
    splits[name] = {'series': normalized, 'offsets': offsets, 'ends': ends, 'labels': labels}
    if window.relative:
      splits[name]['labels'] = labels - last_seen
      splits[name]['anchor'] = offsets[-1:]     # the row windows are taken relative to
  return splits, baselines


def _tree_take(tree, idx):
  if isinstance(tree, dict):
    return {k: _tree_take(v, idx) for k, v in tree.items()}
  return tree[idx]


def gather(split: dict, idx):
  """The examples `idx` of a split, windows cut from the series (NumPy or JAX arrays alike)."""
  if 'series' not in split:
    return {k: _tree_take(v, idx) for k, v in split.items()}
  offsets = split['offsets'].reshape((1,) * idx.ndim + (-1,))
  ends = split['ends'][idx][..., None]
  inputs = split['series'][ends + offsets]
  if 'anchor' in split:
    inputs = inputs - split['series'][ends + split['anchor'].reshape(offsets.shape[:-1] + (1,))]
  return {'inputs': inputs, 'labels': split['labels'][idx]}
