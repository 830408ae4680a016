"""The one training loop: `train_and_evaluate(config, workdir)`.

Order of a run (and of a resume, which is the same command run again):
1. check the config; refuse a workdir holding another experiment's checkpoints;
2. load and preprocess the data (statistics from the training split only); durations in
   epochs become steps from the dataset actually loaded;
3. build the model and task, initialise the state replicated on the ('data',) mesh, then
   restore the latest readable checkpoint if there is one (state, step and RNG: the batches
   are a function of (seed, step), so the data position comes back with the step);
4. train in chunks of steps, reading each chunk's metrics after dispatching the next; evaluate,
   log and checkpoint at their cadences; SIGTERM/SIGINT save and exit; NaN/Inf stops the run;
5. evaluate on the test split and write results.json and history.png.
"""
import json
import math
import os
import signal
import shutil
import time

import jax
import numpy as np
import tqdm

from library import checkpoints, config as config_lib, parallel, plots, steps, weights, writers
from library.data import pipeline, timeseries
from library.errors import Interrupted, TrainingDiverged, UserError
from library.task import make_model, make_task

# Averaged over a logging interval; the others are read at its end.
_LAST_VALUE = ('learning_rate', 'param_norm')


def _check_workdir(workdir: str, config, start_over: bool) -> None:
  """Refuses a workdir whose checkpoints are another experiment's, unless starting over."""
  config_path = os.path.join(workdir, 'config.json')
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  has_run = os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir))
  if has_run and not start_over and os.path.exists(config_path):
    with open(config_path) as f:
      mismatches = config_lib.resume_mismatches(f.read(), config)
    if mismatches:
      raise UserError(f'{workdir} holds checkpoints of a different config ({mismatches[0]} '
                      f'differs, {len(mismatches)} keys in all); use another --workdir or '
                      'rerun with --start_over to move the old run aside')


def prepare_workdir(workdir: str, start_over: bool) -> None:
  """Creates the workdir; starting over moves an old run aside (`previous-<time>/`)."""
  if start_over and os.path.isdir(workdir) and os.listdir(workdir):
    if jax.process_index() == 0:
      aside = os.path.join(workdir, time.strftime('previous-%Y%m%d-%H%M%S'))
      os.makedirs(aside)
      for name in os.listdir(workdir):
        if not name.startswith('previous-'):
          shutil.move(os.path.join(workdir, name), os.path.join(aside, name))
      print(f'--start_over: moved the previous run in {workdir} to {aside}', flush=True)
  os.makedirs(workdir, exist_ok=True)


def set_compilation_cache(path: str) -> None:
  """JAX's persistent compilation cache, on by default: a rerun loads instead of compiling.

  Every program is cached, however fast it compiled (JAX's default skips those under 1 s,
  which is most of ours on a CPU and still a large part of a short run).
  """
  if path and not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(path))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)


def _durations(config, num_train: int) -> dict[str, int]:
  """Epoch-based settings become steps, from the training split actually loaded."""
  spe = pipeline.steps_per_epoch(num_train, config.batch_size)
  total = (config.num_train_steps if config.num_train_steps is not None
           else max(1, math.ceil(config.num_epochs * spe)))
  if config.eval_every_steps is not None:
    eval_every = config.eval_every_steps
  elif config.eval_every_epochs is not None:
    eval_every = max(1, round(config.eval_every_epochs * spe))
  else:
    eval_every = spe
  log_every = config.log_every_steps or eval_every
  ckpt_every = config.checkpoint.every_steps or eval_every
  for name, value in (('eval_every', eval_every), ('log_every_steps', log_every),
                      ('checkpoint.every_steps', ckpt_every)):
    if value < 1:
      raise UserError(f'{name}={value} must be >= 1 step')
  return dict(steps_per_epoch=spe, total=total, eval_every=eval_every, log_every=log_every,
              ckpt_every=ckpt_every)


