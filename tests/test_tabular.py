"""The offline Kaggle-style competitions (projects/tabular/competitions.py): the download's
layout, the scorer's rules, and scikit-learn's baselines on the same folds."""
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from library.errors import UserError
from projects.tabular import competitions


@pytest.fixture(scope='module')
def made(tmp_path_factory):
  root = tmp_path_factory.mktemp('competitions')
  return {name: (str(root / name), competitions.make(name, str(root / name)))
          for name in competitions.COMPETITIONS
          if name in competitions.TABLES}


@pytest.fixture(scope='module')
def made_images(tmp_path_factory):
  root = tmp_path_factory.mktemp('image_competitions')
  return {name: (str(root / name), competitions.make(name, str(root / name)))
          for name in competitions.IMAGE_COMPETITIONS}


def test_a_competition_folder_is_laid_out_as_a_kaggle_download(made):
  for name, (folder, info) in made.items():
    assert sorted(os.listdir(folder)) == sorted(competitions.FILES)
    train = pd.read_csv(os.path.join(folder, 'train.csv'))
    test = pd.read_csv(os.path.join(folder, 'test.csv'))
    sample = pd.read_csv(os.path.join(folder, 'sample_submission.csv'))
    solution = pd.read_csv(os.path.join(folder, 'solution.csv'))
    target = info['target']
    assert target in train and target not in test, name
    assert list(sample.columns) == ['id', target] and list(solution.columns) == ['id', target]
    assert list(train.columns[:-1]) == list(test.columns)
    np.testing.assert_array_equal(sample['id'], test['id'])
    assert not set(train['id']) & set(test['id'])                 # the test rows held out
    assert len(train) + len(test) == {'boston': 506, 'breast_cancer': 569}[name]
    assert json.load(open(os.path.join(folder, 'competition.json'))) == info
  y = pd.read_csv(os.path.join(made['breast_cancer'][0], 'train.csv'))['malignant']
  assert set(y) == {0, 1} and 0.3 < y.mean() < 0.45        # 212 of 569 are malignant


def test_the_scorer_scores_by_the_metric_and_refuses_what_kaggle_refuses(made, tmp_path):
  folder, _ = made['boston']
  train = pd.read_csv(os.path.join(folder, 'train.csv'))
  solution = pd.read_csv(os.path.join(folder, 'solution.csv'))
  # The sample submission predicts the training mean everywhere: its RMSE is computable.
  expected = np.sqrt(np.mean((solution['MEDV'] - train['MEDV'].mean()) ** 2))
  assert competitions.score(os.path.join(folder, 'sample_submission.csv'),
                            folder) == pytest.approx(expected)
  perfect = tmp_path / 'perfect.csv'
  solution.to_csv(perfect, index=False)
  assert competitions.score(str(perfect), folder) == 0.0
  sample = pd.read_csv(os.path.join(folder, 'sample_submission.csv'))
  cases = {
      'columns': (sample[['MEDV', 'id']], 'has columns'),
      'rows': (sample.iloc[1:], f'line 2 has id {sample["id"][1]} where sample_submission.csv '
                                f'has id {sample["id"][0]}'),
      'order': (sample.iloc[::-1], f'line 2 has id {sample["id"].iloc[-1]} where'),
      'short': (sample.iloc[:-1], f'line {len(sample) + 1} has no row where'),
      'nan': (sample.assign(MEDV=[np.nan] + [1.0] * (len(sample) - 1)), 'not a finite number'),
  }
  for name, (frame, fragment) in cases.items():
    path = tmp_path / f'{name}.csv'
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=re.escape(fragment)):
      competitions.score(str(path), folder)
  # Answers that are not this folder's: an id the sample has is missing, or one repeats.
  for name, edit, fragment in (
      ('other', lambda f: f.assign(id=[10**6] + list(f['id'][1:])),
       f'solution.csv has no answer for id {solution["id"][0]}'),
      ('twice', lambda f: pd.concat([f, f.iloc[:1]]), f'answers id {solution["id"][0]} more '
                                                      'than once')):
    damaged = tmp_path / name
    shutil.copytree(folder, damaged)
    edit(solution).to_csv(damaged / 'solution.csv', index=False)
    with pytest.raises(UserError, match=re.escape(fragment)):
      competitions.score(os.path.join(folder, 'sample_submission.csv'), str(damaged))
  folder, _ = made['breast_cancer']
  sample = pd.read_csv(os.path.join(folder, 'sample_submission.csv'))
  sample.assign(malignant=2.0).to_csv(tmp_path / 'p.csv', index=False)
  with pytest.raises(UserError, match='roc_auc scores probabilities'):
    competitions.score(str(tmp_path / 'p.csv'), folder)
  with pytest.raises(UserError, match='exists and is not an empty folder'):
    competitions.make('boston', folder)
  assert sorted(os.listdir(folder)) == sorted(competitions.FILES)   # nothing overwritten


def test_every_metric_is_scikit_learns():
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  y, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.1, 0.9])
  expected = {'accuracy': metrics.accuracy_score(y, p > 0.5), 'log_loss': metrics.log_loss(y, p),
              'roc_auc': metrics.roc_auc_score(y, p),
              'rmse': np.sqrt(metrics.mean_squared_error(y, p)),
              'rmsle': np.sqrt(metrics.mean_squared_log_error(y, p)),
              'mae': metrics.mean_absolute_error(y, p)}
  for name in competitions.METRICS:
    fn, _, kind = competitions._metric(name)   # pylint: disable=protected-access
    got = fn(y, (p > 0.5).astype(int) if kind == 'label' else p)
    assert got == pytest.approx(expected[name]), name
  with pytest.raises(UserError, match="metric='auc' is not one of"):
    competitions._metric('auc')   # pylint: disable=protected-access


def test_the_baselines_learn_on_the_same_folds_and_their_submissions_score(made, tmp_path,
                                                                          monkeypatch):
  monkeypatch.setenv('DLWR_CACHE_DIR', str(tmp_path / 'cache'))
  rows = {name: {r['model']: r for r in competitions.baselines(folder, k=5)}
          for name, (folder, _) in made.items()}
  # Boston: the training mean scores about 9.4 RMSE on the test rows; both models far less.
  assert rows['boston']['hist_gradient_boosting']['test'] < 4.0
  assert rows['boston']['linear']['test'] < 6.0
  assert all(r['oof'] < 6.0 for r in rows['boston'].values())
  # Breast cancer: chance is an AUC of 0.5.
  assert all(r['oof'] > 0.97 and r['test'] > 0.97 for r in rows['breast_cancer'].values())
  for name, (folder, _) in made.items():
    for row in rows[name].values():
      assert competitions.score(row['submission'], folder) == row['test']
  # Fitted once per files, folds and settings: a rerun fits nothing and says so; other
  # folds fit again.
  fits = []
  fit = competitions._fit_baselines  # pylint: disable=protected-access
  monkeypatch.setattr(competitions, '_fit_baselines', lambda *a: fits.append(1) or fit(*a))
  folder = made['boston'][0]
  again = competitions.baselines(folder, k=5)
  assert not fits and all(r['cached_hit'] for r in again)
  assert [(r['oof'], r['test']) for r in again] == [
      (r['oof'], r['test']) for r in rows['boston'].values()]
  assert not any(r['cached_hit'] for r in competitions.baselines(folder, k=4)) and fits


