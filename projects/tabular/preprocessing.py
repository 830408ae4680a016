"""Mixed tabular columns into model inputs, fitted on training rows only, saved with the run.

  spec = fit(frame.iloc[train_rows], target='MEDV', id_column='id', kinds=column_kinds(frame))
  arrays = transform(spec, frame)              # {'numeric': (N, F) float32, 'categorical': ...}
  save(spec, path); spec == load(path)         # predicting later applies exactly this

What `fit` decides for each column, from the training rows alone:
- numeric: standardized by the training mean and standard deviation (a constant column
  becomes 0). Missing values are filled with the training median, and a 0/1 indicator column
  `<name>_missing` is added for every column that had any missing value in training (a column
  missing only at prediction is filled, without an indicator, as Keras users expect).
- dropped: string columns of free text or near-unique values (names, tickets, cabins: a
  network would memorize them), with a note saying which and why, unless the config keeps
  them (task_config.table.keep); and the columns task_config.table.drop names.
- categorical (strings, booleans, and the integer columns task_config.table.categorical
  names; integers are numbers otherwise, or with max_levels > 0 categories when they take at
  most that many values): integer codes, 1.. for the training levels by frequency, 0 for missing and for levels never seen in
  training. Learned embeddings take them (`embedding_sizes`, fastai's rule
  min(600, round(1.6 * n^0.56))), or `one_hot` expands them.
- dates (datetime columns, or strings that all parse as dates): split into year, month, day,
  day of week and day of year, which then are numeric columns as above.
The id column and the target are never features. The spec is plain JSON.

Which kind each column is comes from `column_kinds` over the whole training table (its types,
not its statistics), so that every fold fits the same columns; `align` then gives the folds'
specs the same shapes (members of one run, library/members.py). A column of numbers with text
in a few rows is a one-line error naming the column and the row, in training and in
prediction.
"""
import json
import math

import numpy as np

from library.errors import UserError

DATE_PARTS = ('year', 'month', 'day', 'day_of_week', 'day_of_year')


def level(value) -> str:
  """A category's level as a string: 2 and 2.0 are the same level (an integer column reads as
  floats where a file has a missing value in it)."""
  if isinstance(value, float) and value.is_integer():
    return str(int(value))
  return str(value)


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


