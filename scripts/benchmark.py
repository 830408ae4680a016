"""Our training loop vs Keras 3 (JAX backend), side by side in one process, medians of repeats.

  python -m scripts.benchmark                         # every entry
  python -m scripts.benchmark --only mnist_convnet --repeats 5
  python -m scripts.benchmark --only mnist_dense --steps_per_dispatch 1,4,8,16 --no_keras
  python -m scripts.benchmark --only imdb_lstm --set model.kwargs.unroll=2 --no_keras

Same model, optimizer, batch size and data on both sides (the 4,000 offline training digits;
synthetic IMDB-shaped reviews and Jena-shaped windows for imdb_lstm and jena_gru), for the
same number of epochs. examples/s counts training steps after the first one (ours:
compilation, evaluation with the pictures a task draws there, and checkpointing excluded; Keras: from its first batch's end to the
end of fit); time to first step counts from the start of the training call (ours: the loop, after
data and state are placed; Keras: fit(), model already built and compiled) to the first step's
end, compilation included. The first step's compilation is also split into its phases, from
JAX's own timers (jax.monitoring) for the training step's jit (ours: train_chunk; Keras:
train_step): trace (Python to jaxpr), lower (to StableHLO) and XLA's compile. Runs alternate
ours/Keras so that machine noise hits both. Writes benchmark.json: a list of {name, ours_per_s,
keras_per_s, ratio, ours_first_step_s, keras_first_step_s, ours_trace_s, keras_trace_s, ...}.

Beside the steady state, each of those entries also reports the wall time a user waits
(--wall, on by default), in fresh processes as a user starts them, both sides alternating:
  - the whole wait: process start to results.json for ours (python -m scripts.train's work,
    with evaluation and checkpoints at their defaults), process start to the end of fit for
    Keras (with the same validation split each epoch), same epochs (`wait_cold_s`, with an
    empty compilation cache; `wait_warm_s`, with the cache the first run left);
  - the wall time per epoch (`epoch_s`): the difference between a run of 2E epochs and one of
    E (WALL_EPOCHS), both warm, over E: start-up and compilation cancel;
  - time to the first step, compilation included, cold and warm (`first_step_cold_s`,
    `first_step_warm_s`; Keras gets JAX's persistent cache too);
  - `wait_ratio` and `epoch_ratio`: Keras' over ours (above 1: ours is ahead).
--nowall skips it (it starts 3 processes a side per repeat). --smoke runs everything for a
few steps, one repeat (the machinery only, as the tests do).
Needs `pip install -r requirements-benchmark.txt`.
"""
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('KERAS_BACKEND', 'jax')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import flags  # pylint: disable=wrong-import-position

from library import cli  # pylint: disable=wrong-import-position
from library.errors import UserError  # pylint: disable=wrong-import-position
from scripts import _keras_twins as twins  # pylint: disable=wrong-import-position

_ONLY = flags.DEFINE_multi_string('only', None, 'entries to run (default: all)')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'runs per side; medians are reported')
_DISPATCH = flags.DEFINE_string('steps_per_dispatch', '',
                                'comma-separated values to compare for ours (default: config)')
_NO_KERAS = flags.DEFINE_bool('no_keras', False, 'measure ours only')
_OUTPUT = flags.DEFINE_string('output', 'benchmark.json', 'where the table goes')
_WALL = flags.DEFINE_bool('wall', True, 'also the wall time a user waits, in fresh processes '
                          '(the whole wait, the time per epoch, compilation cold and warm)')
_SMOKE = flags.DEFINE_bool('smoke', False, 'one repeat of a few steps a side: the machinery '
                           'only, its numbers mean nothing (what the tests run)')
_CHILD = flags.DEFINE_string('child', None, '(internal) one timed process of the wall time: '
                             'side:name:length:cache[:arrays file]')
_SET = flags.DEFINE_multi_string('set', [], 'key=value for our side, e.g. '
                                 'model.kwargs.unroll=2 (the Keras twin is unchanged)')


