"""Every command README.md shows runs as a user copies it, shrunk to smoke settings where it is
long, in README order (train before evaluate, predict and visualize), with HOME, /tmp and W
moved into the test's own folder.

The commands are read from README.md itself (its bash and python blocks, and the
`python -m scripts...` commands in its prose; the results table's commands are
tests/test_reproduce.py's). A command added to the README without a row in RUNS below, or a row
whose command left the README, fails the first test: the README cannot drift from what runs.
The commands run with ./scripts/test.sh --docs (CI's second command, beside the notebooks).
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

README = os.path.join(ROOT, 'README.md')


def readme_commands(text: str) -> list[str]:
  """The README's commands, in order: each bash line (continuations joined, comments and
  repeated spaces dropped), each python block whole, each prose span `python -m scripts.X -...`."""
  text = re.sub(r'<!-- reproduce:begin -->.*?<!-- reproduce:end -->', '', text, flags=re.S)
  commands = []

  def fence(match):
    lang, body = match.group(1), match.group(2)
    if lang == 'bash':
      for line in body.replace('\\\n', ' ').splitlines():
        line = ' '.join(re.sub(r'(^|\s)#.*$', '', line).split())
        if line:
          commands.append(line)
    elif lang == 'python':
      commands.append(body.strip())
    return ''

  prose = re.sub(r'```(\w*)\n(.*?)```', fence, text, flags=re.S)
  for span in re.findall(r'`([^`]+)`', prose):
    span = ' '.join(span.split())
    if re.match(r'python -m scripts\.\w+ -', span):
      commands.append(span)
  return commands


def _python_block(code: str) -> str:
  # The notebook call at smoke settings; the block's last value printed, as a notebook shows it.
  return code.replace(":embedded')", ":embedded,smoke')") + (
      "\nprint('predicted class', int(run.predict(digit).argmax()), run.results['test'])")


def _check_reproduced_readme(tmp):
  from scripts import _experiments as experiments  # pylint: disable=import-outside-toplevel
  with open(os.path.join(tmp, 'REPRODUCED.json')) as f:
    rows = json.load(f)['rows']
  assert experiments.readme_table(os.path.join(tmp, 'README.md')) == experiments.table(rows)
  assert [r['id'] for r in rows] == [e.id for e in experiments.EXPERIMENTS]


def _check_transfer_demo(tmp):
  """Its table and plot, and its three recipes: the frozen one keeps the pretrained base and
  trains its top; from scratch starts elsewhere."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library import weights  # pylint: disable=import-outside-toplevel
  workdir = os.path.join(tmp, 'transfer')
  with open(os.path.join(workdir, 'results.json')) as f:
    assert set(json.load(f)['recipes']) == {'frozen', 'finetune', 'scratch'}
  assert os.path.getsize(os.path.join(workdir, 'accuracy.png')) > 0
  with open(os.path.join(workdir, 'results.md')) as f:
    assert '| frozen |' in f.read()
  pre, frozen, scratch = (weights.workdir_variables(os.path.join(workdir, name))
                          for name in ('pretrain', 'frozen-seed0', 'scratch-seed0'))
  assert np.array_equal(pre['params/Conv_0/kernel'], frozen['params/Conv_0/kernel'])
  assert not np.array_equal(pre['params/Conv_0/kernel'], scratch['params/Conv_0/kernel'])
  assert not np.array_equal(pre['params/Dense_1/kernel'], frozen['params/Dense_1/kernel'])


def _check_wall_times(tmp):
  """The benchmark's wall time a user waits, each side in fresh processes (E epochs cold,
  2E and E warm; a few steps each under --smoke): the machinery, not its numbers."""
  import math  # pylint: disable=import-outside-toplevel
  with open(os.path.join(tmp, 'benchmark.json')) as f:
    [row] = json.load(f)
  for side in ('ours', 'keras'):
    # A whole process: Python's start, imports, data, compilation and training.
    assert row[f'{side}_wait_cold_s'] > row[f'{side}_first_step_cold_s'] > 0, row
    assert row[f'{side}_wait_warm_s'] > 1 and row[f'{side}_first_step_warm_s'] > 0, row
    assert math.isfinite(row[f'{side}_epoch_s']), row
  assert row['wall_epochs'] == 20 and row['wait_ratio'] > 0, row