def _numbers_with_text(name: str, column, ids=None) -> None:
  """A column of numbers holding text in a few rows (a CSV's 'n/a', '12,5', '?') reads as
  strings: a one-line error naming the column and the first such row, rather than a column of
  hundreds of categories."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  values = column.dropna()
  if values.empty or not all(isinstance(v, str) for v in values):
    return
  numbers = pd.to_numeric(values, errors='coerce')
  if numbers.notna().mean() >= 0.9 and numbers.isna().any():
    row = numbers.index[numbers.isna()][0]
    where = f'id {ids.loc[row]}' if ids is not None else f'line {row + 2} of the file'
    raise UserError(f'column {name!r} holds numbers, but {where} has {values.loc[row]!r}: '
                    'fix the file, or make it empty for a missing value')


# Strings a network would only memorize: at least this many rows to judge by, and either free
# text (a median of FREE_TEXT_WORDS words or more) or near-unique values (more distinct than
# NEAR_UNIQUE of the rows: names, tickets, cabins).
MIN_ROWS_TO_JUDGE = 20
FREE_TEXT_WORDS = 3
NEAR_UNIQUE = 0.5


def _not_a_feature(column) -> str:
  """Why a string column is dropped ('' to keep it): free text or near-unique values."""
  values = column.dropna().astype(str)
  if len(values) < MIN_ROWS_TO_JUDGE:
    return ''
  words = float(values.str.split().str.len().median())
  if words >= FREE_TEXT_WORDS:
    return f'free text, a median of {words:g} words a row'
  distinct = values.nunique()
  if distinct > NEAR_UNIQUE * len(values):
    return (f'near-unique strings, {distinct} distinct in {len(values)} rows: an identifier, '
            'not a category')
  return ''


def column_kinds(frame, target: str | None = None, id_column: str | None = None,
                 max_levels: int = 0, drop=(), keep=(),
                 categorical=()) -> dict[str, list[str]]:
  """{'numeric', 'categorical', 'dates': column names, 'dropped': {name: why}}: what each
  feature column is, decided by its type over the whole table, so that every fold fits the
  same columns. Integers are numbers, unless named in `categorical` (or, with max_levels > 0,
  taking at most that many values); strings and booleans are categories; string columns of
  free text or near-unique values are dropped (with why), unless named in `keep`; columns
  named in `drop` are dropped."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  missing = [c for c in (target, id_column) if c is not None and c not in frame]
  if missing:
    raise UserError(f'column {missing[0]!r} is not in the table; it has '
                    f'{", ".join(map(str, frame.columns))}')
  for setting, names in (('drop', drop), ('keep', keep), ('categorical', categorical)):
    unknown = [n for n in names if n not in frame or n in (target, id_column)]
    if unknown:
      raise UserError(f'task_config.table.{setting} names {unknown[0]!r}, which is not a '
                      f'feature column; the table has {", ".join(map(str, frame.columns))}')
  ids = frame[id_column] if id_column is not None else None
  kinds = {'numeric': [], 'categorical': [], 'dates': [], 'dropped': {}}
  for name in frame.columns:
    if name in (target, id_column):
      continue
    column = frame[name]
    if name in drop:
      kinds['dropped'][str(name)] = 'task_config.table.drop names it'
      continue
    _numbers_with_text(str(name), column, ids)
    text = pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
    if name in categorical:
      kinds['categorical'].append(str(name))
    elif _is_date(column):
      kinds['dates'].append(str(name))
    elif text and name not in keep and _not_a_feature(column):
      kinds['dropped'][str(name)] = _not_a_feature(column)
    elif (text or pd.api.types.is_bool_dtype(column)
          or isinstance(column.dtype, pd.CategoricalDtype)
          or (pd.api.types.is_integer_dtype(column) and column.nunique() <= max_levels)):
      kinds['categorical'].append(str(name))
    elif pd.api.types.is_numeric_dtype(column):
      kinds['numeric'].append(str(name))
    else:
      raise UserError(f'column {name!r} has values of type {column.dtype}, neither numbers, '
                      'categories nor dates')
  return kinds


def fit(frame, target: str | None = None, id_column: str | None = None, max_levels: int = 0,
        one_hot: bool = False, kinds: dict | None = None) -> dict:
  """The preprocessing spec of `frame`'s training rows (see the module docstring); `kinds`
  (column_kinds of the whole table) fixes which columns are which."""
  kinds = kinds or column_kinds(frame, target, id_column, max_levels)
  if len(frame) == 0:
    raise UserError('no training rows to fit the preprocessing on')
  numeric, categorical = [], []
  for name in frame.columns:
    name = str(name)
    column = frame[name]
    if name in kinds['dates']:
      for part, values in _date_parts(column).items():
        numeric.append(_numeric_spec(f'{name}_{part}', values))
    elif name in kinds['categorical']:
      counts = column.dropna().map(level).value_counts(sort=True)
      levels = sorted(counts.index, key=lambda v: (-counts[v], v))
      categorical.append({'name': name, 'levels': list(levels), 'codes': len(levels) + 1})
    elif name in kinds['numeric']:
      numeric.append(_numeric_spec(name, column.astype('float64')))
  return {'target': target, 'id': id_column, 'numeric': numeric,
          'categorical': categorical, 'dates': list(kinds['dates']), 'one_hot': bool(one_hot),
          'columns': [str(c) for c in frame.columns if c not in (target, id_column)
                      and str(c) not in kinds.get('dropped', {})]}