def _synthetic_reviews():
  """IMDB-shaped data (no IMDB offline): 1,536 training and 256 test reviews of 500 word
  indices below 10,000, random labels. Speed does not depend on the words."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  return {split: {'inputs': rng.integers(1, 10000, (n, 500)).astype(np.int32),
                  'labels': rng.integers(0, 2, n).astype(np.int32)}
          for split, n in (('train', 1536), ('test', 256))}


def _jena_like_csv():
  """A 10,000-row CSV with the Jena file's layout (no Jena offline): windows of 240 x 14."""
  from library.data.timeseries import write_jena_like  # pylint: disable=import-outside-toplevel
  path = os.path.join(tempfile.mkdtemp(), 'jena_like.csv')
  return write_jena_like(path, rows=10000)


def _synthetic_photos():
  """Cats-vs-dogs-shaped data (Kaggle's photos are not offline): 320 training and 64 test
  images of 150x150x3, random pixels and labels. Speed does not depend on the pixels."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  return {split: {'inputs': rng.integers(0, 256, (n, 150, 150, 3)).astype(np.uint8),
                  'labels': rng.integers(0, 2, n).astype(np.int32)}
          for split, n in (('train', 320), ('test', 64))}


# name -> (config[:variant], epochs, Keras twin, Keras loss, synthetic arrays or None). Offline
# digits: 4,000 training, the book's 5 epochs.
ENTRIES = {
    'mnist_dense': ('configs/mlp/mnist_dense.py:embedded', 5, twins.dense,
                    'categorical_crossentropy', None),
    'mnist_convnet': ('configs/convnets/mnist_convnet.py:embedded', 5, twins.convnet,
                      'categorical_crossentropy', None),
    'imdb_lstm': ('configs/recurrent/imdb_sequences.py:lstm', 3, twins.lstm,
                  'binary_crossentropy', _synthetic_reviews),
    # 4,416 training windows of 240 x 14 (Jena-shaped): 35 steps an epoch.
    'jena_gru': ('configs/recurrent/jena.py:gru', 5, twins.gru, 'mae', _jena_like_csv),
    # The 5.2 model with augmentation, batch 32: 10 steps an epoch.
    'cats_dogs_small_aug': ('configs/convnets/cats_dogs_small.py:augment', 3,
                            twins.cats_dogs_aug, 'binary_crossentropy', _synthetic_photos),
    # Book 8.4's VAE, batch 16: one epoch of the offline digits (250 steps), inputs as targets.
    'vae_digits': ('configs/generative/mnist_vae.py:embedded', 1, twins.vae,
                   'binary_crossentropy', None),
}
# Whole cross-validation runs, timed end to end: name -> (config file, Keras twin or None).
CROSSVAL_ENTRIES = {
    'boston_kfold': ('configs/mlp/boston_kfold.py', twins.boston),
    'boston_loo': ('configs/mlp/boston_loo.py', None),
}


_PHASES = {'/jax/core/compile/jaxpr_trace_duration': 'trace',
           '/jax/core/compile/jaxpr_to_mlir_module_duration': 'lower',
           '/jax/core/compile/backend_compile_duration': 'compile'}
_phase_log = []


def _record_phase(event: str, seconds: float, **kwargs):
  if event in _PHASES:
    _phase_log.append((_PHASES[event], kwargs.get('fun_name', ''), seconds))


def _compile_phases(run, step_name: str):
  """(run()'s result, {trace_s, lower_s, compile_s} of the first compilation of the jit named
  step_name in it; a later one, for a last partial chunk or batch, is not the first step's)."""
  start = len(_phase_log)
  result = run()
  phases = {}
  for phase, name, seconds in _phase_log[start:]:
    if name.split('(')[-1].rstrip(')') == step_name:
      phases.setdefault(f'{phase}_s', seconds)
  return result, {f'{p}_s': phases.get(f'{p}_s', float('nan'))
                  for p in ('trace', 'lower', 'compile')}


def _load_config(path, arrays=None):
  """config file[:variant] ('embedded' when none is given); `arrays`: train on them instead."""
  path, _, variant = path.partition(':')
  module = cli.config_module(path, 'benchmark_config')
  config = module.get_config(variant or ('embedded' if 'embedded' in module.VARIANTS else None))
  config.num_train_steps = None       # epochs, as on the Keras side
  if isinstance(arrays, str):         # a CSV file to read
    config.data.path = arrays
    config.data.window.train_end, config.data.window.val_end = 0.6, 0.8
  elif arrays is not None:
    config.data.source = 'arrays'
    config.data.path = None
    config.data.splits = tuple(arrays if isinstance(arrays, dict) else ('train', 'test'))
    config.data.validation = 0
  return config


def run_ours(config_path: str, epochs: int, steps_per_dispatch: int | None,
             arrays=None) -> dict:
  from library import train  # pylint: disable=import-outside-toplevel
  from library import config as config_lib  # pylint: disable=import-outside-toplevel
  config = _load_config(config_path, arrays)
  for assignment in _SET.value:
    config_lib.apply_override(config, assignment)
  config.num_epochs = float(epochs)
  if _SMOKE.value:   # epochs of SMOKE_STEPS steps, as on the Keras side
    config.num_train_steps = SMOKE_STEPS * epochs
  config.progress_bar = False
  config.compilation_cache_dir = ''   # a cold compile, as Keras gets
  config.checkpoint.every_steps = 10**9   # one save, at the end, excluded from examples/s
  if steps_per_dispatch:
    for backend in ('cpu', 'gpu', 'tpu'):
      config.steps_per_dispatch[backend] = steps_per_dispatch
  with tempfile.TemporaryDirectory() as workdir:
    import contextlib, io  # pylint: disable=import-outside-toplevel,multiple-imports
    with contextlib.redirect_stdout(io.StringIO()):
      results, phases = _compile_phases(lambda: train.train_and_evaluate(
          config, workdir, arrays=None if isinstance(arrays, str) else arrays), 'train_chunk')
  metric = (config.task_config.get('metrics') or ('loss',))[0]
  return {'per_s': results.get('examples_per_second', float('nan')),  # none in a smoke run
          'first_step_s': results['first_step_seconds'],
          'metric': metric, 'test_metric': results['test'][metric], 'steps': results['steps'],
          **phases}


def run_keras(config_path: str, epochs: int, build, loss: str, arrays=None,
              with_validation: bool = False) -> dict:
  import keras  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library.data import pipeline, timeseries  # pylint: disable=import-outside-toplevel
  config = _load_config(config_path, arrays)
  # The same preprocessed examples ours trains on (timeseries windows cut out whole).
  data = pipeline.prepare(config, None if isinstance(arrays, str) else arrays).as_float()
  splits = {name: timeseries.gather(split, np.arange(data.size(name)))
            for name, split in data.splits.items()}
  return twins.fit_and_test(keras, build(keras), config, splits, epochs, loss,
                            smoke_steps=SMOKE_STEPS if _SMOKE.value else 0,
                            with_validation=with_validation, compile_phases=_compile_phases)


SMOKE_STEPS = 3   # --smoke: the steps of an epoch, both sides

# The wall time a user waits: name -> E, the epochs of its runs. Each side runs E epochs with
# an empty compilation cache (the whole wait and the first step, cold), then 2E and E epochs
# with the cache that left (warm): the time per epoch is their difference over E, which
# cancels start-up and compilation and keeps evaluation and checkpoints at their defaults.
# (The dense net's epoch is 0.05-0.1 s: 20 of them, so that their time stands out of the
# processes' noise; 5 gave 0.03 and 0.20 s an epoch in two runs.)
WALL_EPOCHS = {'mnist_dense': 20, 'mnist_convnet': 2, 'imdb_lstm': 1, 'jena_gru': 2,
               'cats_dogs_small_aug': 1, 'vae_digits': 1}


def _save_arrays(arrays, folder: str) -> str:
  """Synthetic arrays as one .npz for the timed processes (made once, outside their clock)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  if arrays is None or isinstance(arrays, str):   # an entry's own data, or a CSV file
    return arrays or ''
  path = os.path.join(folder, 'arrays.npz')
  np.savez(path, **{f'{split}.{field}': value for split, fields in arrays.items()
                    for field, value in fields.items()})
  return path


def _load_arrays(path: str):
  import numpy as np  # pylint: disable=import-outside-toplevel
  if not path.endswith('.npz'):
    return path or None
  arrays = {}
  with np.load(path) as f:
    for key in f.files:
      split, field = key.split('.', 1)
      arrays.setdefault(split, {})[field] = f[key]
  return arrays


def wall_child(spec: str) -> None:
  """One timed process (--child=side:name:epochs:cache[:arrays]): trains as a user does, with
  the defaults of evaluation and checkpoints, and prints `WALL {end, first_step_s}` where end
  is the wall clock when it is done: ours once results.json is written, Keras when fit
  returns. Both sides use JAX's persistent compilation cache in `cache`."""
  import contextlib, io  # pylint: disable=import-outside-toplevel,multiple-imports
  import jax  # pylint: disable=import-outside-toplevel
  side, name, epochs, cache, arrays_path = (spec.split(':') + [''])[:5]
  path, _, build, loss, _ = ENTRIES[name]
  arrays = _load_arrays(arrays_path)
  # This cache, whatever the environment says (JAX_COMPILATION_CACHE_DIR would win over the
  # config's); every program cached, however fast it compiled, on both sides.
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  if side == 'ours':
    from library import train  # pylint: disable=import-outside-toplevel
    from library import config as config_lib  # pylint: disable=import-outside-toplevel
    config = _load_config(path, arrays)
    for assignment in _SET.value:
      config_lib.apply_override(config, assignment)
    config.num_epochs = float(epochs)
    if _SMOKE.value:
      config.num_train_steps = SMOKE_STEPS * int(epochs)
    config.progress_bar = False
    config.compilation_cache_dir = cache
    with tempfile.TemporaryDirectory() as workdir, contextlib.redirect_stdout(io.StringIO()):
      results = train.train_and_evaluate(config, workdir,
                                         arrays=None if isinstance(arrays, str) else arrays)
      end = time.time()
    out = {'end': end, 'first_step_s': results['first_step_seconds']}
  else:
    result = run_keras(path, int(epochs), build, loss, arrays, with_validation=True)
    out = {'end': result['fit_end_wall'], 'first_step_s': result['first_step_s']}
  print('WALL ' + json.dumps(out), flush=True)


def _timed_process(side: str, name: str, epochs: int, cache: str, arrays_path: str) -> dict:
  """Seconds from starting `python -m scripts.benchmark --child=...` to the end it reports."""
  import subprocess  # pylint: disable=import-outside-toplevel
  command = [sys.executable, '-m', 'scripts.benchmark',
             f'--child={side}:{name}:{epochs}:{cache}:{arrays_path}',
             *(['--smoke'] if _SMOKE.value else []), *(f'--set={a}' for a in _SET.value)]
  start = time.time()
  proc = subprocess.run(command, capture_output=True, text=True, check=False,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  lines = [l for l in proc.stdout.splitlines() if l.startswith('WALL ')]
  if proc.returncode or not lines:
    raise RuntimeError(f'the timed {side} process of {name} failed: {proc.stderr[-3000:]}')
  out = json.loads(lines[-1][5:])
  return {'wait_s': out['end'] - start, 'first_step_s': out['first_step_s']}


def wall_times(name: str, arrays) -> dict:
  """The wall time a user waits, both sides alternating, medians over the repeats (keys
  ours_/keras_ + wait_cold_s, wait_warm_s, epoch_s, first_step_cold_s, first_step_warm_s)."""
  epochs = WALL_EPOCHS[name]
  sides = ['ours'] + ([] if _NO_KERAS.value else ['keras'])
  runs = {side: [] for side in sides}
  with tempfile.TemporaryDirectory() as folder:
    arrays_path = _save_arrays(arrays, folder)
    for _ in range(_REPEATS.value):
      for side in sides:
        cache = tempfile.mkdtemp(dir=folder)
        cold, long, warm = (_timed_process(side, name, e, cache, arrays_path)
                            for e in (epochs, 2 * epochs, epochs))
        runs[side].append({'wait_cold_s': cold['wait_s'], 'wait_warm_s': warm['wait_s'],
                           'epoch_s': (long['wait_s'] - warm['wait_s']) / epochs,
                           'first_step_cold_s': cold['first_step_s'],
                           'first_step_warm_s': warm['first_step_s']})
  row = {'wall_epochs': epochs}
  for side, side_runs in runs.items():
    for key in side_runs[0]:
      row[f'{side}_{key}'] = statistics.median(r[key] for r in side_runs)
  if 'keras' in runs:
    row['wait_ratio'] = row['keras_wait_cold_s'] / row['ours_wait_cold_s']
    row['epoch_ratio'] = row['keras_epoch_s'] / row['ours_epoch_s']
  return row


def run_crossval_ours(config_path: str, cache_dir: str, *overrides: str) -> dict:
  """`python -m scripts.crossval` in a fresh process (as a user reruns it), one cache dir.

  Its results.json, with `process_s`: the process's wall time (Python and imports included).
  """
  import subprocess  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'scripts.crossval', f'--config={config_path}:embedded',
                    f'--config.compilation_cache_dir={cache_dir}', '--config.progress_bar=False',
                    f'--workdir={workdir}', *overrides,
                    *(['--config.num_epochs=2'] if _SMOKE.value else [])],
                   check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with open(os.path.join(workdir, 'results.json')) as f:
      return dict(json.load(f), process_s=seconds)


def run_crossval_keras(config_path: str, build, learning_rates=None) -> dict:
  """The book's loop (_keras_twins.crossval) on the same rows, folds and per-fold
  standardization as ours (library.data code)."""
  import keras  # pylint: disable=import-outside-toplevel
  from library.data import pipeline, splits  # pylint: disable=import-outside-toplevel
  config = _load_config(config_path)
  config.data.standardize = False
  data = pipeline.prepare(config)
  x, y = data.splits['train']['inputs'], data.splits['train']['labels']
  folds = splits.fold_indices(config.members.scheme, len(y), config.members.k, config.seed,
                              config.members.shuffle, y)
  return twins.crossval(keras, build, x, y, folds,
                        learning_rates or [config.optimizer.learning_rate],
                        2 if _SMOKE.value else int(config.num_epochs), config.batch_size)


def crossval_row(name: str) -> dict:
  """Ours cold (empty compilation cache) and warm (its rerun), Keras alternating with them.

  Ours is timed from entering the loop to its results (`run_seconds`: data, compilation,
  training, evaluation) and as the whole process (`process_s`: Python and imports too)."""
  import jax  # pylint: disable=import-outside-toplevel
  path, build = CROSSVAL_ENTRIES[name]
  cold, warm, keras_runs = [], [], []
  for _ in range(_REPEATS.value):
    with tempfile.TemporaryDirectory() as cache:
      cold.append(run_crossval_ours(path, cache))
      warm.append(run_crossval_ours(path, cache))
    if build is not None and not _NO_KERAS.value:
      keras_runs.append(run_crossval_keras(path, build))
  med = lambda runs, f: statistics.median(f(r) for r in runs)  # noqa: E731
  row = {'name': name, 'members': cold[0]['num_members'], 'epochs': cold[0]['epochs'],
         'batch_size': cold[0]['batch_size'],
         'ours_first_run_s': med(cold, lambda r: r['run_seconds']),
         'ours_first_run_process_s': med(cold, lambda r: r['process_s']),
         'ours_first_run_train_s': med(cold, lambda r: r['train_seconds']),
         'ours_rerun_s': med(warm, lambda r: r['run_seconds']),
         'ours_rerun_process_s': med(warm, lambda r: r['process_s']),
         'ours_val_mae': med(cold, lambda r: r['mean']['val_mae']),
         'repeats': _REPEATS.value, 'device': jax.devices()[0].device_kind,
         'jax': jax.__version__}
  if keras_runs:
    row.update({'keras_s': med(keras_runs, lambda r: r['seconds']),
                'keras_val_mae': med(keras_runs, lambda r: r['val_mae']),
                'keras': keras_runs[0]['keras_version']})
    row['speedup_first_run'] = row['keras_s'] / row['ours_first_run_s']
    row['speedup_rerun'] = row['keras_s'] / row['ours_rerun_s']
    row['val_mae_ratio_keras_over_ours'] = row['keras_val_mae'] / row['ours_val_mae']
  print(json.dumps(row), flush=True)
  return row


# Book 3.6's k-fold with 8 learning rates: 32 members as one program, against the 8 k-fold runs
# in turn (each its own process and program) and Keras training the 32 models in turn.
SWEEP_RATES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2)