def _chunk_end(step: int, k: int, d: dict) -> int:
  """Where the chunk starting at `step` ends: K steps on, or the next boundary if sooner.

  Chunks restart at every boundary (log, eval, checkpoint, end), so a run resumed from a
  checkpoint dispatches exactly the chunks an uninterrupted run does.
  """
  end = min(step + k, d['total'])
  for every in (d['log_every'], d['eval_every'], d['ckpt_every']):
    end = min(end, (step // every + 1) * every)
  return end


class _SignalFlag:
  """SIGTERM/SIGINT set a flag; the loop saves a checkpoint at the end of the chunk."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _TrainMetrics:
  """Host-side running means of the train metrics since the last log line."""

  def __init__(self):
    self.sums, self.count, self.last = {}, 0.0, {}

  def add(self, metrics: dict[str, np.ndarray]) -> None:
    counts = metrics['count']
    for name, values in metrics.items():
      if name == 'count':
        continue
      if name in _LAST_VALUE:
        self.last[name] = float(values[-1])
      else:
        self.sums[name] = self.sums.get(name, 0.0) + float(np.sum(values * counts))
    self.count += float(np.sum(counts))

  def means(self) -> dict[str, float]:
    out = {k: v / max(self.count, 1.0) for k, v in self.sums.items()}
    out.update(self.last)
    return out

  def pop(self) -> dict[str, float]:
    out = self.means()
    self.sums, self.count, self.last = {}, 0.0, {}
    return out


def evaluate(state, split: str, data: steps.MeshData, eval_fn, batch_size: int) -> dict:
  """Mean metrics of the model over one split (every example exactly once)."""
  n = len(data.host[split]['labels'])
  total = None
  for idx, weights in pipeline.eval_batches(n, batch_size):
    sums = eval_fn(state, *data.args(split, idx, weights))
    total = sums if total is None else jax.tree.map(lambda a, b: a + b, total, sums)
  total = jax.device_get(total)
  count = float(total.pop('count'))
  return {name: float(value) / count for name, value in total.items()}


def _backend(mesh) -> str:
  platform = mesh.devices.flat[0].platform
  return 'gpu' if platform in ('gpu', 'cuda', 'rocm') else platform


def setup(config, arrays=None, devices=None):
  """Everything but the loop: data on the mesh, model, task, compiled functions, fresh state.

  Shared by train_and_evaluate and the evaluate/predict scripts.
  """
  config_lib.validate(config)
  mesh = parallel.make_mesh(devices)
  parallel.check_divisible(config.batch_size, mesh, 'batch_size')
  parallel.check_divisible(config.eval_batch_size, mesh, 'eval_batch_size')
  datasets = pipeline.prepare(config, arrays)
  d = _durations(config, datasets.size('train'))
  on_device = config.data.placement == 'device'
  if config.data.placement == 'auto':
    nbytes = sum(a.nbytes for s in datasets.splits.values() for a in s.values())
    on_device = nbytes <= config.data.on_device_max_mb * 2**20
  data = steps.MeshData(datasets, mesh, on_device)
  batches = pipeline.TrainBatches(datasets.size('train'), config.batch_size, config.seed)
  example = timeseries.gather(datasets.splits['train'],
                              np.arange(min(config.batch_size, datasets.size('train'))))
  example['weights'] = np.ones(len(example['labels']), np.float32)
  model = make_model(config.model)
  task = make_task(config, model, d['total'], example['inputs'])
  state = steps.make_init(task, mesh)(jax.random.PRNGKey(config.seed), example)
  state = start_from(config, task, state, datasets.param_init, mesh)
  return dict(mesh=mesh, datasets=datasets, durations=d, model=model, task=task, data=data,
              batches=batches, example=example, state=state, on_device=on_device)


def start_from(config, task, state, param_init: dict, mesh):
  """The initial state with data-given values (embeddings) and config.model_init applied."""
  values = dict(param_init)
  if config.model_init.path:
    if task.variables is None:
      raise UserError(f'task={config.task!r} cannot start from model_init')
    target = {k: tuple(v.shape) for k, v in weights.flat_variables_abstract(
        task.variables(state)).items()}
    values.update(weights.load_for(config.model_init.path, target,
                                   prefix=config.model_init.prefix, skip=config.model_init.skip))
  if not values:
    return state
  if task.with_params is None:
    raise UserError(f'task={config.task!r} cannot start from given parameter values')
  return jax.device_put(task.with_params(state, values), parallel.replicated(mesh))


def train_and_evaluate(config, workdir: str, *, arrays=None, devices=None,
                       start_over: bool = False) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns results.json's dict.

  arrays: the in-memory source ({split: {'inputs', 'labels'}}, with data.source='arrays').
  devices: the devices of the mesh (default: all devices of all hosts).
  """
  config_lib.validate(config)
  main = parallel.is_main_process()
  _check_workdir(workdir, config, start_over)
  set_compilation_cache(config.compilation_cache_dir)
  s = setup(config, arrays, devices)   # bad input fails here, before anything is written
  mesh, task, data, d, batches = s['mesh'], s['task'], s['data'], s['durations'], s['batches']
  state = s['state']
  has_validation = 'validation' in data.host
  best_split = config.checkpoint.best_metric.split('.')[0] if config.checkpoint.best_metric else ''
  if best_split and best_split not in data.host:
    raise UserError(f'checkpoint.best_metric={config.checkpoint.best_metric!r} names split '
                    f'{best_split!r}, which this run does not have')
  prepare_workdir(workdir, start_over)

  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint.keep,
                                  config.checkpoint.best_metric, config.checkpoint.best_mode)
  restored = ckpt.restore(checkpoints.abstract(state))
  if restored is not None:
    state, meta = restored
    if main:
      print(f'resuming from the checkpoint at step {meta["step"]} in {workdir}', flush=True)
  start_step = int(jax.device_get(state.step))
  if main:
    writers.write_json_atomic(os.path.join(workdir, 'config.json'),
                              json.loads(config_lib.to_json(config)))
    writers.write_json_atomic(os.path.join(workdir, 'data_spec.json'), {
        'input_shape': list(s['datasets'].raw_input_shape),
        'splits': {k: s['datasets'].size(k) for k in s['datasets'].splits}})
    if s['datasets'].stats is not None:
      np.savez(os.path.join(workdir, 'preprocessing.npz'), **s['datasets'].stats)
    summary = task.summary(s['example'])
    with open(os.path.join(workdir, 'summary.txt'), 'w') as f:
      f.write(summary)
    print(summary, flush=True)
    num_params = sum(x.size for x in jax.tree.leaves(task.params(state)))
    print(f'{num_params:,} parameters; {data.host["train"]["labels"].shape[0]:,} training '
          f'examples, {d["steps_per_epoch"]} steps per epoch, {d["total"]} steps; '
          f'{mesh.size} {_backend(mesh)} device(s); data on '
          f'{"device" if s["on_device"] else "host"}', flush=True)

  train_chunk = steps.make_train_chunk(task, mesh, s['on_device'])
  eval_fn = steps.make_eval_batch(task, mesh, s['on_device'])
  k = config.steps_per_dispatch[_backend(mesh)]
  writer = writers.MetricWriter(workdir, enabled=main)
  running = _TrainMetrics()
  progress = tqdm.tqdm(total=d['total'], initial=start_step, unit='step', dynamic_ncols=True,
                       disable=not (main and config.progress_bar), mininterval=0.5)
  timing = {'first_chunk_s': None, 'first_done': None, 'first_steps': 0, 'eval_s': 0.0,
            'ckpt_s': 0.0}
  last_good = {'step': ckpt.all_steps()[-1] if ckpt.all_steps() else None}
  latest_val = {}

  def epoch_of(step):
    return step / d['steps_per_epoch']

  def absorb(first_step, metrics):
    """Reads a dispatched chunk's metrics: NaN guard, running means, progress, log lines."""
    metrics = jax.device_get(metrics)
    losses = np.asarray(metrics['loss'])
    # A finite loss over Inf parameters (saturated softmax, dead units) has diverged too.
    norms = np.asarray(metrics.get('param_norm', np.zeros_like(losses)))
    bad = np.flatnonzero(~np.isfinite(losses) | ~np.isfinite(norms))
    if bad.size:
      at = first_step + int(bad[0])
      what = (f'loss is {losses[bad[0]]}' if not np.isfinite(losses[bad[0]])
              else f'parameter norm is {norms[bad[0]]}')
      raise TrainingDiverged(
          f'{what} at step {at} (epoch {epoch_of(at):.2f}); stopped. The last good '
          f'checkpoint ({last_good["step"]}) is kept in {ckpt.directory}')
    running.add(metrics)
    end = first_step + len(losses)
    progress.update(len(losses))
    progress.set_postfix({n: f'{v:.4f}' for n, v in running.means().items()
                          if n in ('loss', 'accuracy', 'mae')}, refresh=False)
    if end % d['log_every'] == 0 or end == d['total']:
      writer.write(end, 'train', running.pop(), epoch_of(end))

  def save(step):
    meta = {'step': step, 'epoch': epoch_of(step), 'seed': config.seed,
            'data_position': {'epoch': step // d['steps_per_epoch'],
                              'batch': step % d['steps_per_epoch']}}
    save_start = time.perf_counter()
    ckpt.save(step, state, meta, metrics=dict(latest_val) or None)
    timing['ckpt_s'] += time.perf_counter() - save_start
    last_good['step'] = step

  step, pending, final_val = start_step, None, None
  loop_start = time.perf_counter()
  try:
    with _SignalFlag() as stop:
      while step < d['total']:
        end = _chunk_end(step, k, d)
        idx, weights = batches.indices(step, end - step)
        state, metrics = train_chunk(state, *data.args('train', idx, weights))
        if pending is not None:
          absorb(*pending)
        pending, step = (step, metrics), end
        if timing['first_chunk_s'] is None:
          jax.block_until_ready(metrics)
          timing['first_done'] = time.perf_counter()
          timing['first_chunk_s'] = timing['first_done'] - loop_start
          timing['first_steps'] = end - pending[0]
        at_eval = step % d['eval_every'] == 0 or step == d['total']
        at_ckpt = step % d['ckpt_every'] == 0 or step == d['total']
        if at_eval or at_ckpt or stop.signum is not None:
          absorb(*pending)  # the state about to be used or saved must have finite losses
          pending = None
        if at_eval and has_validation:
          eval_start = time.perf_counter()
          val = evaluate(state, 'validation', data, eval_fn, config.eval_batch_size)
          final_val = val if step == d['total'] else None
          timing['eval_s'] += time.perf_counter() - eval_start
          latest_val.clear()
          latest_val.update({f'validation.{n}': v for n, v in val.items()})
          writer.write(step, 'validation', val, epoch_of(step))
        if at_ckpt or stop.signum is not None:
          save(step)
          latest_val.clear()
        if stop.signum is not None:
          raise Interrupted(stop.signum, step)
      if pending is not None:
        absorb(*pending)
    jax.block_until_ready(state)
    loop_end = time.perf_counter()
    train_seconds = loop_end - loop_start
    progress.close()  # before the test evaluation, so its line is complete

    results = {'steps': int(step), 'epochs': epoch_of(step), 'train_seconds': train_seconds,
               'devices': mesh.size, 'backend': _backend(mesh),
               'device_kind': mesh.devices.flat[0].device_kind, 'processes': jax.process_count(),
               'batch_size': config.batch_size, 'steps_per_dispatch': k,
               'num_params': int(sum(x.size for x in jax.tree.leaves(task.params(state)))),
               'resumed_from_step': start_step, 'jax_version': jax.__version__}
    if timing['first_chunk_s'] is not None:
      results['first_step_seconds'] = timing['first_chunk_s']
      steady_steps = step - start_step - timing['first_steps']
      steady_s = loop_end - timing['first_done'] - timing['eval_s'] - timing['ckpt_s']
      if steady_steps > 0 and steady_s > 0:
        # Training steps only: compilation, evaluation and checkpoint time excluded.
        results['examples_per_second'] = steady_steps * config.batch_size / steady_s
    if 'validation' in data.host:
      results['validation'] = final_val or evaluate(state, 'validation', data, eval_fn,
                                                    config.eval_batch_size)
    if 'test' in data.host:
      results['test'] = evaluate(state, 'test', data, eval_fn, config.eval_batch_size)
    for split, reference in s['datasets'].reference.items():
      if split in results:
        results[split].update(reference)
      writer.write(step, 'test', results['test'], epoch_of(step))
    if main:
      writers.write_json_atomic(os.path.join(workdir, 'results.json'), results)
      plots.plot_history(writer.path, os.path.join(workdir, 'history.png'))
    return results
  finally:
    progress.close()
    writer.close()
    ckpt.close()
