"""A Kaggle-style table as a task of the one loop: supervised learning on fitted columns.

  config.task = 'projects.tabular.task'
  config.data.path = '/tmp/boston'                 # train.csv, test.csv, sample_submission.csv
  config.task_config.table.target = 'MEDV'; config.task_config.table.id = 'id'

A folder of images instead of train.csv (train/<class>/, test/) is an image-folder
competition (projects/tabular/images.py): the same task on the images, with any image model.

`load_data` reads the folder's train.csv (and checks test.csv and sample_submission.csv
against it), holds out data.validation / data.test rows if asked, and fits the column
preprocessing (projects/tabular/preprocessing.py) on the training rows only. Batches are
pytrees: inputs {'numeric': (B, F), 'categorical': (B, C) codes}, labels (B,). The fitted
spec is saved with the run (preprocessing.json), and the embedding tables' sizes go to the
model (Datasets.model_kwargs).

As members (k folds of one run, library/members.py), each fold fits its own preprocessing on
its own training rows (Datasets.refit): its own means, medians and category codes, the shapes
aligned over the folds; preprocessing.json then holds one spec per member.

The task itself is library/supervised.py's: the loss and metrics are Keras' names
(task_config.loss: mse or mae for regression, binary_crossentropy for two classes,
sparse_categorical_crossentropy for more). Classes are the target's distinct values in sorted
order, coded 0, 1, ...; they are saved in the spec. projects/tabular/submission.py turns a
trained workdir into out-of-fold scores and a submission.
"""
import os

import ml_collections
import numpy as np

from library import config as config_lib, parallel, supervised
from library.data import pipeline, splits as splits_lib
from library.errors import UserError
from projects.tabular import preprocessing

REGRESSION = ('mse', 'mae')


def default_task_config() -> ml_collections.ConfigDict:
  c = supervised.default_task_config()
  c.loss = 'mse'
  c.metrics = ('mae',)
  # The table: the target and id columns of train.csv (the id is never a feature); columns
  # dropped (`drop`) or kept though they look like free text or identifiers (`keep`); integer
  # columns taken as categories (`categorical`, or every one with at most max_levels values;
  # 0: integers are numbers); categories as one-hot columns instead of learned embeddings;
  # a regression's target scaled for training (preprocessing.fit_target: 'standard', 'log',
  # 'none'; 'auto': 'log' where the metric is rmsle, which scripts.competition resolves,
  # else 'standard'), fitted on each fold's training rows and undone on its predictions.
  c.table = ml_collections.ConfigDict({'target': '', 'id': '', 'max_levels': 0,
                                       'one_hot': False, 'drop': (), 'keep': (),
                                       'categorical': (), 'target_scale': 'auto'})
  return c


def validate_task_config(config) -> None:
  """The table's settings. An empty loss or target is left to the folder (scripts.competition
  fills them in, infer_table, before training; load_data refuses them still empty): the rest
  is checked as for any loss."""
  if not config.task_config.loss:
    filled = config.task_config.copy_and_resolve_references()
    filled.loss = 'mse'
    config = config_lib.with_section(config, 'task_config', filled)
  supervised.validate_task_config(config, default_task_config())
  t = config.task_config
  if t.table.max_levels < 0:
    raise UserError(f'task_config.table.max_levels={t.table.max_levels} must be >= 0')
  if t.table.target_scale not in preprocessing.TARGET_SCALES:
    raise UserError(f'task_config.table.target_scale={t.table.target_scale!r} is not one of '
                    f'{", ".join(preprocessing.TARGET_SCALES)}')
  if t.outputs:
    raise UserError('task_config.outputs: a table has one target (task_config.table.target)')
  if not config.data.path:
    raise UserError('data.path must be the competition folder (train.csv, test.csv)')
  if config.data.standardize:
    raise UserError('data.standardize: a table standardizes its numeric columns itself '
                    '(projects/tabular/preprocessing.py); leave it False')