def _mixed_table():
  return pd.DataFrame({
      'id': [10, 11, 12, 13, 14, 15],
      'size': [1.0, 2.0, np.nan, 4.0, 100.0, np.nan],
      'colour': ['red', 'blue', 'red', None, 'green', 'purple'],
      'floors': [1, 2, 1, 2, 1, 3],          # integers, declared a category (FLOORS below)
      'sold': ['2020-01-31', '2021-06-15', '2019-12-01', '2020-02-29', '2022-07-04', None],
      'price': [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]})


def test_preprocessing_is_fitted_on_the_training_rows_only_and_saved_exactly(tmp_path):
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  table = _mixed_table()
  train = table.iloc[:4]
  kinds = preprocessing.column_kinds(table, 'price', 'id', categorical=('floors',))
  spec = preprocessing.fit(train, target='price', id_column='id', kinds=kinds)
  assert [c['name'] for c in spec['categorical']] == ['colour', 'floors']
  assert spec['dates'] == ['sold'] and spec['columns'] == ['size', 'colour', 'floors', 'sold']
  size = next(c for c in spec['numeric'] if c['name'] == 'size')
  # Training rows only: 1, 2, 4 (the 100 of row 4 is not seen); a missing value there.
  assert size['mean'] == pytest.approx(7 / 3) and size['median'] == 2.0 and size['indicator']
  assert spec == preprocessing.fit(table.iloc[:4].assign(price=0), target='price',
                                   id_column='id', kinds=kinds)  # the target is no feature
  out = preprocessing.transform(spec, table)
  names = [c['name'] for c in spec['numeric']]
  numeric = dict(zip(names + ['size_missing'], out['numeric'].T))
  np.testing.assert_allclose(numeric['size'][[0, 2, 4]],
                             (np.array([1.0, 2.0, 100.0]) - 7 / 3) / size['std'], rtol=1e-6)
  np.testing.assert_array_equal(numeric['size_missing'], [0, 0, 1, 0, 0, 1])
  # Dates become parts: 2020-01-31 is a Friday (4), day 31 of the year.
  sold = {p: next(c for c in spec['numeric'] if c['name'] == f'sold_{p}') for p in
          ('year', 'month', 'day_of_week', 'day_of_year')}
  for part, value in (('year', 2020), ('month', 1), ('day_of_week', 4), ('day_of_year', 31)):
    got = numeric[f'sold_{part}'][0] * sold[part]['std'] + sold[part]['mean']
    assert got == pytest.approx(value), part
  # Codes by training frequency from 1; missing and never-seen levels are 0.
  colour = spec['categorical'][0]['levels']
  assert colour == ['red', 'blue']
  np.testing.assert_array_equal(out['categorical'][:, 0], [1, 2, 1, 0, 0, 0])
  np.testing.assert_array_equal(out['categorical'][:, 1], [1, 2, 1, 2, 1, 0])   # 3 unseen
  assert preprocessing.embedding_sizes(spec) == [(3, 3), (3, 3)]
  preprocessing.save(spec, str(tmp_path / 'p.json'))
  again = preprocessing.transform(preprocessing.load(str(tmp_path / 'p.json')), table)
  for key in out:
    np.testing.assert_array_equal(again[key], out[key])
  hot = preprocessing.transform(dict(spec, one_hot=True), table)
  assert set(hot) == {'numeric'} and hot['numeric'].shape == (6, out['numeric'].shape[1] + 6)
  with pytest.raises(UserError, match="column 'colour' that training had is not in this"):
    preprocessing.transform(spec, table.drop(columns=['colour']))
  with pytest.raises(UserError, match="column 'cost' is not in the table"):
    preprocessing.fit(train, target='cost')


def test_fastai_embedding_size_rule():
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  assert [preprocessing.embedding_size(n) for n in (2, 10, 100, 10**7)] == [2, 6, 21, 600]


def _competition_config(name: str, folder: str, epochs: float):
  from configs.tabular import competition  # pylint: disable=import-outside-toplevel
  config = competition.get_config(name)
  config.data.path = folder
  config.compilation_cache_dir = ''
  config.num_epochs = epochs
  config.eval_every_epochs = epochs
  config.checkpoint.every_epochs = epochs
  return config


def test_boston_from_folder_to_scored_submission_learns_beside_the_baselines(made, tmp_path):
  """Our 5 folds as members of one run: the out-of-fold RMSE far below the training mean's,
  a submission Kaggle would take, the baselines and blend on the very same folds."""
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  folder, _ = made['boston']
  config = _competition_config('boston', folder, 25.0)
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  # Each fold standardized its own target: no pooled score in those scales (the submission's
  # out-of-fold score below is in the target's units).
  assert 'out_of_fold' not in results and len(results['members']) == 5
  report = submission.submit(str(tmp_path / 'run'), folder)
  rows = {r['model'].split(' ')[0]: r for r in report['models']}
  y = pd.read_csv(os.path.join(folder, 'train.csv'))['MEDV']
  assert report['oof_rows'] == len(y) and report['members'] == 5
  # Predicting the mean scores the target's spread, about 9.2 RMSE out of fold.
  assert rows['ours']['oof'] < 0.6 * y.std() and rows['ours']['test'] < 5.0, rows
  assert rows['hist_gradient_boosting']['oof'] < 4.5 and rows['linear']['oof'] < 6.0
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  sample = pd.read_csv(os.path.join(folder, 'sample_submission.csv'))
  assert list(sub.columns) == list(sample.columns)
  np.testing.assert_array_equal(sub['id'], sample['id'])
  assert competitions.score(str(tmp_path / 'run' / 'submission.csv'),
                            folder) == rows['ours']['test']
  assert 0.0 <= report['blend_weight_ours'] <= 1.0
  if 'blend' in rows:       # written only when it beats both out of fold
    assert rows['blend']['oof'] < min(rows['ours']['oof'], rows['hist_gradient_boosting']['oof'])
  # The folds our members trained on are the folds the baselines were scored on.
  spec = json.load(open(tmp_path / 'run' / 'preprocessing.json'))
  assert len(spec) == 5
  kfolds = competitions.folds(y.to_numpy(), 5, 0, 'regression')
  train_rows = pd.read_csv(os.path.join(folder, 'train.csv'))
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
  kinds = preprocessing.column_kinds(train_rows, 'MEDV', 'id',
                                     **task_lib.kind_options(config.task_config.table))
  for member, (rows_m, _) in zip(spec, kfolds):
    alone = preprocessing.fit(train_rows.iloc[rows_m], 'MEDV', 'id', kinds=kinds)
    assert member['numeric'] == alone['numeric']     # fitted on that fold's rows alone
  # The report names the checkpoint it came from; a damaged workdir file is a one-line error.
  run = tmp_path / 'run'
  assert report['step'] == json.load(open(run / 'results.json'))['steps']
  assert report['passed_over'] == []
  for name, garbage, fragment in (
      ('preprocessing.json', '{"numeric": [', 'preprocessing.json is not JSON'),
      ('preprocessing.json', '[1, 2]', 'preprocessing.json is not the preprocessing this run'),
      ('config.json', '{"a": 1}', 'config.json is not a config this codebase wrote')):
    saved = (run / name).read_text()
    (run / name).write_text(garbage)
    with pytest.raises(UserError, match=re.escape(fragment)):
      submission.submit(str(run), folder)
    (run / name).write_text(saved)