def sweep_row() -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  path = 'configs/mlp/boston_kfold.py'
  rates = '(' + ','.join(map(str, SWEEP_RATES)) + ')'
  one, turns, keras_runs = [], [], []
  for _ in range(_REPEATS.value):
    with tempfile.TemporaryDirectory() as cache:
      one.append(run_crossval_ours(path, cache, f'--config.members.learning_rate={rates}'))
    with tempfile.TemporaryDirectory() as cache:
      runs = [run_crossval_ours(path, cache, f'--config.optimizer.learning_rate={rate}')
              for rate in SWEEP_RATES]
      turns.append({'run_seconds': sum(r['run_seconds'] for r in runs),
                    'process_s': sum(r['process_s'] for r in runs)})
    if not _NO_KERAS.value:
      keras_runs.append(run_crossval_keras(path, twins.boston, list(SWEEP_RATES)))
  med = lambda runs, f: statistics.median(f(r) for r in runs)  # noqa: E731
  by_rate = {}
  for member in one[0]['members']:
    by_rate.setdefault(member['learning_rate'], []).append(member['val_mae'])
  row = {'name': 'boston_lr_sweep', 'members': one[0]['num_members'],
         'learning_rates': list(SWEEP_RATES),
         'ours_one_program_s': med(one, lambda r: r['run_seconds']),
         'ours_one_program_process_s': med(one, lambda r: r['process_s']),
         'ours_in_turn_s': med(turns, lambda r: r['run_seconds']),
         'ours_in_turn_process_s': med(turns, lambda r: r['process_s']),
         'val_mae_by_rate': {str(k): float(sum(v) / len(v)) for k, v in by_rate.items()},
         'repeats': _REPEATS.value, 'device': jax.devices()[0].device_kind,
         'jax': jax.__version__}
  row['speedup_over_in_turn'] = row['ours_in_turn_s'] / row['ours_one_program_s']
  if keras_runs:
    row['keras_s'] = med(keras_runs, lambda r: r['seconds'])
    row['speedup_over_keras'] = row['keras_s'] / row['ours_one_program_s']
  print(json.dumps(row), flush=True)
  return row