def csv_columns(path: str) -> list[str]:
  """A CSV file's column names, from its header alone; [] where it is no CSV (read_folder
  names what is wrong with it)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  try:
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]
  except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
    return []


def read_csv(path: str, **options):
  import pandas as pd  # pylint: disable=import-outside-toplevel
  try:
    return pd.read_csv(path, **options)
  except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is not a CSV file ({str(e).splitlines()[0]})') from None


# The largest magnitude a table may hold: the model computes in float32.
LARGEST = float(np.finfo(np.float32).max)


def _check_range(frame, path: str, id_column: str, where, target: str = '') -> None:
  """Refuses an infinite number, or one beyond float32's range, in any numeric column but the
  id: a UserError naming the file, the column and the row."""
  for column in frame.columns:
    if column == id_column or not _numeric(frame[column]):
      continue
    values = frame[column].to_numpy(np.float64)
    bad = np.flatnonzero(np.abs(values) > LARGEST)
    if bad.size:
      value = values[bad[0]]
      what = 'infinite' if np.isinf(value) else f"beyond float32's range (±{LARGEST:.3g})"
      remedy = ('fix the file' if column == target else
                'fix the file, or leave the cell empty for a missing value')
      raise UserError(f'{path}: column {column!r} is {value:g} at {where(frame, bad[0])}, '
                      f'{what} ({bad.size} row(s) like it): {remedy}')


def _numeric(column) -> bool:
  import pandas as pd  # pylint: disable=import-outside-toplevel
  return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def find_sample(folder: str) -> str | None:
  """The folder's sample submission: sample_submission.csv, or the one other *submission.csv
  (Titanic ships gender_submission.csv); None without one."""
  path = os.path.join(folder, 'sample_submission.csv')
  if os.path.isfile(path):
    return path
  found = sorted(n for n in os.listdir(folder) if n.endswith('submission.csv')) if (
      os.path.isdir(folder)) else []
  if len(found) > 1:
    raise UserError(f'{folder} has {len(found)} submission files ({", ".join(found)}): keep '
                    'the sample submission only, or name it sample_submission.csv')
  return os.path.join(folder, found[0]) if found else None


_SAID = set()       # the notes this process printed
CLASS_LIMIT = 50    # a target of integers or strings with at most this many values: classes


def infer_table(config, folder: str) -> list[str]:
  """Fills what a Kaggle folder tells and the config leaves empty: the target (the column of
  train.csv that test.csv lacks), the id (the sample submission's first column, where the
  tables have it; else the sample's rows are the test rows, in order) and the loss (two
  values: binary_crossentropy; integers or strings with at most CLASS_LIMIT values:
  sparse_categorical_crossentropy; else mse). Returns notes saying what it chose."""
  t, notes = config.task_config, []
  train_path = os.path.join(folder, 'train.csv')
  if not os.path.isfile(train_path):
    return notes          # (an image-folder competition, or an error of read_folder's)
  # The files' headers only (a Digit Recognizer train.csv is 75 MB): read_folder reads them.
  train = csv_columns(train_path)
  test_path = os.path.join(folder, 'test.csv')
  test_columns = csv_columns(test_path) if os.path.isfile(test_path) else []
  sample_path = find_sample(folder)
  sample_columns = csv_columns(sample_path) if sample_path else []
  from projects.tabular import images  # pylint: disable=import-outside-toplevel
  pixels = images.pixel_columns(train)
  if pixels and config.model.module == 'projects.tabular.models':
    raise UserError(f'{folder}/train.csv\'s {len(pixels)} pixel columns are images, for an '
                    'image recipe: --config=configs/tabular/competition.py:digits (book 5.1\'s '
                    'convnet), not the table network')
  if pixels and t.table.id and t.table.id not in train:
    t.table.id = ''        # (an image folder's file names): the sample's rows are the ids
    notes.append('ids: the sample submission\'s rows, in test.csv\'s order')
  if not t.table.target:
    lacking = [c for c in train if c not in test_columns]
    if test_columns and len(lacking) == 1:
      t.table.target = str(lacking[0])
    elif len(sample_columns) == 2 and sample_columns[1] in train:
      t.table.target = str(sample_columns[1])
    else:
      raise UserError(f'name the target: --config.task_config.table.target=... (train.csv\'s '
                      f'columns that test.csv lacks: {lacking[:10]})')
    notes.append(f'target {t.table.target!r}')
  if not t.table.id and sample_columns and sample_columns[0] in train and (
      sample_columns[0] in test_columns):
    t.table.id = str(sample_columns[0])
    notes.append(f'id {t.table.id!r}')
  if not t.loss:
    if t.table.target not in train:
      return notes        # read_folder names it
    y = read_csv(train_path, usecols=[t.table.target])[t.table.target].dropna()
    distinct = y.nunique()
    numbers = _numeric(y) and not (y.astype(float) == y.astype(float).round()).all()
    if distinct == 2:
      t.loss = 'binary_crossentropy'
    elif not numbers and distinct <= CLASS_LIMIT:
      t.loss = 'sparse_categorical_crossentropy'
    else:
      t.loss = 'mse'
    if t.loss != 'mse':      # (yes/no: each fold's AUC too, as Keras' AUC() reports it)
      t.metrics = ('accuracy', 'auc') if distinct == 2 else ('accuracy',)
      if config.members.scheme == 'kfold':     # classes: each fold with their shares
        config.members.scheme = 'stratified_kfold'
    notes.append(f'loss {t.loss} ({distinct} distinct target values)')
  return notes


def read_folder(folder: str, target: str, id_column: str = ''):
  """(train, test or None, sample submission or None) of a competition folder, checked
  against each other: every mistake a one-line UserError naming the file, column and row."""
  folder = os.path.expanduser(folder)
  if not os.path.isdir(folder):
    raise UserError(f'data.path={folder}: no such folder (a competition folder holds '
                    'train.csv, test.csv and sample_submission.csv)')
  path = os.path.join(folder, 'train.csv')
  if not os.path.isfile(path):
    raise UserError(f'data.path={folder} has no train.csv')
  train = read_csv(path)
  if target not in train:
    raise UserError(f'task_config.table.target={target!r} is not a column of {path}; it has '
                    f'{", ".join(map(str, train.columns))}')
  if id_column and id_column not in train:
    raise UserError(f'task_config.table.id={id_column!r} is not a column of {path}; it has '
                    f'{", ".join(map(str, train.columns))}')
  if len(train) < 2:
    raise UserError(f'{path} has {len(train)} rows: nothing to learn from')

  def where(frame, row):
    return f'id {frame[id_column].iloc[row]}' if id_column else f'line {row + 2} of the file'

  _check_range(train, path, id_column, where, target)
  absent = np.flatnonzero(train[target].isna().to_numpy())
  if absent.size:
    raise UserError(f'{path}: the target {target!r} is missing at {where(train, absent[0])} '
                    f'({absent.size} rows); drop those rows or fill them')
  if id_column:
    repeated = train[id_column].duplicated().to_numpy()
    if repeated.any():
      raise UserError(f'{path}: id {train[id_column].iloc[np.argmax(repeated)]!r} appears more '
                      f'than once in column {id_column!r}')
  test = sample = None
  path = os.path.join(folder, 'test.csv')
  if os.path.isfile(path):
    test = read_csv(path)
    features = [c for c in train.columns if c != target]
    if list(test.columns) != features:
      missing = [c for c in features if c not in test]
      extra = [c for c in test.columns if c not in features]
      what = (f'lacks {missing[0]!r}' if missing else f'has {extra[0]!r}, which train.csv has '
              'not' if extra else 'has them in another order')
      raise UserError(f'{path}: its columns are not train.csv\'s without the target: it '
                      f'{what}')
    _check_range(test, path, id_column, where)
    if id_column and test[id_column].duplicated().any():
      raise UserError(f'{path}: id {test[id_column][test[id_column].duplicated()].iloc[0]!r} '
                      f'appears more than once in column {id_column!r}')
  path = find_sample(folder)
  if path is not None:
    sample = read_csv(path)
    if not id_column and test is not None and len(sample) != len(test):
      raise UserError(f'{path} has {len(sample)} rows and test.csv {len(test)}: without an '
                      'id column in the tables, the sample submission\'s rows are the test '
                      'rows, in order')
    if id_column and test is not None:
      if id_column not in sample:
        raise UserError(f'{path} has no id column {id_column!r}; it has '
                        f'{", ".join(map(str, sample.columns))}')
      ours, theirs = list(test[id_column]), list(sample[id_column])
      if ours != theirs:
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                     min(len(ours), len(theirs)))
        raise UserError(f'{path}: its ids are not test.csv\'s in its order ({len(theirs)} '
                        f'and {len(ours)} rows; they first differ at line {first + 2})')
  return train, test, sample


def classes_of(config, labels) -> list | None:
  """The target's classes (its distinct values, in order: numbers by value, others as text),
  for classification; None for regression. Class i is code i; binary's positive is the
  second."""
  if config.task_config.loss in REGRESSION:
    return None
  values = labels.dropna().unique().tolist()
  numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
  values = sorted(values) if numbers else sorted(values, key=str)   # 2 before 10
  if config.task_config.loss == 'binary_crossentropy' and len(values) != 2:
    raise UserError(f'task_config.loss=binary_crossentropy needs 2 classes; the target has '
                    f'{len(values)}: {values[:6]}')
  if len(values) < 2:
    raise UserError(f'the target has one class only ({values})')
  return values


def encode_labels(config, classes, target) -> np.ndarray:
  """The target column as the loss takes it: values (float32) or class codes (int32, which
  binary_crossentropy takes as 0/1 and stratified folds stratify)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  if classes is None:
    values = pd.to_numeric(target, errors='coerce')
    if values.isna().any():
      row = int(np.flatnonzero(values.isna().to_numpy())[0])
      raise UserError(f'the target {target.name!r} of a regression holds {target.iloc[row]!r} '
                      f'at line {row + 2} of train.csv: not a number')
    return values.to_numpy(np.float32)
  index = {preprocessing.level(c): i for i, c in enumerate(classes)}
  return np.array([index[preprocessing.level(v)] for v in target], np.int32)