def test_a_grid_of_values_is_scored_out_of_fold_and_the_best_one_submitted(made, tmp_path):
  """Folds x learning rates as members of one run: each value scored on its own folds, the
  best value's folds alone averaged into the submission (and into predict_table)."""
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  folder, _ = made['boston']
  config = _competition_config('boston', folder, 25.0)
  config.members.learning_rate = (1e-6, 1e-2)
  workdir = str(tmp_path / 'run')
  assert train.train_and_evaluate(config, workdir)['num_members'] == 10
  report = submission.submit(workdir, folder, baselines=False)
  assert report['values'] == {'learning_rate': 0.01}
  assert (report['members'], report['oof_rows']) == (5, 405)
  rows = {r['model']: r for r in report['models']}
  assert list(rows) == ['ours (learning_rate=0.01)', 'ours (learning_rate=1e-06)']
  best, other = rows['ours (learning_rate=0.01)'], rows['ours (learning_rate=1e-06)']
  assert best['oof'] < 0.5 * other['oof'] and other['test'] is None
  assert best['test'] < 5.0        # (the untrained value's folds averaged in would not be)
  sub = pd.read_csv(os.path.join(workdir, 'submission.csv'))
  test = pd.read_csv(os.path.join(folder, 'test.csv'))
  again = submission.predict_table(workdir, test.drop(columns=['id']))
  np.testing.assert_allclose(again[:, 0], sub['MEDV'], rtol=1e-5)


def test_a_submission_column_of_class_outputs():
  """A sigmoid or a softmax over two classes submits the second class's probability, or
  labels; more classes submit labels, or their probabilities, a column each."""
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  two = np.array([[0.9, 0.1], [0.2, 0.8]])
  np.testing.assert_array_equal(submission._values(two, ['a', 'b'], 'probability'), [0.1, 0.8])
  np.testing.assert_array_equal(submission._values(two[:, 1:], ['a', 'b'], 'probability'),
                                [0.1, 0.8])
  assert list(submission._values(two, ['a', 'b'], 'label')) == ['a', 'b']
  three = np.array([[0.2, 0.5, 0.3]])
  assert list(submission._values(three, ['a', 'b', 'c'], 'label')) == ['b']
  np.testing.assert_array_equal(submission._values(three, ['a', 'b', 'c'], 'probability'),
                                three)


def _mixed_folder(made, tmp_path) -> str:
  """Boston's real rows with what real competitions hold: a text category (one of its levels
  only in test.csv), a date column, and missing numbers."""
  source, _ = made['boston']
  folder = tmp_path / 'mixed'
  shutil.copytree(source, folder)
  rng = np.random.default_rng(1)
  for name in ('train.csv', 'test.csv'):
    frame = pd.read_csv(folder / name)
    frame.insert(1, 'town', np.array(['north', 'south', 'east', 'west'])[frame['RAD'] % 4])
    frame.insert(2, 'listed', pd.Timestamp('2001-01-01') + pd.to_timedelta(
        rng.integers(0, 3000, len(frame)), unit='D'))
    frame.loc[rng.random(len(frame)) < 0.1, 'CRIM'] = np.nan
    if name == 'test.csv':
      frame.loc[0, 'town'] = 'atlantis'
    frame.to_csv(folder / name, index=False)
  return str(folder)


def test_mixed_columns_train_as_members_each_with_its_own_preprocessing(made, tmp_path):
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  folder = _mixed_folder(made, tmp_path)
  config = _competition_config('boston', folder, 2.0)
  config.task_config.table.categorical = ()       # RAD and CHAS as numbers; town as text
  workdir = str(tmp_path / 'run')
  results = train.train_and_evaluate(config, workdir)
  assert results['num_members'] == 5
  specs = json.load(open(os.path.join(workdir, 'preprocessing.json')))
  assert [[c['name'] for c in s['categorical']] for s in specs] == [['town']] * 5
  assert all(s['dates'] == ['listed'] for s in specs)
  # Each fold's own median and category order; shapes aligned: one indicator for all.
  assert len({next(c['median'] for c in s['numeric'] if c['name'] == 'CRIM')
              for s in specs}) > 1
  assert all(next(c for c in s['numeric'] if c['name'] == 'CRIM')['indicator'] for s in specs)
  report = submission.submit(workdir, folder, baselines=False)
  sub = pd.read_csv(os.path.join(workdir, 'submission.csv'))
  assert np.isfinite(sub['MEDV']).all() and len(sub) == len(pd.read_csv(
      os.path.join(folder, 'test.csv')))                  # 'atlantis' is code 0, no crash
  assert [r['model'] for r in report['models']] == ['ours']
  test = pd.read_csv(os.path.join(folder, 'test.csv'))
  again = submission.predict_table(workdir, test.drop(columns=['id']))
  np.testing.assert_allclose(again[:, 0], sub['MEDV'], rtol=1e-5)


