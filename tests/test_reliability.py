"""What a user does while a run lives or dies: kills at any point of it (the last ones too),
readers beside a writer, bytes flipped on disk. Kills are real SIGKILLs of real processes;
where a point must be hit exactly, the process kills itself there (KILLER below)."""
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import jax
import numpy as np

from library import checkpoints, inference, notebook, train, writers
from tests.conftest import ROOT, UNCACHED_OUT, run_script, truncate_checkpoints

DENSE = 'configs/mlp/mnist_dense.py'

# Runs scripts.train, SIGKILLing itself at the nth call of one of the loop's writes, before or
# after it: the points a kill can fall between.
KILLER = '''
import os, runpy, signal, sys
from library import checkpoints, members, plots, writers
point, when, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner, name = {'save': (checkpoints.Checkpointer, 'save'), 'seal': (checkpoints, 'seal'),
               'history': (plots, 'plot_history'), 'members': (members, 'write_history'),
               'results': (writers, 'write_json_atomic')}[point]
original, calls = getattr(owner, name), [0]
def wrapped(*args, **kwargs):
  if point == 'results' and not str(args[0]).endswith('results.json'):
    return original(*args, **kwargs)
  calls[0] += 1
  if calls[0] == nth and when == 'before':
    os.kill(os.getpid(), signal.SIGKILL)
  out = original(*args, **kwargs)
  if calls[0] == nth and when == 'after':
    if point == 'save':
      args[0].wait()
    os.kill(os.getpid(), signal.SIGKILL)
  return out
setattr(owner, name, wrapped)
sys.argv = ['scripts/train.py', *sys.argv[4:]]
runpy.run_module('scripts.train', run_name='__main__')
'''

# results.json's keys that time the run or say where it resumed: not the same after a kill.
TIMING = {'train_seconds', 'setup_seconds', 'run_seconds', 'first_step_seconds',
          'examples_per_second', 'steps_per_second', 'resumed_from_step'}
# What a run writes besides the records compared below.
NOT_COMPARED = {'.lock', 'tensorboard', 'corrupted_checkpoints', 'summary.txt'}


def _command(config, workdir, *extra):
  return [f'--config={config}', f'--workdir={workdir}', '--config.progress_bar=False',
          '--config.compilation_cache_dir=', *extra]


def _assert_same_run(killed, straight):
  """Same files, same results (timing aside), same records behind the pictures."""
  names = lambda w: sorted(set(os.listdir(w)) - NOT_COMPARED)
  assert names(killed) == names(straight)
  a, b = (json.loads((w / 'results.json').read_text()) for w in (killed, straight))
  for key in TIMING:
    a.pop(key, None), b.pop(key, None)
  assert a == b, (a, b)
  records = lambda w: {(r['step'], r['split']): r for r in writers.read_metrics(
      str(w / 'metrics.jsonl'))}
  assert records(killed) == records(straight)
  if (straight / 'history.json').exists():
    assert json.loads((killed / 'history.json').read_text()) == json.loads(
        (straight / 'history.json').read_text())
  assert sorted(os.listdir(killed / 'checkpoints')) == sorted(os.listdir(straight /
                                                                          'checkpoints'))


