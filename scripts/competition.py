"""Kaggle-style competitions: make the download, train and submit in one command, score.

  python -m scripts.competition --make=boston --folder=/tmp/boston
  python -m scripts.competition --config=configs/tabular/competition.py:boston \
      --folder=/tmp/boston --workdir=/tmp/boston_run
  python -m scripts.competition --baselines --folder=/tmp/boston
  python -m scripts.competition --score=/tmp/boston_run/submission.csv --folder=/tmp/boston

--make writes train.csv, test.csv, sample_submission.csv and competition.json, with the test
answers in solution.csv (projects/tabular/competitions.py: boston, RMSE; breast_cancer, ROC
AUC; --make=digit_recognizer: Kaggle's Digit Recognizer files, pixel columns, ImageId,Label,
for :digits); --make=digits writes an image-folder competition instead (train/<class>/, test/,
accuracy; projects/tabular/images.py), trained with configs/tabular/competition.py:digits.
--config with --workdir trains the config's folds as members of one run on --folder (its
data.path), rerunning resumes, then writes workdir/submission.csv and prints the out-of-fold
and test scores beside scikit-learn's baselines on the same folds and the blend
(projects/tabular/submission.py; with a grid of members.<value>s, each value's out-of-fold
score, and the best value's folds submitted); --workdir alone makes the submission of a trained run.
--baselines alone trains scikit-learn's gradient boosting and a linear model on --folds folds.
The baselines' predictions are cached by the files, folds and settings (a rerun fits nothing);
--skip_baselines leaves them out of a --workdir report.
--score prints the metric of one submission against the held-out answers.
"""
import json

from absl import flags
from ml_collections import config_flags

from library import cli

_MAKE = flags.DEFINE_string('make', None,
                            'make this competition: boston, breast_cancer, digit_recognizer or '
                            'digits')
_FOLDER = flags.DEFINE_string('folder', None, 'the competition folder')
_CONFIG = config_flags.DEFINE_config_file('config', None, 'a tabular config file[:variant] '
                                          'to train on --folder', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'the run: trained here (with --config), then '
                               'its submission.csv and scores.json')
_START_OVER = flags.DEFINE_bool('start_over', False, 'move a previous run in --workdir aside')
_METRIC = flags.DEFINE_string('metric', None, "the competition's metric, for a folder "
                              'without competition.json')
_SCORE = flags.DEFINE_string('score', None, 'a submission CSV to score')
_BASELINES = flags.DEFINE_bool('baselines', False, "score scikit-learn's baselines")
_FOLDS = flags.DEFINE_integer('folds', 5, 'folds of --baselines')
_SKIP_BASELINES = flags.DEFINE_bool('skip_baselines', False, "with --workdir: no scikit-learn "
                                    'baselines beside our submission (nor the blend)')
_SEED = flags.DEFINE_integer('seed', 0, 'seed of the test rows (--make) and of the folds')
flags.mark_flags_as_required(['folder'])


_SCALED = {'standard': '{t} standardized on each fold\'s training rows',
           'log': 'log(1 + {t}), standardized on each fold\'s training rows (for rmsle)'}


def _print_report(report: dict) -> None:
  print(f'{report["metric"]} ({"higher" if report["higher_is_better"] else "lower"} is '
        f'better), {report["members"]} member(s), {report["oof_rows"]} out-of-fold rows, '
        f'the checkpoint of step {report["step"]}' + ''.join(
            f' (step {step} passed over: {why})' for step, why in report['passed_over']) + ':')
  fmt = lambda v: '-' if v is None else f'{v:.4f}'  # noqa: E731
  print(f'  {"model":<28} {"out-of-fold":>12} {"test":>8}  submission')
  for row in report['models']:
    cached = '  (cached: fitted by an earlier run)' if row.get('cached_hit') else ''
    print(f'  {row["model"]:<28} {fmt(row["oof"]):>12} {fmt(row["test"]):>8}  '
          f'{row["submission"]}{cached}')


def main(_):
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.tabular import competitions  # pylint: disable=import-outside-toplevel
  modes = (_MAKE.value, _SCORE.value, _BASELINES.value, _WORKDIR.value)
  if sum(map(bool, modes)) != 1:
    raise UserError('give one of --make=NAME, --score=FILE, --baselines or --workdir=DIR '
                    '(with --config to train)')
  if _CONFIG.value is not None and not _WORKDIR.value:
    raise UserError('--config trains into --workdir: give --workdir')
  if _FOLDS.value < 2:
    raise UserError(f'--folds={_FOLDS.value} must be >= 2')
  if _MAKE.value:
    print(json.dumps(competitions.make(_MAKE.value, _FOLDER.value, seed=_SEED.value)))
  elif _SCORE.value:
    info = competitions.describe(_FOLDER.value)
    print(json.dumps({'metric': info['metric'],
                      'score': competitions.score(_SCORE.value, _FOLDER.value)}))
  elif _BASELINES.value:
    for row in competitions.baselines(_FOLDER.value, _FOLDS.value, _SEED.value):
      print(json.dumps(row))
  else:
    from projects.tabular import submission  # pylint: disable=import-outside-toplevel
    if _CONFIG.value is not None:
      from library import train  # pylint: disable=import-outside-toplevel
      from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
      config = _CONFIG.value
      config.data.path = _FOLDER.value
      chosen = task_lib.infer_table(config, _FOLDER.value)   # what the folder tells
      if chosen:
        print(f'from {_FOLDER.value}: {", ".join(chosen)}', flush=True)
      info = submission.check(config, _FOLDER.value, _METRIC.value)   # before anything trains
      if info['task'] == 'regression' and config.task_config.table.target_scale == 'auto':
        scale = config.task_config.table.target_scale = task_lib.target_scale(
            config, info['metric'])
        what = _SCALED[scale].format(t=config.task_config.table.target)
        print(f'note: the target is trained as {what} (task_config.table.target_scale)',
              flush=True)
      if info.get('metric_follows_loss'):
        print(f'note: the metric is {info["metric"]}, following task_config.loss='
              f'{config.task_config.loss} (--metric names the competition\'s)', flush=True)
      train.train_and_evaluate(config, _WORKDIR.value, start_over=_START_OVER.value)
    _print_report(submission.submit(_WORKDIR.value, _FOLDER.value, _METRIC.value,
                                    baselines=not _SKIP_BASELINES.value))


if __name__ == '__main__':
  cli.run(main)