DQN_STEPS = (2_000, 6_000)    # loop steps of our two runs; their difference is timed


def run_dqn_ours(steps: int) -> float:
  """Seconds of training of configs/reinforcement/cartpole_dqn.py:one_seed for `steps` steps."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = _load_config('configs/reinforcement/cartpole_dqn.py:one_seed')
  config.num_train_steps = steps
  config.eval_every_steps = steps
  config.progress_bar = False
  config.compilation_cache_dir = ''    # both lengths compile alike: the difference cancels it
  with tempfile.TemporaryDirectory() as workdir:
    return train.train_and_evaluate(config, workdir)['train_seconds']


def run_dqn_host(env_steps: int) -> float:
  """Environment steps/s of a CleanRL-style host loop: gymnasium's CartPole-v1 stepped in
  Python, the same jitted Q-network chosen per step (one dispatch per step), one jitted update
  of 128 transitions from a NumPy replay every 10 steps (our ratio: 10 environments per
  update). Compilation is done before the clock starts."""
  import gymnasium  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from library.task import make_model  # pylint: disable=import-outside-toplevel
  config = _load_config('configs/reinforcement/cartpole_dqn.py:one_seed')
  t = config.task_config
  model = make_model(config.model)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))['params']
  target = params
  tx = optax.adam(config.optimizer.learning_rate)
  opt_state = tx.init(params)

  @jax.jit
  def act(params, obs):
    return jnp.argmax(model.apply({'params': params}, obs[None])[0])

  @jax.jit
  def update(params, target, opt_state, obs, action, reward, next_obs, terminated):
    def loss_fn(p):
      q = jnp.take_along_axis(model.apply({'params': p}, obs), action[:, None], -1)[:, 0]
      nxt = jnp.max(model.apply({'params': target}, next_obs), -1)
      y = reward + t.gamma * (1.0 - terminated) * nxt
      return jnp.mean(optax.l2_loss(q, jax.lax.stop_gradient(y)))
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(0)
  size = t.buffer_size
  buf = {'obs': np.zeros((size, 4), np.float32), 'next_obs': np.zeros((size, 4), np.float32),
         'action': np.zeros(size, np.int32), 'reward': np.zeros(size, np.float32),
         'terminated': np.zeros(size, np.float32)}
  env = gymnasium.make('CartPole-v1')
  obs, _ = env.reset(seed=0)
  def run(n, params, target, opt_state, start):
    nonlocal obs
    for i in range(start, start + n):
      eps = max(0.05, 1.0 - i / 25_000)
      action = (int(rng.integers(2)) if rng.random() < eps else
                int(act(params, jnp.asarray(obs, jnp.float32))))
      next_obs, reward, terminated, truncated, _ = env.step(action)
      j = i % size
      buf['obs'][j], buf['next_obs'][j], buf['action'][j] = obs, next_obs, action
      buf['reward'][j], buf['terminated'][j] = reward, float(terminated)
      obs = env.reset()[0] if terminated or truncated else next_obs
      if i % 10 == 0:
        idx = rng.integers(0, min(i + 1, size), t.batch_size)
        params, opt_state = update(params, target, opt_state,
                                   *(buf[k][idx] for k in ('obs', 'action', 'reward',
                                                           'next_obs', 'terminated')))
      if i % 500 == 0:
        target = params
    jax.block_until_ready(params)
    return params, target, opt_state
  params, target, opt_state = run(200, params, target, opt_state, 0)     # compiles both
  start = time.perf_counter()
  run(env_steps, params, target, opt_state, 200)
  return env_steps / (time.perf_counter() - start)


def dqn_row() -> dict:
  """DQN on CartPole: environment steps/s of our on-device loop (10 environments a step) and
  of the host loop, alternating, medians."""
  import jax  # pylint: disable=import-outside-toplevel
  config = _load_config('configs/reinforcement/cartpole_dqn.py:one_seed')
  envs = config.task_config.num_envs
  ours, host = [], []
  for _ in range(_REPEATS.value):
    lengths = (20, 40) if _SMOKE.value else DQN_STEPS
    short, long = (run_dqn_ours(n) for n in lengths)
    ours.append((lengths[1] - lengths[0]) * envs / (long - short))
    host.append(run_dqn_host(50 if _SMOKE.value else 5_000))
  row = {'name': 'dqn_cartpole', 'ours_env_steps_per_s': statistics.median(ours),
         'host_env_steps_per_s': statistics.median(host), 'repeats': _REPEATS.value,
         'device': jax.devices()[0].device_kind, 'jax': jax.__version__}
  row['ratio'] = row['ours_env_steps_per_s'] / row['host_env_steps_per_s']
  print(json.dumps(row), flush=True)
  return row


GAN_STEPS = 6   # iterations of batch 20 per run: the first compiles, the other 5 are timed


def _synthetic_frogs():
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  return {'train': {'inputs': rng.integers(0, 256, (200, 32, 32, 3)).astype(np.float32),
                    'labels': np.full(200, 6, np.int32)}}


def run_gan_ours(arrays) -> dict:
  """The book's DCGAN (configs/generative/cifar_frogs_gan.py), GAN_STEPS iterations."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = _load_config('configs/generative/cifar_frogs_gan.py', arrays)
  config.num_train_steps = config.eval_every_steps = GAN_STEPS
  config.log_every_steps = None
  config.progress_bar = False
  config.compilation_cache_dir = ''
  config.checkpoint.every_steps = 10**9
  with tempfile.TemporaryDirectory() as workdir:
    import contextlib, io  # pylint: disable=import-outside-toplevel,multiple-imports
    with contextlib.redirect_stdout(io.StringIO()):
      results = train.train_and_evaluate(config, workdir, arrays=arrays)
  return {'per_s': results['examples_per_second'],
          'first_step_s': results['first_step_seconds']}