def split_rows(config, num_rows: int) -> dict[str, np.ndarray]:
  """{'train', and 'validation' / 'test' if held out: rows of train.csv, in file order}, in
  the order the splits are laid out (members index them so: train, validation, test)."""
  d = config.data
  seed = config.seed if d.holdout_seed is None else d.holdout_seed
  rows = splits_lib.holdout_indices(num_rows, {'validation': d.validation, 'test': d.test},
                                    seed, d.shuffle_holdout)
  return {name: np.sort(rows[name]) for name in ('train', 'validation', 'test') if name in rows}


def _model_kwargs(config, spec: dict) -> dict:
  """What the fitted table decides for the model: one output per class for more than two
  classes, and the embedding tables' sizes."""
  out = {}
  if config.task_config.loss == 'sparse_categorical_crossentropy':
    out['num_outputs'] = len(spec['classes'])
  if not spec['one_hot'] and spec['categorical']:
    out['embeddings'] = tuple(preprocessing.embedding_sizes(spec))
  return out


def target_scale(config, metric: str = '') -> str:
  """task_config.table.target_scale with 'auto' resolved: 'log' for an rmsle metric (training
  on log(1 + y) is training for it), else 'standard'."""
  mode = config.task_config.table.target_scale
  if mode != 'auto':
    return mode
  return 'log' if metric == 'rmsle' else 'standard'