# README command -> (what runs: a bash line, {tmp} the test's folder; what must hold). An
# expectation is a text the output contains, ('error', text): a one-line error with exit 2
# whose line contains text (the command needs what no test machine has), or a function of tmp.
# (None, reason): a launch on machines a test cannot have (a TPU slice, a SLURM cluster); the
# reason says what stands for it.
ELSEWHERE = ('the several-hosts launch: tests/test_scripts.py::'
             'test_two_hosts_train_like_one_host_and_agree_on_a_preemption runs two processes '
             'through jax.distributed on one machine')
SMOKE_BENCH = ' --repeats 1 --smoke --output={tmp}/benchmark.json'
RUNS = {
    './scripts/demo.sh': (
        'WORKDIR={tmp}/demo ./scripts/demo.sh --config.num_train_steps=6 '
        '--config.eval_every_steps=3', 'test accuracy'),
    # The suite itself: collected, not rerun inside itself.
    './scripts/test.sh': ('TEST_WORKERS=0 ./scripts/test.sh --collect-only -q '
                          'tests/test_config.py', 'tests/test_config.py: '),
    'source .venv/bin/activate': ('test -f .venv/bin/activate && echo present', 'present'),
    'python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded '
    '--workdir=/tmp/run --config.optimizer.learning_rate=1e-3': (
        'python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded,smoke '
        '--workdir={tmp}/run --config.optimizer.learning_rate=1e-3', 'test'),
    'python -m scripts.evaluate --workdir=/tmp/run --split=test --checkpoint=latest': (
        'python -m scripts.evaluate --workdir={tmp}/run --split=test --checkpoint=latest',
        '"accuracy"'),
    'python -m scripts.predict --workdir=/tmp/run --input=projects/convnets/images/digit_7.png': (
        'python -m scripts.predict --workdir={tmp}/run '
        '--input=projects/convnets/images/digit_7.png', 'digit_7.png: class'),
    'python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded --workdir=/tmp/kfold': (
        'python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded,smoke '
        '--workdir={tmp}/kfold', 'val_mae'),
    'python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded '
    '--workdir=/tmp/kfold_r2 --evaluator=r2=sklearn.metrics.r2_score': (
        'python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded,smoke '
        '--workdir={tmp}/kfold_r2 --evaluator=r2=sklearn.metrics.r2_score', 'val_r2'),
    'python -m scripts.sweep --config=configs/mlp/boston_kfold.py --common=embedded --metric=mae '
    '--grid=optimizer.learning_rate=1e-4,3e-4,1e-3,3e-3 --workdir=/tmp/lr': (
        'python -m scripts.sweep --config=configs/mlp/boston_kfold.py --common=embedded,smoke '
        '--metric=mae --grid=optimizer.learning_rate=1e-4,3e-4,1e-3,3e-3 --workdir={tmp}/lr',
        'sweep.md'),
    'python -m scripts.competition --config=configs/tabular/competition.py:table '
    '--folder=/tmp/titanic --workdir=/tmp/titanic_run': (
        'python -m scripts.competition --config=configs/tabular/competition.py:table,smoke '
        '--folder={tmp}/titanic --workdir={tmp}/titanic_run', "target 'Survived'"),
    'python -m scripts.competition --make=titanic_like --folder=/tmp/titanic': (
        'python -m scripts.competition --make=titanic_like --folder={tmp}/titanic',
        '"train_rows": 891'),
    'python -m scripts.competition --make=boston --folder=/tmp/boston': (
        'python -m scripts.competition --make=boston --folder={tmp}/boston', '"train_rows": 405'),
    'python -m scripts.competition --config=configs/tabular/competition.py:boston '
    '--folder=/tmp/boston --workdir=/tmp/boston_run': (
        'python -m scripts.competition --config=configs/tabular/competition.py:boston,smoke '
        '--folder={tmp}/boston --workdir={tmp}/boston_run', 'submission.csv'),
    'python -m scripts.competition --make=digits --folder=/tmp/digits': (
        'python -m scripts.competition --make=digits --folder={tmp}/digits', '"train_rows": 4000'),
    'python -m scripts.competition --config=configs/tabular/competition.py:digits '
    '--folder=/tmp/digits --workdir=/tmp/digits_run': (
        'python -m scripts.competition --config=configs/tabular/competition.py:digits,smoke '
        '--folder={tmp}/digits --workdir={tmp}/digits_run', 'submission.csv'),
    'python -m scripts.train --config=configs/recurrent/co2_forecast.py:gru --workdir=/tmp/co2 '
    '--config.callbacks.early_stopping.monitor=validation.loss '
    '--config.callbacks.early_stopping.patience=5 '
    '--config.callbacks.early_stopping.restore_best_weights=True': (
        'python -m scripts.train --config=configs/recurrent/co2_forecast.py:gru,smoke '
        '--workdir={tmp}/co2 --config.callbacks.early_stopping.monitor=validation.loss '
        '--config.callbacks.early_stopping.patience=5 '
        '--config.callbacks.early_stopping.restore_best_weights=True', 'test'),
    # The 2,000 photos (and a file of the user's own) are not on any test machine: the commands
    # as copied say what is missing (fetching and converting the ImageNet weights by name:
    # tests/test_fetch.py; converting: tests/test_transfer.py).
    'python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:frozen --workdir=/tmp/fz': (
        'python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:frozen '
        '--workdir={tmp}/fz', ('error', 'cats_and_dogs_small')),
    'python -m scripts.convert_weights --arch=vgg16 --input=my_vgg16.h5 '
    '--output=~/weights/my_vgg16': (
        'python -m scripts.convert_weights --arch=vgg16 --input=my_vgg16.h5 '
        '--output=~/weights/my_vgg16', ('error', 'my_vgg16.h5')),
    'python -m scripts.transfer_demo --workdir=/tmp/transfer --seeds=5': (
        'python -m scripts.transfer_demo --workdir={tmp}/transfer --seeds=1 --smoke',
        _check_transfer_demo),
    'python -m scripts.visualize --config=configs/convnets/visualize.py:digits '
    '--config.init=/tmp/run --output=/tmp/vis': (
        'python -m scripts.visualize --config=configs/convnets/visualize.py:digits,smoke '
        '--config.init={tmp}/run --output={tmp}/vis', 'PNGs are in'),
    # Downloading needs a network, which test machines lack: the builder is made, not filled.
    'python -c "import tensorflow_datasets as tfds; '
    'tfds.builder(\'mnist\').download_and_prepare()"': (
        'python -c "import tensorflow_datasets as tfds; print(tfds.builder(\'mnist\').name)"',
        'mnist'),
    # The registry as a user lists it (fetching is tested against a loopback server in
    # tests/test_fetch.py; these machines reach no origin).
    'python -m scripts.fetch --list': ('python -m scripts.fetch --list', 'unverified'),
    # The cheapest experiment, rewriting copies of the committed report and README.
    'python -m scripts.reproduce --update_readme': (
        'cp README.md configs/REPRODUCED.md configs/REPRODUCED.json {tmp}/ && '
        'python -m scripts.reproduce --update_readme --only=6.1a --workdir={tmp}/reproduce '
        '--report={tmp}/REPRODUCED.md --readme={tmp}/README.md', _check_reproduced_readme),
    'python -m scripts.show_config --config=configs/mlp/mnist_dense.py:embedded': (
        'python -m scripts.show_config --config=configs/mlp/mnist_dense.py:embedded',
        'batch_size = 128'),
    # Both sides: the steady state in one process, then the wall time in fresh ones.
    'python -m scripts.benchmark --only mnist_dense --only mnist_convnet --repeats 3': (
        'python -m scripts.benchmark --only mnist_dense --only mnist_convnet' + SMOKE_BENCH,
        'keras whole wait'),
    'python -m scripts.benchmark --only mnist_dense --repeats 3': (
        'python -m scripts.benchmark --only mnist_dense' + SMOKE_BENCH, _check_wall_times),
    'python -m scripts.benchmark --only mnist_convnet --repeats 1': (
        'python -m scripts.benchmark --only mnist_convnet' + SMOKE_BENCH, 'keras whole wait'),
    'python -m scripts.benchmark --only imdb_lstm --only jena_gru --only cats_dogs_small_aug '
    '--repeats 1': (
        'python -m scripts.benchmark --only imdb_lstm --only jena_gru --only cats_dogs_small_aug'
        + SMOKE_BENCH, 'cats_dogs_small_aug'),
    'python -m scripts.benchmark --only vae_digits --repeats 3': (
        'python -m scripts.benchmark --only vae_digits' + SMOKE_BENCH, 'vae_digits'),
    'python -m scripts.benchmark --only boston_kfold --repeats 3': (
        'python -m scripts.benchmark --only boston_kfold' + SMOKE_BENCH, 'boston_kfold'),
    'gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all --command=\'cd dlwr && pip '
    'install -r requirements.txt && pip install -U "jax[tpu]"\'': (None, ELSEWHERE),
    'gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all --command=\'cd dlwr && python '
    '-m scripts.train --multihost --config=configs/convnets/mnist_convnet.py:embedded '
    '--workdir=/mnt/shared/run\'': (None, ELSEWHERE),
    'srun --nodes=2 --ntasks-per-node=1 python -m scripts.train --multihost '
    '--config=configs/convnets/mnist_convnet.py:embedded --workdir=/shared/run': (None, ELSEWHERE),
    'JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python -m '
    'scripts.train --config=configs/convnets/mnist_convnet.py:embedded --workdir=/shared/run': (
        None, ELSEWHERE),
    'python -m scripts.make_standins --root=/tmp/standins': (
        'python -m scripts.make_standins --root={tmp}/standins --scale=0.01 --only mnist',
        'mnist: wrote'),
    'python -m scripts.benchmark_checkpoints --repeats=5': (
        'python -m scripts.benchmark_checkpoints --params=0.01 --repeats=1 '
        '--output={tmp}/checkpoints.json', 'M parameters'),
    'python -m scripts.benchmark_fullsize --root=/tmp/standins --output=/tmp/fullsize.json': (
        'python -m scripts.benchmark_fullsize --root={tmp}/standins --smoke --only 2.1 '
        '--output={tmp}/fullsize.json', '| 2.1 | `mlp/mnist_dense.py` | 2 |'),
    'python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded --workdir=W '
    '--config.num_train_steps=20': (
        'python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded '
        '--workdir={tmp}/W --config.num_train_steps=20', 'test'),
}