def _killed(workdir, flags, point, when, nth):
  """Runs scripts.train with `flags` into workdir, SIGKILLed at the nth `point`."""
  env = {k: v for k, v in os.environ.items() if k not in UNCACHED_OUT}
  proc = subprocess.run([sys.executable, '-c', KILLER, point, when, str(nth),
                         *_command(flags[0], workdir, *flags[1:])], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == -9, (point, when, nth, proc.stderr[-2000:])


def test_a_run_killed_at_any_point_and_rerun_ends_as_an_uninterrupted_one(load_config,
                                                                          tmp_path):
  """The last points always (the final checksums, the pictures, members' history), and one
  random save, before or after it (the seed is in the message); the rerun is the same loop
  in this process."""
  seed = random.randrange(2**16)
  rng = random.Random(seed)
  single = (f'{DENSE}:embedded,smoke', '--config.eval_every_steps=1',
            '--config.data.validation=0.2')
  folds = ('configs/mlp/boston_kfold.py:embedded,smoke',)

  def config_of(flags):
    config = load_config(*flags[0].split(':'))
    if flags is single:
      config.eval_every_steps, config.data.validation = 1, 0.2
    return config

  cases = [(single, 'seal', 'before', 6), (single, 'history', 'before', 1),
           (single, 'save', rng.choice(['before', 'after']), rng.randrange(1, 7)),
           (folds, 'members', 'before', 1)]
  straight = {}
  for flags in (single, folds):
    straight[flags] = tmp_path / f'straight{len(straight)}'
    train.train_and_evaluate(config_of(flags), str(straight[flags]))
  for i, (flags, point, when, nth) in enumerate(cases):
    workdir = tmp_path / f'killed{i}'
    _killed(workdir, flags, point, when, nth)
    train.train_and_evaluate(config_of(flags), str(workdir))
    try:
      _assert_same_run(workdir, straight[flags])
    except AssertionError as e:
      raise AssertionError(f'killed {when} {point} #{nth} (seed {seed}): {e}') from None


def test_a_flipped_byte_in_any_file_of_a_checkpoint_is_detected(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path))
  step_dir = str(tmp_path / 'checkpoints' / '6')
  assert checkpoints.verify(step_dir) is None
  rng = np.random.default_rng()
  for relative in checkpoints.file_checksums(step_dir):
    path = os.path.join(step_dir, relative)
    data = bytearray(open(path, 'rb').read())
    if not data:
      continue
    at = int(rng.integers(len(data)))
    data[at] ^= 1 << int(rng.integers(8))
    original = open(path, 'rb').read()
    with open(path, 'wb') as f:
      f.write(data)
    try:
      assert relative in (checkpoints.verify(step_dir) or ''), (relative, at)
    finally:
      with open(path, 'wb') as f:
        f.write(original)
  assert checkpoints.verify(step_dir) is None
  os.remove(os.path.join(step_dir, 'state', '_METADATA'))
  assert 'state/_METADATA is missing' in checkpoints.verify(step_dir)


def test_a_flipped_byte_in_the_latest_arrays_falls_back_for_readers_and_the_writer(
    load_config, tmp_path, capsys):
  config = load_config(DENSE, 'embedded,smoke')
  expected = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  at_3 = inference.evaluate_workdir(str(tmp_path / 'run'), 'test', '3')
  arrays = [os.path.join(root, name)
            for root, _, names in os.walk(tmp_path / 'run' / 'checkpoints' / '6' / 'state')
            for name in names if os.path.basename(root) == 'd']
  path = random.choice(arrays)
  data = bytearray(open(path, 'rb').read())
  data[random.randrange(len(data))] ^= 0x40
  open(path, 'wb').write(data)
  capsys.readouterr()
  out = inference.evaluate_workdir(str(tmp_path / 'run'))
  said = capsys.readouterr().err
  assert out == at_3, (out, at_3)
  assert 'read the checkpoint of step 3' in said and 'passed over step 6' in said, said
  assert os.path.isdir(tmp_path / 'run' / 'checkpoints' / '6')     # a reader moves nothing
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))   # the writer: 3, then on
  assert results['resumed_from_step'] == 3
  assert results['test'] == expected['test']
  assert len(os.listdir(tmp_path / 'run' / 'corrupted_checkpoints')) == 1