def test_a_competition_folders_mistakes_are_one_line_errors(made, tmp_path):
  from projects.tabular import task  # pylint: disable=import-outside-toplevel
  source, _ = made['boston']

  def broken(name, edit, file='train.csv'):
    folder = tmp_path / name
    shutil.copytree(source, folder)
    frame = pd.read_csv(folder / file)
    edit(frame).to_csv(folder / file, index=False)
    return str(folder)

  def first_id(file):
    return pd.read_csv(os.path.join(source, file))['id'][0]

  cases = {
      'test-columns': (broken('a', lambda f: f.drop(columns=['TAX']), 'test.csv'),
                       "test.csv: its columns are not train.csv's without the target: it lacks "
                       "'TAX'"),
      'duplicate-id': (broken('b', lambda f: f.assign(id=[f['id'][1]] + list(f['id'][1:]))),
                       f"id {pd.read_csv(os.path.join(source, 'train.csv'))['id'][1]!r} appears "
                       "more than once in column 'id'"),
      'missing-target': (broken('c', lambda f: f.assign(MEDV=[np.nan] + list(f['MEDV'][1:]))),
                         f"the target 'MEDV' is missing at id {first_id('train.csv')} (1 rows)"),
      'sample-ids': (broken('d', lambda f: f.iloc[::-1], 'sample_submission.csv'),
                     "sample_submission.csv: its ids are not test.csv's in its order"),
      'text-in-numbers': (broken('e', lambda f: f.assign(TAX=f['TAX'].astype(object)).assign(
          TAX=lambda g: ['12,5'] + list(g['TAX'][1:]))),
                          f"column 'TAX' holds numbers, but id {first_id('train.csv')} has "
                          "'12,5'"),
  }
  # Numbers the model cannot compute with, at a random row of a random column of each file.
  rng = np.random.default_rng()
  for i, (file, value, what) in enumerate((
      ('train.csv', np.inf, 'infinite'), ('train.csv', -1e300, "beyond float32's range"),
      ('test.csv', -np.inf, 'infinite'), ('train.csv', 4e38, "beyond float32's range"))):
    frame = pd.read_csv(os.path.join(source, file))
    row, column = int(rng.integers(len(frame))), str(rng.choice(frame.columns[1:]))

    def put(f, row=row, column=column, value=value):
      f = f.copy()
      f[column] = f[column].astype(np.float64)
      f.loc[row, column] = value
      return f

    cases[f'range-{i}'] = (broken(f'r{i}', put, file),
                           f"{file}: column {column!r} is {value:g} at id {frame['id'][row]}, "
                           f'{what}')
  for name, (folder, fragment) in cases.items():
    with pytest.raises(UserError, match=re.escape(fragment)):
      train, _, _ = task.read_folder(folder, 'MEDV', 'id')
      from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
      preprocessing.column_kinds(train, 'MEDV', 'id')
    assert name
  with pytest.raises(UserError, match="task_config.table.target='price' is not a column"):
    task.read_folder(source, 'price', 'id')
  with pytest.raises(UserError, match='no such folder'):
    task.read_folder(str(tmp_path / 'nowhere'), 'MEDV', 'id')


def test_an_integer_category_read_as_floats_keeps_its_codes():
  """An integer column reads as floats where the file has a missing value: 2.0 is level 2."""
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  train = pd.DataFrame({'rooms': [1, 2, 2, 3], 'y': [1.0, 2.0, 3.0, 4.0]})
  spec = preprocessing.fit(train, target='y', kinds=preprocessing.column_kinds(
      train, 'y', categorical=('rooms',)))
  test = pd.DataFrame({'rooms': [2.0, np.nan, 1.0, 7.0]})
  np.testing.assert_array_equal(preprocessing.transform(spec, test)['categorical'][:, 0],
                                [1, 0, 2, 0])


def _class_folder(tmp_path, name, frame, target, metric):
  """A competition folder of `frame` (its last 30 rows the test rows), laid out as
  competitions.make lays one out."""
  folder = tmp_path / name
  folder.mkdir()
  frame = frame.reset_index(drop=True)
  frame.insert(0, 'id', np.arange(len(frame)) + 1000)
  train, test = frame.iloc[:-30], frame.iloc[-30:]
  train.to_csv(folder / 'train.csv', index=False)
  test.drop(columns=[target]).to_csv(folder / 'test.csv', index=False)
  test[['id', target]].to_csv(folder / 'solution.csv', index=False)
  test[['id']].assign(**{target: train[target].iloc[0]}).to_csv(
      folder / 'sample_submission.csv', index=False)
  json.dump({'id': 'id', 'target': target, 'metric': metric}, open(folder / 'competition.json',
                                                                   'w'))
  return str(folder)


def test_text_labels_and_three_classes_go_from_folder_to_a_scored_submission(tmp_path):
  """Binary labels 'benign'/'malignant' scored by accuracy (ours, the baselines and the blend
  write labels) and scikit-learn's three wines: one output per class."""
  from sklearn.datasets import load_breast_cancer, load_wine  # pylint: disable=import-outside-toplevel
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  cancer = load_breast_cancer(as_frame=True).frame.iloc[:200]
  cancer['target'] = np.where(cancer['target'] == 0, 'malignant', 'benign')
  wine = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0)
  wine['target'] = wine['target'].map({0: 'barolo', 1: 'grignolino', 2: 'barbera'})
  cancer.columns = [c.replace(' ', '_') for c in cancer.columns]
  for name, frame, loss in (('cancer', cancer, 'binary_crossentropy'),
                            ('wine', wine, 'sparse_categorical_crossentropy')):
    folder = _class_folder(tmp_path, name, frame, 'target', 'accuracy')
    config = _competition_config('breast_cancer', folder, 12.0)
    config.task_config.table.target = 'target'
    config.task_config.loss = loss
    config.members.k = 3
    workdir = str(tmp_path / f'{name}_run')
    submission.check(config, folder)
    train.train_and_evaluate(config, workdir)
    report = submission.submit(workdir, folder)
    rows = {r['model'].split(' ')[0]: r for r in report['models']}
    sub = pd.read_csv(os.path.join(workdir, 'submission.csv'))
    assert set(sub['target']) <= set(frame['target']), sub['target']
    majority = frame['target'].value_counts(normalize=True).max()
    assert rows['ours']['oof'] > majority + 0.05 and rows['ours']['test'] > majority, rows
    if name == 'cancer':
      assert rows['hist_gradient_boosting']['oof'] > 0.85 and rows['linear']['test'] > 0.85
      for row in rows.values():
        assert set(pd.read_csv(row['submission'])['target']) <= {'benign', 'malignant'}
    else:
      # Three classes: the baselines' labels are the argmax of their class probabilities.
      assert rows['hist_gradient_boosting']['oof'] > 0.85 and rows['linear']['oof'] > 0.85
      assert 'blend' not in rows           # (a blend weighs two columns: not of 3 classes)
      for row in rows.values():
        assert set(pd.read_csv(row['submission'])['target']) <= set(frame['target'])
  with pytest.raises(UserError, match='metric rmse scores values'):
    submission.check(config, _class_folder(tmp_path, 'wine2', wine, 'target', 'rmse'))


