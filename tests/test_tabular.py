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