def align(specs: list[dict]) -> list[dict]:
  """Specs fitted on different rows (one per fold) made to give arrays of the same shapes:
  a missing-value indicator wherever any of them has one, and code tables as large as the
  largest (a fold's codes past its own levels are never used by it). Their values (means,
  medians, level order) stay each one's own."""
  specs = [json.loads(json.dumps(s)) for s in specs]
  for i, column in enumerate(specs[0]['numeric']):
    indicator = any(s['numeric'][i]['indicator'] for s in specs)
    for s in specs:
      s['numeric'][i]['indicator'] = indicator
  for i, column in enumerate(specs[0]['categorical']):
    codes = max(s['categorical'][i]['codes'] for s in specs)
    for s in specs:
      s['categorical'][i]['codes'] = codes
  return specs


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
    parsed = pd.to_numeric(values, errors='coerce').astype('float64')
    bad = parsed.isna() & values.notna()
    if bad.any():
      row = bad.index[bad.to_numpy()][0]
      where = (f'id {frame[spec["id"]].loc[row]}' if spec['id'] in frame else
               f'line {row + 2} of the file')
      raise UserError(f'column {column["name"]!r} holds numbers, but {where} has '
                      f'{values.loc[row]!r}')
    values = parsed
    if column['indicator']:
      indicators.append(values.isna().to_numpy(np.float32))
    filled = values.fillna(column['median']).to_numpy(np.float64)
    columns.append(((filled - column['mean']) / column['std']).astype(np.float32))
  codes = []
  for column in spec['categorical']:
    index = {level: i + 1 for i, level in enumerate(column['levels'])}
    values = frame[column['name']]
    codes.append(np.array([0 if v is None or (isinstance(v, float) and math.isnan(v)) else
                           index.get(level(v), 0) for v in values], np.int32))
  numeric = np.stack(columns + indicators, axis=1) if columns or indicators else np.zeros(
      (len(frame), 0), np.float32)
  categorical = np.stack(codes, axis=1) if codes else np.zeros((len(frame), 0), np.int32)
  if spec['one_hot']:
    hot = [np.eye(c['codes'], dtype=np.float32)[categorical[:, i]]
           for i, c in enumerate(spec['categorical'])]
    return {'numeric': np.concatenate([numeric] + hot, axis=1)}
  return {'numeric': numeric, 'categorical': categorical}


TARGET_SCALES = ('auto', 'none', 'standard', 'log')


def fit_target(values, mode: str, name: str = 'target') -> dict | None:
  """How a regression's target is scaled for training, fitted on the training rows' values:
  'standard' subtracts their mean and divides by their standard deviation; 'log' takes
  log(1 + y) first (the RMSLE of values is the RMSE of those logs); 'none' (or None back)
  leaves it. A target 'log' cannot take (-1 or below) is a one-line error."""
  values = np.asarray(values, np.float64)
  if mode == 'none':
    return None
  log = mode == 'log'
  if log:
    low = np.flatnonzero(values <= -1)
    if low.size:
      raise UserError(f'the target {name!r} is {values[low[0]]:g} in a training row: '
                      'task_config.table.target_scale=log takes log(1 + y), which needs '
                      'values above -1 (rmsle scores such values alone)')
    values = np.log1p(values)
  return {'log': log, 'mean': float(values.mean()), 'std': float(values.std()) or 1.0}


def scale_target(scale: dict | None, values) -> np.ndarray:
  """The target as the network trains on it (fit_target's scale applied)."""
  values = np.asarray(values, np.float64)
  if scale is None:
    return values.astype(np.float32)
  if scale['log']:
    values = np.log1p(values)
  return ((values - scale['mean']) / scale['std']).astype(np.float32)


def unscale_target(scale: dict | None, outputs) -> np.ndarray:
  """The network's outputs as the target's values (scale_target undone)."""
  outputs = np.asarray(outputs, np.float64)
  if scale is None:
    return outputs
  values = outputs * scale['std'] + scale['mean']
  return np.expm1(values) if scale['log'] else values


def embedding_sizes(spec: dict) -> list[tuple[int, int]]:
  """(codes, width) of each categorical column's embedding: its levels plus the unknown code
  (as many as the largest of aligned specs)."""
  return [(c['codes'], embedding_size(c['codes'])) for c in spec['categorical']]


def save(spec: dict, path: str) -> None:
  with open(path, 'w') as f:
    json.dump(spec, f, indent=1)


def load(path: str) -> dict:
  with open(path) as f:
    return json.load(f)
