"""Folds as members of one run against the same models trained one after another, on a CPU.

  python -m scripts.benchmark_members                  # Digit Recognizer, book 5.1's convnet
  python -m scripts.benchmark_members --repeats 3 --folds 5

Kaggle's Digit Recognizer made from the 5,000 offline digits (4,000 to train, 1,000 to test;
`python -m scripts.competition --make=digit_recognizer`), then, alternating, in fresh
processes: `scripts.competition --config=configs/tabular/competition.py:digits` (the folds as
members of one run, its submission included, scikit-learn's baselines not) and the same folds' models trained one after
another by the loop (book 5.1's config on each fold's training rows), and book 5.1 trained
once on all 4,000. Medians of the wall times (process start to end), and each side's test
accuracy. Writes benchmark_members.json.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

from library import cli
from library.errors import UserError

_REPEATS = flags.DEFINE_integer('repeats', 1, 'runs per side; medians are reported')
_FOLDS = flags.DEFINE_integer('folds', 5, 'members.k: the folds')
_EPOCHS = flags.DEFINE_float('epochs', 5.0, "num_epochs (book 5.1's 5)")
_OUTPUT = flags.DEFINE_string('output', 'benchmark_members.json', 'where the table goes')

# One model of book 5.1 on some training rows of the folder (argv: folder, rows as JSON or
# [] for all, workdir, epochs); prints the test accuracy against the folder's answers.
_ONE_MODEL = '''
import json, sys
import numpy as np, pandas as pd
from configs.convnets import mnist_convnet
from library import train
folder, rows, workdir, epochs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4])
table = pd.read_csv(f'{folder}/train.csv')
x = table.drop(columns=['label']).to_numpy().astype(np.uint8).reshape(-1, 28, 28, 1)
y = table['label'].to_numpy()
test = pd.read_csv(f'{folder}/test.csv').to_numpy().astype(np.uint8).reshape(-1, 28, 28, 1)
answers = pd.read_csv(f'{folder}/solution.csv')['Label'].to_numpy()
config = mnist_convnet.get_config()
config.data.source, config.compilation_cache_dir, config.progress_bar = 'arrays', '', False
config.num_epochs = epochs
r = np.asarray(rows) if rows else np.arange(len(y))
out = train.train_and_evaluate(config, workdir, arrays={
    'train': {'inputs': x[r], 'labels': y[r]}, 'test': {'inputs': test, 'labels': answers}})
print(json.dumps(out['test']))
'''


def _run(args, env) -> tuple[float, str]:
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                        check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'{args[:3]} failed: {proc.stderr[-2000:]}')
  return time.perf_counter() - start, proc.stdout


def main(_):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from projects.tabular import competitions  # pylint: disable=import-outside-toplevel
  if _REPEATS.value < 1 or _FOLDS.value < 2 or _EPOCHS.value <= 0:
    raise UserError(f'--repeats={_REPEATS.value} (>= 1), --folds={_FOLDS.value} (>= 2) and '
                    f'--epochs={_EPOCHS.value} (> 0) are out of range')
  env = dict(os.environ)
  times = {'members_s': [], 'one_after_another_s': [], 'one_model_s': []}
  accuracy = {}
  with tempfile.TemporaryDirectory() as root:
    folder = os.path.join(root, 'digit_recognizer')
    competitions.make('digit_recognizer', folder)
    answers = pd.read_csv(os.path.join(folder, 'solution.csv'))['Label'].to_numpy()
    labels = pd.read_csv(os.path.join(folder, 'train.csv'))['label'].to_numpy()
    folds = competitions.folds(labels, _FOLDS.value, 0, 'multiclass')
    for repeat in range(_REPEATS.value):
      run = os.path.join(root, f'members{repeat}')
      seconds, _ = _run(['-m', 'scripts.competition',
                         '--config=configs/tabular/competition.py:digits', f'--folder={folder}',
                         f'--workdir={run}', '--config.compilation_cache_dir=',
                         f'--config.members.k={_FOLDS.value}',
                         f'--config.num_epochs={_EPOCHS.value}', '--skip_baselines'], env)
      times['members_s'].append(seconds)
      submitted = pd.read_csv(os.path.join(run, 'submission.csv'))['Label'].to_numpy()
      accuracy['members'] = float(np.mean(submitted == answers))
      start = time.perf_counter()
      for i, (rows, _) in enumerate(folds):
        _run(['-c', _ONE_MODEL, folder, json.dumps(rows.tolist()),
              os.path.join(root, f'fold{repeat}-{i}'), str(_EPOCHS.value)], env)
      times['one_after_another_s'].append(time.perf_counter() - start)
      seconds, out = _run(['-c', _ONE_MODEL, folder, '[]', os.path.join(root, f'one{repeat}'),
                           str(_EPOCHS.value)], env)
      times['one_model_s'].append(seconds)
      accuracy['one_model'] = json.loads(out.strip().splitlines()[-1])['accuracy']
  row = {k: statistics.median(v) for k, v in times.items()}
  row.update(folds=_FOLDS.value, epochs=_EPOCHS.value, repeats=_REPEATS.value,
             members_test_accuracy=accuracy['members'],
             one_model_test_accuracy=accuracy['one_model'],
             members_over_one_after_another=row['members_s'] / row['one_after_another_s'])
  print(f'{_FOLDS.value} folds of book 5.1 as members: {row["members_s"]:.0f} s (test accuracy '
        f'of their average {accuracy["members"]:.3f}); one after another: '
        f'{row["one_after_another_s"]:.0f} s; one model on all rows: {row["one_model_s"]:.0f} s '
        f'(test accuracy {accuracy["one_model"]:.3f})', flush=True)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(row, f, indent=2)


if __name__ == '__main__':
  cli.run(main)
