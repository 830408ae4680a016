"""Every test runs the sharded path on 8 simulated CPU devices, with rank promotion raising."""
import os
import sys

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
os.environ['JAX_NUMPY_RANK_PROMOTION'] = 'raise'
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# One XLA compilation cache per pytest worker, for its own tests and the scripts they start:
# the same small programs compile once per worker, not once per test. JAX writes a cache file
# in place, so a reader racing its writer, or a process killed mid-write, leaves a truncated
# entry, which JAX only warns about and compiles afresh (every later reader again). Per
# worker keeps the two workers from racing, and the processes that kill_midway_then_rerun
# (tests/test_scripts.py) SIGKILLs run without it. A run's own config.compilation_cache_dir
# yields to it (library.train.set_compilation_cache).
import atexit  # pylint: disable=wrong-import-position
import shutil  # pylint: disable=wrong-import-position
import tempfile  # pylint: disable=wrong-import-position
os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
    prefix=f'dlwr-xla-{os.environ.get("PYTEST_XDIST_WORKER", "main")}-')
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
UNCACHED_OUT = ('JAX_COMPILATION_CACHE_DIR', 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS')

import pytest  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def load_config():
  """get_config of a config file with a variant, as the scripts load it, cache off."""
  import importlib.util  # pylint: disable=import-outside-toplevel

  def load(path: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location('config_under_test', os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    if 'compilation_cache_dir' in config:   # training configs (not visualization ones)
      config.compilation_cache_dir = ''
      config.progress_bar = False
    return config

  return load


def run_script(module: str, *args: str, timeout: float = 240, env_extra=None):
  """Runs `python -m module args` from the repository root; returns CompletedProcess."""
  import subprocess  # pylint: disable=import-outside-toplevel
  env = dict(os.environ, **(env_extra or {}))
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout, check=False)


# The book's 5.1 convnet on the offline digits, a few steps: the finished run that the script
# tests point evaluate, predict and their bad inputs at (read only), trained once per worker.
TRAINED_CONVNET = ['--config=configs/convnets/mnist_convnet.py:embedded,smoke',
                   '--config.compilation_cache_dir=']


def truncate_checkpoints(workdir) -> None:
  """Every array file of a workdir's checkpoints cut to 10 bytes and their checksums removed:
  a workdir from before checksums, whose reads fail inside orbax's threads."""
  for directory, _, names in os.walk(os.path.join(workdir, 'checkpoints')):
    for name in names:
      if name == 'checksums.json':
        os.remove(os.path.join(directory, name))
      elif os.path.basename(directory) == 'd':
        os.truncate(os.path.join(directory, name), 10)


@pytest.fixture(scope='session')
def trained_convnet(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('trained_convnet')
  proc = run_script('scripts.train', *TRAINED_CONVNET, f'--workdir={workdir}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  return workdir