def run_gan_keras(arrays) -> dict:
  import keras  # pylint: disable=import-outside-toplevel
  return twins.gan_steps(keras, arrays['train']['inputs'] / 255.0, GAN_STEPS)


def gan_row() -> dict:
  """DCGAN, batch 20 of 32x32x3: iterations/s x 20 of ours and of Keras' loop, alternating."""
  import jax  # pylint: disable=import-outside-toplevel
  arrays = _synthetic_frogs()
  ours, theirs = [], []
  for _ in range(_REPEATS.value):
    ours.append(run_gan_ours(arrays))
    if not _NO_KERAS.value:
      theirs.append(run_gan_keras(arrays))
  row = {'name': 'dcgan_frogs', 'ours_per_s': statistics.median(r['per_s'] for r in ours),
         'ours_first_step_s': statistics.median(r['first_step_s'] for r in ours),
         'steps': GAN_STEPS, 'repeats': _REPEATS.value,
         'device': jax.devices()[0].device_kind, 'jax': jax.__version__}
  if theirs:
    row.update({'keras_per_s': statistics.median(r['per_s'] for r in theirs),
                'keras_first_step_s': statistics.median(r['first_step_s'] for r in theirs),
                'keras': theirs[0]['keras_version']})
    row['ratio'] = row['ours_per_s'] / row['keras_per_s']
  print(json.dumps(row), flush=True)
  return row