def kind(config) -> str:
  """'regression', 'binary' or 'multiclass', from task_config.loss."""
  loss = config.task_config.loss
  if loss in REGRESSION:
    return 'regression'
  return 'binary' if loss == 'binary_crossentropy' else 'multiclass'


def kind_options(table) -> dict:
  """column_kinds' settings from task_config.table: max_levels, drop, keep, categorical."""
  return dict(max_levels=table.max_levels, drop=tuple(table.drop), keep=tuple(table.keep),
              categorical=tuple(table.categorical))


def load_data(config, arrays=None) -> pipeline.Datasets:
  if arrays is not None:
    raise UserError('the tabular task reads its table from data.path, not from arrays')
  t, d = config.task_config.table, config.data
  if not t.target or not config.task_config.loss:
    raise UserError(f"task_config.{'table.target' if not t.target else 'loss'} is '': "
                    'python -m scripts.competition fills it in from the folder; a run of '
                    'scripts.train names it (--config.task_config...)')
  from projects.tabular import images  # pylint: disable=import-outside-toplevel
  if images.is_image_competition(d.path):
    return images.load_data(config, split_rows, kind(config))
  train, _, _ = read_folder(d.path, t.target, t.id)
  kinds = preprocessing.column_kinds(train, t.target, t.id or None, **kind_options(t))
  note = ('note: not features: ' + '; '.join(f'{name!r} ({why})' for name, why in
                                            kinds['dropped'].items()) +
          ' (task_config.table.keep=(...) keeps one, table.drop=(...) drops more)')
  if kinds['dropped'] and parallel.is_main_process() and note not in _SAID:
    _SAID.add(note)        # once a process (the submission reads the table again)
    print(note, flush=True)
  classes = classes_of(config, train[t.target])
  labels = encode_labels(config, classes, train[t.target])
  rows = split_rows(config, len(train))
  order = list(rows)
  frames = {name: train.iloc[rows[name]] for name in order}
  fit_options = dict(target=t.target, id_column=t.id or None, max_levels=t.max_levels,
                     one_hot=t.one_hot, kinds=kinds)
  scale_mode = target_scale(config)

  def fitted(frame, values) -> dict:
    """The preprocessing of training rows `frame` (their target `values`): the columns', the
    classes and the target's scale."""
    spec = preprocessing.fit(frame, **fit_options)
    spec['classes'] = classes
    spec['target_scale'] = (None if classes is not None else
                            preprocessing.fit_target(values, scale_mode, t.target))
    return spec

  def targets(spec, values):
    return values if classes is not None else preprocessing.scale_target(
        spec['target_scale'], values)

  spec = fitted(frames['train'], labels[rows['train']])
  splits = {name: {'inputs': preprocessing.transform(spec, frames[name]),
                   'labels': targets(spec, labels[rows[name]])} for name in order}
  every_row = np.concatenate([rows[name] for name in order])

  def refit(train_rows: list) -> pipeline.MemberInputs:
    """Each member's preprocessing fitted on its own training rows (indices into the splits'
    rows in the order train, validation, test), applied to every row; a regression's target
    scaled by each member's own fit."""
    table, values = train.iloc[every_row], labels[every_row]
    specs = preprocessing.align([fitted(table.iloc[r], values[r]) for r in train_rows])
    inputs = [preprocessing.transform(s, table) for s in specs]
    stacked = {key: np.stack([x[key] for x in inputs]) for key in inputs[0]}
    own_labels = None if classes is not None else np.stack([targets(s, values) for s in specs])
    return pipeline.MemberInputs(stacked, specs, _model_kwargs(config, specs[0]),
                                 labels=own_labels)

  return pipeline.Datasets(splits, None, (), model_kwargs=_model_kwargs(config, spec),
                           preprocessing=spec, refit=refit)


def make_task(config, data, total_steps):
  return supervised.make_task(config, data, total_steps)