def _commands():
  with open(README) as f:
    return readme_commands(f.read())


def test_every_readme_command_has_its_run():
  commands = _commands()
  python_blocks = [c for c in commands if '\n' in c]
  assert len(python_blocks) == 1, python_blocks    # the notebook block, run by the next test
  lines = [c for c in commands if '\n' not in c]
  missing = [c for c in lines if c not in RUNS]
  gone = [c for c in RUNS if c not in lines]
  assert not missing, f'README commands with no run in tests/test_readme.py: {missing}'
  assert not gone, f'runs of commands README.md no longer has: {gone}'


@pytest.mark.skipif(os.environ.get('DLWR_TEST_DOCS') != '1',
                    reason='executed by ./scripts/test.sh --docs (CI runs it after the suite: '
                    'about 4 minutes, beyond the suite\'s 15)')
def test_every_readme_command_runs_as_copied(tmp_path):
  home = tmp_path / 'home'
  home.mkdir()
  # As on a user's machine: one CPU device and JAX's own rank promotion (not the suite's 8
  # devices and 'raise', which conftest.py sets).
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_NUMPY_RANK_PROMOTION')}
  env.update(HOME=str(home), DLWR_NOTEBOOK_RUNS=str(tmp_path / 'notebooks'),
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
  seconds = {}
  failures = []
  for command in _commands():
    if '\n' in command:
      line, expected = None, 'predicted class'
      argv = [sys.executable, '-c', _python_block(command)]
    else:
      line, expected = RUNS[command]
      if line is None:      # for other machines (ELSEWHERE says what stands for it)
        continue
      argv = ['bash', '-c', line.format(tmp=tmp_path)]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    seconds[command[:70]] = round(time.perf_counter() - start, 1)
    output = proc.stdout + proc.stderr
    if isinstance(expected, tuple):
      errors = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
      ok = (proc.returncode == 2 and len(errors) == 1 and expected[1] in errors[0]
            and 'Traceback' not in output)
    elif callable(expected):
      ok = proc.returncode == 0
      if ok:
        expected(str(tmp_path))
    else:
      ok = proc.returncode == 0 and expected in output
    if not ok:
      failures.append(f'{command}\n  ran: {argv[-1][:300]}\n  exit {proc.returncode}: '
                      f'{output[-1500:]}')
  print(json.dumps(seconds, indent=1))
  assert not failures, '\n\n'.join(failures)