def main(_):
  import jax  # pylint: disable=import-outside-toplevel
  if _CHILD.value:
    wall_child(_CHILD.value)
    return
  if _SMOKE.value:
    flags.FLAGS.repeats = 1
  jax.monitoring.register_event_duration_secs_listener(_record_phase)
  everything = list(ENTRIES) + list(CROSSVAL_ENTRIES) + ['boston_lr_sweep', 'dqn_cartpole',
                                                          'dcgan_frogs']
  names = _ONLY.value or everything
  unknown = [n for n in names if n not in everything]
  if unknown:
    raise UserError(f'unknown benchmark {unknown[0]!r}; choose from {", ".join(everything)}')
  dispatches = [int(v) for v in _DISPATCH.value.split(',') if v] or [None]
  rows = []
  for name in names:
    if name in CROSSVAL_ENTRIES:
      rows.append(crossval_row(name))
      continue
    if name == 'boston_lr_sweep':
      rows.append(sweep_row())
      continue
    if name == 'dqn_cartpole':
      rows.append(dqn_row())
      continue
    if name == 'dcgan_frogs':
      rows.append(gan_row())
      continue
    path, epochs, build, loss, make_arrays = ENTRIES[name]
    arrays = make_arrays() if make_arrays else None
    for k in dispatches:
      ours, keras_runs = [], []
      for _ in range(_REPEATS.value):
        ours.append(run_ours(path, epochs, k, arrays))
        if not _NO_KERAS.value:
          keras_runs.append(run_keras(path, epochs, build, loss, arrays))
      row = {'name': name if k is None else f'{name}[steps_per_dispatch={k}]',
             'ours_per_s': statistics.median(r['per_s'] for r in ours),
             'ours_first_step_s': statistics.median(r['first_step_s'] for r in ours),
             **{f'ours_{p}': statistics.median(r[p] for r in ours)
                for p in ('trace_s', 'lower_s', 'compile_s')},
             f'ours_test_{ours[0]["metric"]}': statistics.median(r['test_metric'] for r in ours),
             'steps': ours[0]['steps'], 'repeats': _REPEATS.value,
             'device': jax.devices()[0].device_kind, 'jax': jax.__version__}
      if keras_runs:
        row.update({
            'keras_per_s': statistics.median(r['per_s'] for r in keras_runs),
            'keras_first_step_s': statistics.median(r['first_step_s'] for r in keras_runs),
            **{f'keras_{p}': statistics.median(r[p] for r in keras_runs)
               for p in ('trace_s', 'lower_s', 'compile_s')},
            f'keras_test_{ours[0]["metric"]}': statistics.median(
                r['test_metric'] for r in keras_runs),
            'keras': keras_runs[0]['keras_version']})
        row['ratio'] = row['ours_per_s'] / row['keras_per_s']
      if _WALL.value and k is None:
        row.update(wall_times(name, arrays))
      rows.append(row)
      _print_row(row)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(rows, f, indent=2)
  print(f'wrote {_OUTPUT.value}')