def test_readers_beside_a_writer_never_harm_it(load_config, tmp_path):
  """evaluate, predict, the notebook's load and restores, 20 times while a run checkpoints every 2 steps (keeping 2, so
  that steps vanish under the readers): the run ends as one alone does, and every read is of
  a complete checkpoint, never older than the one before it."""
  workdir, alone = tmp_path / 'run', tmp_path / 'alone'
  extra = ('--config.num_train_steps=160', '--config.checkpoint.every_steps=2',
           '--config.eval_every_steps=80')
  writer = subprocess.Popen([sys.executable, '-m', 'scripts.train',
                             *_command(f'{DENSE}:embedded,smoke', workdir, *extra)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  stderr = []
  threading.Thread(target=lambda: stderr.append(writer.stderr.read()), daemon=True).start()
  try:
    while not (workdir / 'checkpoints').is_dir() or not [
        n for n in os.listdir(workdir / 'checkpoints') if n.isdigit()]:
      assert writer.poll() is None, 'the writer ended before any checkpoint'
      time.sleep(0.01)
    config = inference.load_config(str(workdir))
    s = train.setup(config)
    digits = tmp_path / 'digits.npy'
    np.save(digits, np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8))
    steps, alive = [], 0
    for i in range(20):
      alive += writer.poll() is None
      if i % 5 == 0:
        steps.append(inference.evaluate_workdir(str(workdir), 'test')['step'])
      elif i % 5 == 1:
        run = notebook.load(str(workdir))
        steps.append(int(np.ravel(jax.device_get(run.state.step))[0]))
      elif i % 5 == 2:
        probabilities = inference.predict_workdir(str(workdir), [str(digits)])
        assert probabilities.shape == (4, 10)
      else:
        _, meta = inference.restore(str(workdir), config, s.state, 'latest')
        steps.append(meta['step'])
  finally:
    writer.wait(timeout=300)
  assert writer.returncode == 0, stderr
  assert alive >= 10, f'the writer ended after {alive} reads: too short to test'
  assert steps == sorted(steps) and all(st % 2 == 0 for st in steps), steps
  config = load_config(DENSE, 'embedded,smoke')
  config.num_train_steps, config.checkpoint.every_steps, config.eval_every_steps = 160, 2, 80
  b = train.train_and_evaluate(config, str(alone))
  a = json.loads((workdir / 'results.json').read_text())
  assert a['test'] == b['test'] and a['steps'] == b['steps'] == 160
  assert not os.path.exists(workdir / 'corrupted_checkpoints')


def test_the_checksums_benchmark_times_each_part(tmp_path):
  proc = run_script('scripts.benchmark_checkpoints', '--params=0.05,0.1', '--repeats=2',
                    f'--output={tmp_path / "out.json"}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = json.loads((tmp_path / 'out.json').read_text())
  # 50,000 and 100,000 float32 parameters with two moments each (orbax compresses a little)
  for row, params in zip(rows, (5e4, 1e5)):
    assert 0.8 < row['megabytes'] * 1e6 / (12 * params) < 1.1, row
    for key in ('save_s', 'seal_s', 'verify_s', 'restore_s'):
      assert 0 < row[key] < 60, row
  assert 'M parameters' in proc.stdout


def test_abandoned_orbax_reads_print_nothing_and_other_errors_still_do():
  """The filters behind 'no traceback after the one-line error': asyncio's never-retrieved
  reports and unraisable coroutines of orbax's reads are dropped, anything else is kept."""
  import asyncio  # pylint: disable=import-outside-toplevel
  import logging  # pylint: disable=import-outside-toplevel
  import types  # pylint: disable=import-outside-toplevel
  from orbax.checkpoint._src.serialization import serialization  # pylint: disable=import-outside-toplevel
  never = 'Future exception was never retrieved\nfuture: <Future finished exception=...>'

  def record(msg, error):
    return logging.LogRecord('asyncio', logging.ERROR, __file__, 1, msg, None,
                             (type(error), error, error.__traceback__))

  store = ValueError('OUT_OF_RANGE: Error reading "params.x/0" in OCDBT database at local '
                     'file "/w/checkpoints/6/state/"')
  keep = checkpoints.AbandonedReadFilter()
  assert not keep.filter(record(never, store))
  assert keep.filter(record(never, ValueError('a bug of ours')))
  assert keep.filter(record('Task was destroyed but it is pending!', store))
  seen = []
  hook = checkpoints.closed_loop_filter(seen.append)
  reads = [getattr(serialization, name) for name in dir(serialization)
           if asyncio.iscoroutinefunction(getattr(serialization, name))]
  abandoned = types.SimpleNamespace(cr_code=reads[0].__code__)     # orbax's reading code
  ours = types.SimpleNamespace(cr_code=record.__code__)
  for obj in (abandoned, ours):
    hook(types.SimpleNamespace(exc_value=store, exc_traceback=None, exc_type=ValueError,
                               err_msg=None, object=obj))
  assert [u.object for u in seen] == [ours]


def test_truncated_checkpoints_end_in_one_line_every_time(trained_convnet, tmp_path):
  """Orbax's failing reads finish in its threads as they will: repeated runs, one line each."""
  workdir = tmp_path / 'run'
  shutil.copytree(trained_convnet, workdir)
  truncate_checkpoints(workdir)
  for _ in range(3):
    proc = run_script('scripts.train', '--config=configs/convnets/mnist_convnet.py:embedded,'
                      'smoke', '--config.compilation_cache_dir=', f'--workdir={workdir}')
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and lines[-1].startswith('error: no readable checkpoint')
    assert all(l.startswith('W') and 'cannot be read' in l for l in lines[:-1]), lines
