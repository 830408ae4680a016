"""Mixed tabular columns into model inputs, fitted on training rows only, saved with the run.

  spec = fit(frame.iloc[train_rows], target='MEDV', id_column='id')
  arrays = transform(spec, frame)              # {'numeric': (N, F) float32, 'categorical': ...}
  save(spec, path); spec == load(path)         # predicting later applies exactly this

What `fit` decides for each column, from the training rows alone:
- numeric: standardized by the training mean and standard deviation (a constant column
  becomes 0). Missing values are filled with the training median, and a 0/1 indicator column
  `<name>_missing` is added for every column that had any missing value in training (a column
  missing only at prediction is filled, without an indicator, as Keras users expect).
- categorical (strings, booleans, or integers with few distinct values, `max_levels`): integer
  codes, 1.. for the training levels by frequency, 0 for missing and for levels never seen in
  training. Learned embeddings take them (`embedding_sizes`, fastai's rule
  min(600, round(1.6 * n^0.56))), or `one_hot` expands them.
- dates (datetime columns, or strings that all parse as dates): split into year, month, day,
  day of week and day of year, which then are numeric columns as above.
The id column and the target are never features. The spec is plain JSON.
"""
import json
import math

import numpy as np

from library.errors import UserError

DATE_PARTS = ('year', 'month', 'day', 'day_of_week', 'day_of_year')


def embedding_size(levels: int) -> int:
  """fastai's rule for a categorical column of `levels` codes (the unknown one included)."""
  return min(600, round(1.6 * levels ** 0.56))


def _is_date(series) -> bool:
  import pandas as pd  # pylint: disable=import-outside-toplevel
  if pd.api.types.is_datetime64_any_dtype(series):
    return True
  if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
    return False
  values = series.dropna()
  if values.empty or not all(isinstance(v, str) for v in values):
    return False
  parsed = pd.to_datetime(values, errors='coerce', format='mixed')
  return bool(parsed.notna().all())


def _date_parts(series) -> dict:
  import pandas as pd  # pylint: disable=import-outside-toplevel
  when = pd.to_datetime(series, errors='coerce', format='mixed')
  return {part: getattr(when.dt, part).astype('float64') for part in DATE_PARTS}


def fit(frame, target: str | None = None, id_column: str | None = None, max_levels: int = 10,
        one_hot: bool = False) -> dict:
  """The preprocessing spec of `frame`'s training rows (see the module docstring)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  missing = [c for c in (target, id_column) if c is not None and c not in frame]
  if missing:
    raise UserError(f'column {missing[0]!r} is not in the table; it has '
                    f'{", ".join(map(str, frame.columns))}')
  if len(frame) == 0:
    raise UserError('no training rows to fit the preprocessing on')
  numeric, categorical, dates = [], [], []
  for name in frame.columns:
    if name in (target, id_column):
      continue
    column = frame[name]
    if _is_date(column):
      parts = _date_parts(column)
      dates.append(str(name))
      for part, values in parts.items():
        numeric.append(_numeric_spec(f'{name}_{part}', values))
    elif (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
          or pd.api.types.is_bool_dtype(column)
          or isinstance(column.dtype, pd.CategoricalDtype)
          or (pd.api.types.is_integer_dtype(column) and column.nunique() <= max_levels)):
      counts = column.dropna().astype(str).value_counts(sort=True)
      levels = sorted(counts.index, key=lambda v: (-counts[v], v))
      categorical.append({'name': str(name), 'levels': list(levels)})
    elif pd.api.types.is_numeric_dtype(column):
      numeric.append(_numeric_spec(str(name), column.astype('float64')))
    else:
      raise UserError(f'column {name!r} has values of type {column.dtype}, neither numbers, '
                      'categories nor dates')
  return {'target': target, 'id': id_column, 'numeric': numeric,
          'categorical': categorical, 'dates': dates, 'one_hot': bool(one_hot),
          'columns': [str(c) for c in frame.columns if c not in (target, id_column)]}


def _numeric_spec(name: str, values) -> dict:
  present = values.dropna()
  if present.empty:
    raise UserError(f'column {name!r} has no value in the training rows')
  std = float(present.std(ddof=0))
  return {'name': name, 'median': float(present.median()), 'mean': float(present.mean()),
          'std': std if std > 0 else 1.0, 'indicator': bool(values.isna().any())}


def transform(spec: dict, frame) -> dict[str, np.ndarray]:
  """{'numeric': (N, F) float32 (standardized, indicators after), 'categorical': (N, C) int32
  codes} of `frame`'s rows, exactly as `spec` was fitted (one_hot: the codes as 0/1 columns
  appended to 'numeric', and no 'categorical')."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  absent = [c for c in spec['columns'] if c not in frame]
  if absent:
    raise UserError(f'column {absent[0]!r} that training had is not in this table')
  source = {}
  for name in spec['dates']:
    for part, values in _date_parts(frame[name]).items():
      source[f'{name}_{part}'] = values
  columns, indicators = [], []
  for column in spec['numeric']:
    values = source[column['name']] if column['name'] in source else frame[column['name']]
    values = pd.to_numeric(values, errors='coerce').astype('float64')
    if column['indicator']:
      indicators.append(values.isna().to_numpy(np.float32))
    filled = values.fillna(column['median']).to_numpy(np.float64)
    columns.append(((filled - column['mean']) / column['std']).astype(np.float32))
  codes = []
  for column in spec['categorical']:
    index = {level: i + 1 for i, level in enumerate(column['levels'])}
    values = frame[column['name']]
    codes.append(np.array([0 if v is None or (isinstance(v, float) and math.isnan(v)) else
                           index.get(str(v), 0) for v in values], np.int32))
  numeric = np.stack(columns + indicators, axis=1) if columns or indicators else np.zeros(
      (len(frame), 0), np.float32)
  categorical = np.stack(codes, axis=1) if codes else np.zeros((len(frame), 0), np.int32)
  if spec['one_hot']:
    hot = [np.eye(len(c['levels']) + 1, dtype=np.float32)[categorical[:, i]]
           for i, c in enumerate(spec['categorical'])]
    return {'numeric': np.concatenate([numeric] + hot, axis=1)}
  return {'numeric': numeric, 'categorical': categorical}


def embedding_sizes(spec: dict) -> list[tuple[int, int]]:
  """(codes, width) of each categorical column's embedding: its levels plus the unknown code."""
  return [(len(c['levels']) + 1, embedding_size(len(c['levels']) + 1))
          for c in spec['categorical']]


def save(spec: dict, path: str) -> None:
  with open(path, 'w') as f:
    json.dump(spec, f, indent=1)


def load(path: str) -> dict:
  with open(path) as f:
    return json.load(f)