def _phases_text(row, side):
  return '/'.join(f"{row[f'{side}_{p}_s']:.2f}" for p in ('trace', 'lower', 'compile'))


def _print_row(row):
  keras_part = (f"keras {row['keras_per_s']:9.0f}/s first step {row['keras_first_step_s']:5.2f} s"
                f" ({_phases_text(row, 'keras')})  ratio {row['ratio']:.2f}"
                if 'ratio' in row else '')
  print(f"{row['name']:40s} ours {row['ours_per_s']:9.0f}/s first step "
        f"{row['ours_first_step_s']:5.2f} s ({_phases_text(row, 'ours')})  {keras_part}",
        flush=True)
  if 'ours_wait_cold_s' in row:
    sides = [s for s in ('ours', 'keras') if f'{s}_wait_cold_s' in row]
    print(f"{'':40s} wall time ({row['wall_epochs']} epochs): " + '; '.join(
        f"{s} whole wait {row[f'{s}_wait_cold_s']:.2f} s cold, {row[f'{s}_wait_warm_s']:.2f} s "
        f"warm, {row[f'{s}_epoch_s']:.3f} s/epoch, first step {row[f'{s}_first_step_cold_s']:.2f}"
        f" s cold, {row[f'{s}_first_step_warm_s']:.2f} s warm" for s in sides), flush=True)
  sys.stdout.flush()


if __name__ == '__main__':
  cli.run(main)
