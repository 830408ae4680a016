"""Offline Kaggle-style competitions: make the download, score a submission, run baselines.

  python -m scripts.competition --make=boston --folder=/tmp/boston
  python -m scripts.competition --baselines --folder=/tmp/boston
  python -m scripts.competition --score=/tmp/boston/submissions/linear.csv --folder=/tmp/boston

--make writes train.csv, test.csv, sample_submission.csv and competition.json, with the test
answers in solution.csv (projects/tabular/competitions.py: boston, RMSE; breast_cancer, ROC
AUC). --baselines trains scikit-learn's gradient boosting and a linear model on the same
--folds folds and prints each one's out-of-fold and test score. --score prints the metric of
one submission against the held-out answers.
"""
import json

from absl import flags

from library import cli

_MAKE = flags.DEFINE_string('make', None, 'make this competition: boston or breast_cancer')
_FOLDER = flags.DEFINE_string('folder', None, 'the competition folder')
_SCORE = flags.DEFINE_string('score', None, 'a submission CSV to score')
_BASELINES = flags.DEFINE_bool('baselines', False, "score scikit-learn's baselines")
_FOLDS = flags.DEFINE_integer('folds', 5, 'folds of the baselines')
_SEED = flags.DEFINE_integer('seed', 0, 'seed of the test rows (--make) and of the folds')
flags.mark_flags_as_required(['folder'])


def main(_):
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.tabular import competitions  # pylint: disable=import-outside-toplevel
  if sum(map(bool, (_MAKE.value, _SCORE.value, _BASELINES.value))) != 1:
    raise UserError('give one of --make=NAME, --score=FILE or --baselines')
  if _FOLDS.value < 2:
    raise UserError(f'--folds={_FOLDS.value} must be >= 2')
  if _MAKE.value:
    info = competitions.make(_MAKE.value, _FOLDER.value, seed=_SEED.value)
    print(json.dumps(info))
  elif _SCORE.value:
    info = competitions.describe(_FOLDER.value)
    print(json.dumps({'metric': info['metric'],
                      'score': competitions.score(_SCORE.value, _FOLDER.value)}))
  else:
    for row in competitions.baselines(_FOLDER.value, _FOLDS.value, _SEED.value):
      print(json.dumps(row))


if __name__ == '__main__':
  cli.run(main)