def test_an_image_folder_competition_goes_from_folder_to_a_scored_submission(made_images,
                                                                             tmp_path):
  """digits: Kaggle's image-folder layout of real digits; book 5.1's convnet (shrunk), 2
  epochs, as 3 stratified folds of one run sharing one copy of the images; out-of-fold and
  test accuracy well above chance, a submission in the sample's ids and order, scored by the
  scorer. (Each fold alone scores about its out-of-fold accuracy on test, 0.2-0.4; their
  average's guesses are right far more often.)"""
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission  # pylint: disable=import-outside-toplevel
  folder, info = made_images['digits']
  assert (info['id'], info['target'], info['train_rows']) == ('file', 'label', 4000)
  assert sorted(os.listdir(os.path.join(folder, 'train'))) == [str(d) for d in range(10)]
  sample = pd.read_csv(os.path.join(folder, 'sample_submission.csv'), dtype={'file': str})
  assert sorted(sample['file']) == sorted(os.listdir(os.path.join(folder, 'test')))
  assert len(sample) == 1000 and not set(sample['file']) & {
      f for d in range(10) for f in os.listdir(os.path.join(folder, 'train', str(d)))}
  config = _competition_config('digits,smoke', folder, 2.0)
  config.members.k = 3
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  report = submission.submit(str(tmp_path / 'run'), folder)
  ours = report['models'][0]
  assert (report['members'], report['oof_rows'], len(report['models'])) == (3, 4000, 1)
  assert ours['oof'] > 0.3 and ours['test'] > 0.5, report      # chance: 0.1
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv', dtype={'file': str})
  assert list(sub.columns) == ['file', 'label'] and list(sub['file']) == list(sample['file'])
  assert set(sub['label']) <= set(range(10))
  assert competitions.score(str(tmp_path / 'run' / 'submission.csv'), folder) == ours['test']
  specs = json.loads((tmp_path / 'run' / 'preprocessing.json').read_text())
  assert len(specs) == 3 and specs[0] == specs[2] and specs[0]['classes'] == [
      str(d) for d in range(10)] and specs[0]['images']['size'] == [28, 28]


def test_an_image_folder_competitions_mistakes_are_one_line_errors(made_images, tmp_path):
  # pylint: disable-next=import-outside-toplevel
  from projects.tabular import images, submission, task as task_lib
  source, _ = made_images['digits']
  sample = pd.read_csv(os.path.join(source, 'sample_submission.csv'), dtype={'file': str})

  def copy(name):
    folder = tmp_path / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns('train'))
    return folder

  folder = copy('stems')     # ids without the extension name their files too (Dogs vs. Cats)
  sample.assign(file=sample['file'].str[:-4]).to_csv(folder / 'sample_submission.csv',
                                                     index=False)
  assert images.read_folder(str(folder), 'label', 'file')[0] == list(sample['file'])
  folder = copy('renamed')
  sample.assign(file=['nope.png'] + list(sample['file'][1:])).to_csv(
      folder / 'sample_submission.csv', index=False)
  with pytest.raises(UserError, match=r"id 'nope.png' \(line 2\) is not an image of"):
    images.read_folder(str(folder), 'label', 'file')
  folder = copy('unlisted')
  sample.iloc[1:].to_csv(folder / 'sample_submission.csv', index=False)
  with pytest.raises(UserError, match=re.escape(f'test/{sample["file"][0]} is not in')):
    images.read_folder(str(folder), 'label', 'file')
  folder = copy('broken')
  (folder / 'test' / sample['file'][0]).write_bytes(b'not a png')
  config = _competition_config('digits', str(folder), 1.0)
  with pytest.raises(UserError, match=re.escape(f'test image {folder}/test/{sample["file"][0]} '
                                                'cannot be decoded')):
    images.test_inputs(config, str(folder), list(sample['file']))
  config.task_config.loss = 'mse'
  with pytest.raises(UserError, match='is an image-folder competition: its classes are its '
                                      'folders; task_config.loss=mse is a regression'):
    images.load_data(config, None, 'regression')
  with pytest.raises(UserError, match='metric accuracy scores classes'):
    submission.check(config, source, 'accuracy')
  with pytest.raises(UserError, match="baselines are models of a table's columns"):
    competitions.baselines(source)
  folder = copy('no_test')
  shutil.rmtree(folder / 'test')
  (folder / 'test').mkdir()
  sample.iloc[:0].to_csv(folder / 'sample_submission.csv', index=False)
  with pytest.raises(UserError, match=re.escape(f'{folder}/test holds no images')):
    images.read_folder(str(folder), 'label', 'file')
  # Two classes: one sigmoid output, whatever the model config said (the 5.1 convnet's 10);
  # what an image competition does not apply is refused, not ignored.
  two = tmp_path / 'two'
  for d in ('3', '8'):
    shutil.copytree(os.path.join(source, 'train', d), two / 'train' / d,
                    ignore=lambda _, names: sorted(names)[6:])
  config = _competition_config('digits', str(two), 1.0)
  config.task_config.loss = 'binary_crossentropy'
  data = images.load_data(config, task_lib.split_rows, 'binary')
  assert data.model_kwargs == {'num_outputs': 1} and data.size('train') == 12
  assert data.preprocessing['classes'] == ['3', '8']
  config.data.max_train = 5
  with pytest.raises(UserError, match=r'data.max_train=5 is not applied to an image-folder '
                                      r'competition .* leave it at 0$'):
    images.load_data(config, task_lib.split_rows, 'binary')


