"""The offline Kaggle-style competitions (projects/tabular/competitions.py): the download's
layout, the scorer's rules, and scikit-learn's baselines on the same folds."""
import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from library.errors import UserError
from projects.tabular import competitions


@pytest.fixture(scope='module')
def made(tmp_path_factory):
  root = tmp_path_factory.mktemp('competitions')
  return {name: (str(root / name), competitions.make(name, str(root / name)))
          for name in competitions.COMPETITIONS}


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
      'rows': (sample.iloc[1:], 'whose ids are not those'),
      'order': (sample.iloc[::-1], 'whose ids are not those'),
      'nan': (sample.assign(MEDV=[np.nan] + [1.0] * (len(sample) - 1)), 'not a finite number'),
  }
  for name, (frame, fragment) in cases.items():
    path = tmp_path / f'{name}.csv'
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=re.escape(fragment)):
      competitions.score(str(path), folder)
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


def test_the_baselines_learn_on_the_same_folds_and_their_submissions_score(made):
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


def _mixed_table():
  return pd.DataFrame({
      'id': [10, 11, 12, 13, 14, 15],
      'size': [1.0, 2.0, np.nan, 4.0, 100.0, np.nan],
      'colour': ['red', 'blue', 'red', None, 'green', 'purple'],
      'floors': [1, 2, 1, 2, 1, 3],                       # few integers: a category
      'sold': ['2020-01-31', '2021-06-15', '2019-12-01', '2020-02-29', '2022-07-04', None],
      'price': [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]})


def test_preprocessing_is_fitted_on_the_training_rows_only_and_saved_exactly(tmp_path):
  from projects.tabular import preprocessing  # pylint: disable=import-outside-toplevel
  table = _mixed_table()
  train = table.iloc[:4]
  spec = preprocessing.fit(train, target='price', id_column='id')
  assert [c['name'] for c in spec['categorical']] == ['colour', 'floors']
  assert spec['dates'] == ['sold'] and spec['columns'] == ['size', 'colour', 'floors', 'sold']
  size = next(c for c in spec['numeric'] if c['name'] == 'size')
  # Training rows only: 1, 2, 4 (the 100 of row 4 is not seen); a missing value there.
  assert size['mean'] == pytest.approx(7 / 3) and size['median'] == 2.0 and size['indicator']
  assert spec == preprocessing.fit(table.iloc[:4].assign(price=0), target='price',
                                   id_column='id')              # the target is no feature
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