def test_the_cats_dogs_recipe_submits_kaggles_probabilities_of_a_dog(tmp_path):
  """:cats_dogs is book 5.3's frozen VGG16 recipe (its widths shrunk, random weights: the
  ImageNet ones cannot be had here) on Dogs vs. Cats Redux exactly as Kaggle ships it: one
  flat train/ of cat.<n>.jpg and dog.<n>.jpg (the class is the name's prefix), test/<n>.jpg,
  sample_submission.csv `id,label`; the submission is the probability of a dog, scored by log
  loss below the constant 0.5's."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from configs.convnets import mnist_convnet  # pylint: disable=import-outside-toplevel
  from configs.transfer import cats_dogs_vgg16  # pylint: disable=import-outside-toplevel
  from library import train  # pylint: disable=import-outside-toplevel
  from projects.tabular import images, submission  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  folder = tmp_path / 'redux'
  (folder / 'train').mkdir(parents=True)
  (folder / 'test').mkdir()

  def image(dog: bool):      # dogs bright, cats dark: something to learn
    return Image.fromarray(np.clip(rng.normal(190 if dog else 60, 30, (40, 48, 3)), 0,
                                   255).astype(np.uint8))

  for i in range(64):
    name = ('cat', 'dog')[i % 2]
    image(i % 2).save(folder / 'train' / f'{name}.{i // 2}.jpg')
  answers = [int(i % 3 == 0) for i in range(1, 9)]
  for i, dog in zip(range(1, 9), answers):
    image(dog).save(folder / 'test' / f'{i}.jpg')
  pd.DataFrame({'id': range(1, 9), 'label': 0.5}).to_csv(folder / 'sample_submission.csv',
                                                         index=False)
  # The answers, for the scorer only (Kaggle keeps its own).
  pd.DataFrame({'id': range(1, 9), 'label': answers}).to_csv(folder / 'solution.csv',
                                                             index=False)
  (folder / 'competition.json').write_text(json.dumps(
      {'id': 'id', 'target': 'label', 'metric': 'log_loss', 'task': 'binary'}))
  config = _competition_config('cats_dogs', str(folder), 1.0)
  assert images.class_names(str(folder), config.data) == ['cat', 'dog']
  frozen = cats_dogs_vgg16.get_config('frozen')
  assert (config.model, config.task_config.freeze, config.data.augment) == (
      frozen.model, frozen.task_config.freeze, frozen.data.augment)
  assert config.model_init.path == frozen.model_init.path == cats_dogs_vgg16.WEIGHTS
  # Without the ImageNet weights (no network here) a frozen random VGG16 learns nothing in a
  # test's time: a small 5.1 convnet stands in, trained whole at 3e-3, on 32 x 32 images.
  config.model_init.path, config.model_init.prefix = '', ''
  config.model = mnist_convnet.get_config('smoke').model
  config.task_config.freeze = ''
  config.data.image_size = (32, 32)
  config.members.k = 2
  config.batch_size = 8
  config.num_epochs = config.eval_every_epochs = config.checkpoint.every_epochs = 8.0
  config.optimizer.learning_rate = 3e-3
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  report = submission.submit(str(tmp_path / 'run'), str(folder), metric='log_loss')
  assert report['metric'] == 'log_loss' and report['oof_rows'] == 64
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['id', 'label'] and list(sub['id']) == list(range(1, 9))
  assert sub['label'].between(0, 1).all() and sub['label'].nunique() > 1
  # Learned which files are dogs: below the log loss of 0.5 everywhere (0.693), out of fold
  # and on the test images, and the scorer takes the file.
  assert report['models'][0]['oof'] < 0.6 and report['models'][0]['test'] < 0.6, report
  assert competitions.score(str(tmp_path / 'run' / 'submission.csv'), str(folder)) == (
      report['models'][0]['test'])
  # Members predict a few rows at a time (the last call padded), each fold its own rows.
  _, s, state, _, _ = submission._trained(str(tmp_path / 'run'), 'latest')
  x = images.test_inputs(config, str(folder), [f'{i}.jpg' for i in range(1, 9)])
  whole = submission._Predictor(s.task, state, 8).each(x, shared=True)
  assert whole.shape == (2, 8, 1)
  np.testing.assert_allclose(submission._Predictor(s.task, state, 3).each(x, shared=True),
                             whole, rtol=1e-5, atol=1e-6)
  own = submission._Predictor(s.task, state, 2).out_of_fold(
      x, [np.array([1, 4, 6]), np.array([0, 7])], shared=True)
  np.testing.assert_allclose(own[0], whole[0, [1, 4, 6]], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(own[1], whole[1, [0, 7]], rtol=1e-5, atol=1e-6)
  # One model with a validation holdout: its validation images are the out-of-fold rows,
  # scored as the loop scored its validation split (log loss is its binary cross-entropy).
  config.members.scheme = ''
  config.data.validation = 0.25
  results = train.train_and_evaluate(config, str(tmp_path / 'single'))
  report = submission.submit(str(tmp_path / 'single'), str(folder), metric='log_loss')
  assert (report['members'], report['oof_rows']) == (1, 16)
  assert report['models'][0]['oof'] == pytest.approx(results['validation']['loss'], abs=1e-4)
  assert list(pd.read_csv(tmp_path / 'single' / 'submission.csv')['id']) == list(range(1, 9))
  # A flat train/ file that does not say its class is a one-line error naming it.
  image(True).save(folder / 'train' / '12.jpg')
  with pytest.raises(UserError, match=r"/train/12.jpg: a flat train/ names each image's class "
                                      r'before a dot \(cat.0.jpg, dog.0.jpg\)'):
    images.class_names(str(folder), config.data)


def test_names_tickets_and_cabins_are_not_features_unless_kept_and_integers_are_numbers():
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  frame = competitions.titanic_like(400)
  kinds = preprocessing.column_kinds(frame, 'Survived', 'PassengerId')
  assert sorted(kinds['dropped']) == ['Cabin', 'Name', 'Ticket']
  assert 'free text' in kinds['dropped']['Name'] and 'near-unique' in kinds['dropped']['Ticket']
  assert kinds['categorical'] == ['Sex', 'Embarked']
  assert kinds['numeric'] == ['Pclass', 'Age', 'SibSp', 'Parch', 'Fare']
  chosen = preprocessing.column_kinds(frame, 'Survived', 'PassengerId', keep=('Cabin',),
                                      drop=('Fare',), categorical=('Pclass',))
  assert sorted(chosen['dropped']) == ['Fare', 'Name', 'Ticket']
  assert chosen['categorical'] == ['Pclass', 'Sex', 'Cabin', 'Embarked']
  spec = preprocessing.fit(frame, 'Survived', 'PassengerId', kinds=kinds)
  assert not {'Name', 'Ticket', 'Cabin'} & set(spec['columns'])
  # A table to predict need not have the dropped columns.
  out = preprocessing.transform(spec, frame.drop(columns=['Name', 'Ticket', 'Cabin']))
  # (5 numbers and Age's missing-value indicator)
  assert out['numeric'].shape == (len(frame), 5 + 1) and out['categorical'].shape[1] == 2
  for setting in ('drop', 'keep', 'categorical'):
    with pytest.raises(UserError, match=f"task_config.table.{setting} names 'Nme'"):
      preprocessing.column_kinds(frame, 'Survived', 'PassengerId', **{setting: ('Nme',)})
  # The old rule, asked for: integers with few values as categories.
  assert 'SibSp' in preprocessing.column_kinds(frame, 'Survived', 'PassengerId',
                                               max_levels=10)['categorical']


def _kaggle_folder(folder, train, test, sample_name, sample, missing: str = ''):
  """The files as Kaggle ships them; a missing value written as `missing` (House Prices
  writes NA)."""
  os.makedirs(folder)
  train.to_csv(os.path.join(folder, 'train.csv'), index=False, na_rep=missing)
  test.to_csv(os.path.join(folder, 'test.csv'), index=False, na_rep=missing)
  sample.to_csv(os.path.join(folder, sample_name), index=False)
  return str(folder)


def _one_command(folder, workdir, *extra):
  from tests.conftest import run_script  # pylint: disable=import-outside-toplevel
  proc = run_script('scripts.competition', '--config=configs/tabular/competition.py:table,smoke',
                    f'--folder={folder}', f'--workdir={workdir}',
                    '--config.compilation_cache_dir=', *extra)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def test_titanic_as_kaggle_ships_it_in_one_command(tmp_path):
  """train.csv, test.csv and gender_submission.csv, nothing named: the target is the column
  test.csv lacks, the id the sample's, the loss binary, the metric accuracy; names, tickets
  and cabins are left out with a note; the submission beats the majority class."""
  folder = str(tmp_path / 'titanic')
  info = competitions.make('titanic_like', folder)
  assert (info['train_rows'], info['test_rows']) == (891, 418)      # Kaggle's
  truth = pd.read_csv(os.path.join(folder, 'solution.csv'))['Survived'].to_numpy()
  for ours in ('solution.csv', 'competition.json'):     # what Kaggle does not ship
    os.remove(os.path.join(folder, ours))
  assert sorted(os.listdir(folder)) == ['gender_submission.csv', 'test.csv', 'train.csv']
  test = pd.read_csv(os.path.join(folder, 'test.csv'))
  out = _one_command(folder, tmp_path / 'run')
  assert "target 'Survived', id 'PassengerId', loss binary_crossentropy" in out, out
  assert "'Name' (free text" in out and "'Ticket' (near-unique" in out
  assert 'the metric is accuracy' in out
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['PassengerId', 'Survived']
  np.testing.assert_array_equal(sub['PassengerId'], test['PassengerId'])
  assert set(sub['Survived']) <= {0, 1}
  majority = max(truth.mean(), 1 - truth.mean())
  assert (sub['Survived'].to_numpy() == truth).mean() > majority + 0.05


def test_digit_recognizer_as_kaggle_ships_it_in_one_command(tmp_path):
  """Kaggle's Digit Recognizer layout: the pixel columns are 28 x 28 images for book 5.1's
  convnet (:digits); no id column in the tables, so the sample's rows are the test rows; the
  submission's columns are the sample's (ImageId,Label), whatever train.csv calls the target."""
  folder = str(tmp_path / 'digits')
  info = competitions.make('digit_recognizer', folder, test_fraction=0.8)   # 1,000 to train
  assert info['train_rows'] == 1000
  truth = pd.read_csv(os.path.join(folder, 'solution.csv'))['Label'].to_numpy()
  assert list(pd.read_csv(os.path.join(folder, 'train.csv')).columns) == ['label', *(
      f'pixel{i}' for i in range(784))]
  from tests.conftest import run_script  # pylint: disable=import-outside-toplevel
  proc = run_script('scripts.competition', '--config=configs/tabular/competition.py:digits',
                    f'--folder={folder}', f'--workdir={tmp_path / "run"}',
                    '--config.compilation_cache_dir=', '--config.num_epochs=2',
                    '--config.members.k=3', '--config.model.kwargs.features=(8, 16, 16)',
                    '--config.model.kwargs.dense=(16,)')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "ids: the sample submission's rows" in proc.stdout, proc.stdout
  # Minutes of convnets: a bar of the steps done, with its estimate of the time left.
  assert re.search(r'\b(\d+)/\1 \[\d\d:\d\d<00:00', proc.stderr), proc.stderr[-2000:]
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['ImageId', 'Label']
  np.testing.assert_array_equal(sub['ImageId'], np.arange(1, len(truth) + 1))
  assert (sub['Label'].to_numpy() == truth).mean() > 0.5       # 10 classes: chance 0.1
  assert competitions.score(str(tmp_path / 'run' / 'submission.csv'), folder) == (
      sub['Label'].to_numpy() == truth).mean()
  # The table network is no recipe for pixels; a probability metric for 10 classes is
  # refused before anything trains (what scripts.competition calls before training).
  from configs.tabular import competition  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission, task  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match='pixel columns are images'):
    task.infer_table(competition.get_config('table'), folder)
  config = competition.get_config('digits')
  config.data.path = folder
  task.infer_table(config, folder)
  with pytest.raises(UserError, match='use --metric=accuracy'):
    submission.check(config, folder, 'log_loss')


def test_a_competitions_evaluations_follow_an_epochs_override(tmp_path):
  """Ten evaluations a run: --config.num_epochs=15 evaluates every 1.5 epochs, not every 30
  (the default's 300 / 10), also after the config's round trip through config.json."""
  from configs.tabular import competition  # pylint: disable=import-outside-toplevel
  from library import config as config_lib  # pylint: disable=import-outside-toplevel
  for variant, default in (('boston', 30.0), ('table', 6.0)):
    config = competition.get_config(variant)
    assert config.eval_every_epochs == default
    config_lib.apply_override(config, 'num_epochs=15')
    assert config.eval_every_epochs == 1.5
    assert config_lib.from_json(config_lib.to_json(config)).eval_every_epochs == 1.5


def test_spaceship_titanics_true_false_target_and_grouped_ids_in_one_command(tmp_path):
  """Spaceship Titanic's layout: ids like 0013_01 (group_member), a True/False target,
  booleans among the features; the submission writes True/False as Kaggle's sample does."""
  rng = np.random.default_rng(0)
  n = 600
  cryo = rng.random(n) < 0.35
  planet = rng.choice(['Earth', 'Europa', 'Mars'], n)
  frame = pd.DataFrame({
      'PassengerId': [f'{g:04d}_{i % 3 + 1:02d}' for i, g in enumerate(
          rng.permutation(n) + 1)],
      'HomePlanet': planet, 'CryoSleep': cryo, 'Age': rng.integers(0, 80, n).astype(float),
      'VIP': rng.random(n) < 0.02,
      'RoomService': np.where(cryo, 0, rng.exponential(500, n)).round(),
      'Transported': (cryo | (planet == 'Europa')) ^ (rng.random(n) < 0.15)})
  train, test = frame.iloc[:450], frame.iloc[450:]
  folder = str(tmp_path / 'spaceship')
  _kaggle_folder(folder, train, test.drop(columns=['Transported']), 'sample_submission.csv',
                 pd.DataFrame({'PassengerId': test['PassengerId'], 'Transported': False}))
  out = _one_command(folder, tmp_path / 'run')
  assert "target 'Transported', id 'PassengerId', loss binary_crossentropy" in out, out
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['PassengerId', 'Transported'] and sub['Transported'].dtype == bool
  np.testing.assert_array_equal(sub['PassengerId'], test['PassengerId'])
  truth = test['Transported'].to_numpy()
  assert (sub['Transported'].to_numpy() == truth).mean() > max(truth.mean(),
                                                               1 - truth.mean()) + 0.05


def _house_prices_like(n: int, seed: int = 0):
  """Kaggle's House Prices train.csv layout, made up: Id, integer codes (MSSubClass),
  few-valued strings (MSZoning, Neighborhood), a mostly missing one (Alley: Kaggle's "NA"),
  missing numbers (LotFrontage), years, and SalePrice in whole dollars, log-normal."""
  rng = np.random.default_rng(seed)
  zone = rng.choice(['RL', 'RM', 'FV', 'RH'], n, p=[0.7, 0.2, 0.06, 0.04])
  hood = rng.choice(['NAmes', 'CollgCr', 'OldTown', 'Edwards', 'NridgHt'], n)
  quality = rng.integers(1, 11, n)
  area = rng.lognormal(np.log(1500), 0.3, n).round()
  year = rng.integers(1880, 2010, n)
  log_price = (11.0 + 0.1 * quality + 0.5 * np.log(area / 1500) + 0.003 * (year - 1970) +
               np.where(hood == 'NridgHt', 0.3, 0.0) - np.where(zone == 'RM', 0.15, 0.0) +
               rng.normal(0, 0.08, n))
  frontage = rng.normal(70, 20, n).round()
  return pd.DataFrame({
      'Id': np.arange(1, n + 1), 'MSSubClass': rng.choice([20, 50, 60, 120], n),
      'MSZoning': zone, 'LotFrontage': np.where(rng.random(n) < 0.17, np.nan, frontage),
      'LotArea': (area * rng.uniform(4, 8, n)).round().astype(int),
      'Alley': np.where(rng.random(n) < 0.06, rng.choice(['Grvl', 'Pave'], n), None),
      'Neighborhood': hood, 'OverallQual': quality, 'YearBuilt': year,
      'GrLivArea': area.astype(int), 'YrSold': rng.integers(2006, 2011, n),
      'SalePrice': np.exp(log_price).round().astype(int)})


def test_house_prices_as_kaggle_ships_it_scored_by_rmsle_in_one_command(tmp_path):
  """House Prices' layout (Id, SalePrice in dollars, sample_submission Id,SalePrice) with
  --metric=rmsle: the target is trained as log(1 + SalePrice), standardized on each fold's
  training rows, and the submission is in dollars; its RMSLE is far below the best
  constant's."""
  frame = _house_prices_like(800)
  train, test = frame.iloc[:600], frame.iloc[600:]
  folder = _kaggle_folder(str(tmp_path / 'house'), train, test.drop(columns=['SalePrice']),
                          'sample_submission.csv',
                          pd.DataFrame({'Id': test['Id'], 'SalePrice': 180921.2}),
                          missing='NA')
  assert ',NA,' in open(os.path.join(folder, 'train.csv')).read()
  out = _one_command(folder, tmp_path / 'run', '--metric=rmsle')
  assert "target 'SalePrice', id 'Id', loss mse" in out, out
  assert 'trained as log(1 + SalePrice), standardized on each fold' in out, out
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['Id', 'SalePrice']
  np.testing.assert_array_equal(sub['Id'], test['Id'])
  truth = np.log1p(test['SalePrice'].to_numpy())
  ours = np.sqrt(np.mean((np.log1p(sub['SalePrice'].to_numpy()) - truth) ** 2))
  constant = np.sqrt(np.mean((np.log1p(train['SalePrice']).mean() - truth) ** 2))
  assert ours < 0.6 * constant, (ours, constant)
  scores = json.loads((tmp_path / 'run' / 'scores.json').read_text())
  assert scores['metric'] == 'rmsle' and scores['models'][0]['oof'] < 0.6 * constant
  fitted = json.loads((tmp_path / 'run' / 'preprocessing.json').read_text())
  assert len(fitted) == 5 and all(f['target_scale']['log'] for f in fitted)
  assert len({f['target_scale']['mean'] for f in fitted}) == 5     # each fold its own
  # The scale is undone exactly, and a target 'log' cannot take is a one-line error.
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  y = np.random.default_rng(1).lognormal(12, 0.4, 50)
  for mode in ('standard', 'log'):
    scale = preprocessing.fit_target(y, mode)
    np.testing.assert_allclose(preprocessing.unscale_target(
        scale, preprocessing.scale_target(scale, y)), y, rtol=1e-6)
  with pytest.raises(UserError, match=r"the target 'SalePrice' is -2 in a training row"):
    preprocessing.fit_target(np.array([3.0, -2.0]), 'log', 'SalePrice')


def test_probabilities_of_more_than_two_classes_a_column_each_in_one_command(tmp_path):
  """Otto's layout (target Class_1..Class_3; sample_submission id,Class_1,Class_2,Class_3),
  scored by the multi-class log loss: a probability column per class, in the sample's column
  order, each row summing to 1; the log loss far below the class shares' (the best constant).
  scikit-learn's wine table (178 rows, 13 measurements) stands in."""
  from sklearn.datasets import load_wine  # pylint: disable=import-outside-toplevel
  data = load_wine()
  rng = np.random.default_rng(0)
  order = rng.permutation(len(data.target))
  frame = pd.DataFrame(data.data, columns=[f'feat_{i + 1}' for i in range(13)])
  frame.insert(0, 'id', np.arange(1, len(frame) + 1))
  frame['target'] = [f'Class_{c + 1}' for c in data.target]
  frame = frame.iloc[order].reset_index(drop=True)
  train, test = frame.iloc[:130], frame.iloc[130:]
  columns = ['Class_2', 'Class_1', 'Class_3']         # (any order: the sample's is kept)
  folder = _kaggle_folder(str(tmp_path / 'otto'), train, test.drop(columns=['target']),
                          'sample_submission.csv',
                          pd.DataFrame({'id': test['id'], **{c: 1 / 3 for c in columns}}))
  test[['id', 'target']].to_csv(os.path.join(folder, 'solution.csv'), index=False)
  with open(os.path.join(folder, 'competition.json'), 'w') as f:
    json.dump({'id': 'id', 'target': 'target', 'metric': 'log_loss', 'task': 'multiclass'}, f)
  out = _one_command(folder, tmp_path / 'run', '--config.num_epochs=20')
  assert 'loss sparse_categorical_crossentropy' in out, out
  sub = pd.read_csv(tmp_path / 'run' / 'submission.csv')
  assert list(sub.columns) == ['id', *columns]
  np.testing.assert_array_equal(sub['id'], test['id'])
  np.testing.assert_allclose(sub[columns].sum(axis=1), 1.0, atol=1e-5)
  shares = train['target'].value_counts(normalize=True)
  constant = -np.mean(np.log(shares[test['target']].to_numpy()))
  scored = competitions.score(str(tmp_path / 'run' / 'submission.csv'), folder)
  assert scored < 0.5 * constant, (scored, constant)
  # Each row's probability of its own class, by hand, is what the scorer scored.
  own = sub[columns].to_numpy()[np.arange(len(test)), [columns.index(t) for t in test['target']]]
  assert scored == pytest.approx(-np.mean(np.log(own)), rel=1e-6)
  scores = json.loads((tmp_path / 'run' / 'scores.json').read_text())
  assert scores['metric'] == 'log_loss' and scores['models'][0]['oof'] < 0.5 * constant
  # Columns that are not the classes, and accuracy asked of a column per class, are refused
  # before anything trains.
  from configs.tabular import competition  # pylint: disable=import-outside-toplevel
  from projects.tabular import submission, task  # pylint: disable=import-outside-toplevel
  config = competition.get_config('table')
  config.data.path = folder
  task.infer_table(config, folder)
  with pytest.raises(UserError, match='probability column per class, for a multi-class log '
                                      'loss; metric accuracy'):
    submission.check(config, folder, 'accuracy')
  pd.DataFrame({'id': test['id'], 'Class_1': 0.5, 'Class_9': 0.5}).to_csv(
      os.path.join(folder, 'sample_submission.csv'), index=False)
  with pytest.raises(UserError, match=r"'Class_9' is none of its classes"):
    submission.check(config, folder, 'log_loss')
