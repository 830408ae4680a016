"""The one training loop: `train_and_evaluate(config, workdir)`.

Order of a run (and of a resume, which is the same command run again):
1. check the config (the loop's keys, then the task's own section); refuse a workdir holding
   another experiment's checkpoints;
2. if the task has a dataset (its module has load_data), load and preprocess it (statistics
   from the training split only); durations in epochs become steps from the dataset actually
   loaded. A task without one trains for num_train_steps;
3. build the task, initialise the state on the ('data',) mesh as the task lays it out
   (replicated by default), then restore the latest readable checkpoint if there is one
   (state, step, RNG and the callbacks' counters: the batches are a function of (seed, step),
   so the data position comes back with the step);
4. train in chunks of steps, reading each chunk's metrics after dispatching the next; at each
   evaluation: validation metrics (the weighted sums of the task's eval_step, reduced by
   Task.reducers, then the config's evaluators over the split's predictions), the callbacks
   (early stopping, learning-rate reduction), the task's artifacts; log and checkpoint at
   their cadences; SIGTERM/SIGINT save and exit; NaN/Inf in any floating metric stops the
   run;
5. with restore_best_weights, go back to the best state; evaluate on the test split; write
   results.json (with why training stopped and which step's state its numbers are) and
   history.png.

The code follows that order, one function a phase, read top to bottom:
`_train_and_evaluate` -> `_open_run` (set up, checks, checkpoints) -> `_restore` (or the run
found finished) -> `_write_run_files` -> `_start_loop` -> `_train_chunks` -> `_finish`
(`_best_weights`, `_results`, `_final_evaluations`, results.json last). What the phases share
is one `_Run` dataclass: the set-up (`Setup`), the checkpoints and callbacks, and the loop's
running state with its methods (`absorb` a chunk's metrics, `finish_validation`, `save`,
`at_evaluation`, `artifacts`). The data side is a `steps.Feed`: one model's dataset, a task
without one, or members (library/members.py), all alike to the loop. Beside the callbacks,
the loop calls a `steps.EvaluationHook` at each record, evaluation, checkpoint and at the
finish: one model's does nothing of its own, members' (`members.MemberHook`) keeps their
history, each one's best and their rows in results.json. The loop has no member branch.
"""
import dataclasses
import json
import math
import os
import signal
import time
from typing import Any

import jax
import numpy as np
import tqdm

from library import (callbacks as callbacks_lib, checkpoints, config as config_lib,
                     evaluators, members as members_lib, optimizers, parallel, plots, steps,
                     weights, workdirs, writers)
from library.data import pipeline
from library.errors import Interrupted, TrainingDiverged, UserError

# Averaged over a logging interval; the others are read at its end.
_LAST_VALUE = ('learning_rate', 'param_norm')


def set_compilation_cache(path: str) -> None:
  """JAX's persistent compilation cache, on by default: a rerun loads instead of compiling.

  Every program is cached, however fast it compiled (JAX's default skips those under 1 s,
  which is most of ours on a CPU and still a large part of a short run).
  """
  if path and not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(path))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)


def _durations(config, spe: int | None) -> dict[str, int]:
  """Epoch-based settings become steps, from the steps per epoch of the training split actually
  loaded; a task without a dataset has no epochs (spe None)."""
  if spe is None:
    if config.num_train_steps is None or config.eval_every_epochs is not None:
      raise UserError(f'task={config.task!r} has no dataset, so no epochs: set '
                      'num_train_steps (and eval_every_steps), not num_epochs/eval_every_epochs')
    total = config.num_train_steps
    eval_every = config.eval_every_steps or total
  else:
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
  if config.checkpoint.every_epochs is not None and config.checkpoint.every_steps is None:
    if spe is None:
      raise UserError(f'task={config.task!r} has no dataset, so no epochs: set '
                      'checkpoint.every_steps, not checkpoint.every_epochs')
    ckpt_every = max(1, round(config.checkpoint.every_epochs * spe))
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
  """SIGTERM/SIGINT set a flag; the loop saves a checkpoint at the end of the chunk.

  On several processes, SIGTERM is left to JAX's preemption service (jax.distributed's own
  handler): `poll` at every chunk boundary turns it into the flag on every process at the
  same boundary, so that all of them save one checkpoint of one step and exit alike. SIGINT
  (Ctrl-C, or srun forwarding it) is turned into that SIGTERM, so it stops every host alike."""

  def __init__(self):
    self.signum = None
    self._previous = {}
    self._polls = 0
    self._several = jax.process_count() > 1

  def poll(self) -> None:
    """At a chunk boundary: the flag, once every process agreed on this one."""
    if self._several:
      self._polls += 1
      if parallel.preempted(self._polls):
        self.signum = signal.SIGTERM

  def __enter__(self):
    for sig in (signal.SIGINT,) if self._several else (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if self._several:      # to JAX's preemption service, which tells every process
      os.kill(os.getpid(), signal.SIGTERM)
      return
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _TrainMetrics:
  """Host-side running means of the train metrics since the last log line (per member when
  the metrics have a member axis); a metric with a reducer (Task.reducers: AUC) is its sums
  since then, reduced."""

  def __init__(self, reducers: dict | None = None):
    self.sums, self.count, self.last = {}, 0.0, {}
    self.reducers = reducers or {}

  def add(self, metrics: dict[str, np.ndarray]) -> None:
    first = np.asarray(next(v for n, v in metrics.items() if n not in self.reducers))
    counts = np.asarray(metrics.get('count', np.ones(first.shape, np.float32)))
    for name, values in metrics.items():
      if name == 'count':
        continue
      if name in _LAST_VALUE:
        self.last[name] = np.asarray(values[-1], np.float64)
      elif name in self.reducers:
        self.sums[name] = self.sums.get(name, 0.0) + np.sum(values, axis=0, dtype=np.float64)
      else:
        self.sums[name] = self.sums.get(name, 0.0) + np.sum(values * counts, axis=0,
                                                            dtype=np.float64)
    self.count = self.count + np.sum(counts, axis=0, dtype=np.float64)

  def means(self) -> dict:
    out = {k: self.reducers[k](v) if k in self.reducers else v / np.maximum(self.count, 1.0)
           for k, v in self.sums.items()}
    out.update(self.last)
    return out

  def pop(self) -> dict:
    out = self.means()
    self.sums, self.count, self.last = {}, 0.0, {}
    return out

  def state(self) -> dict:
    """What a checkpoint keeps (JSON; float64 round-trips exactly), so that a run resumed
    between two log lines reports the same train means as an uninterrupted one."""
    as_list = lambda v: np.asarray(v, np.float64).tolist()  # noqa: E731
    return {'sums': {k: as_list(v) for k, v in self.sums.items()}, 'count': as_list(self.count),
            'last': {k: as_list(v) for k, v in self.last.items()}}

  def load(self, saved: dict | None) -> None:
    if saved:
      self.sums = {k: np.asarray(v, np.float64) for k, v in saved['sums'].items()}
      self.count = np.asarray(saved['count'], np.float64)
      self.last = {k: np.asarray(v, np.float64) for k, v in saved['last'].items()}


def _mean_over_members(metrics: dict) -> dict[str, float]:
  return {k: float(np.mean(v)) for k, v in metrics.items()}


def _check_finite(metrics: dict, first_step: int):
  """(message, step) of the first NaN/Inf among the floating metrics of a chunk, or None."""
  worst = None
  for name, values in metrics.items():
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
      continue
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if bad.size and (worst is None or bad[0] < worst[1]
                     or (bad[0] == worst[1] and name == 'loss')):
      value = values[bad[0]]
      worst = (f'{"parameter norm" if name == "param_norm" else name} is {value}', int(bad[0]))
  return None if worst is None else (worst[0], first_step + worst[1])


def _backend(mesh) -> str:
  platform = mesh.devices.flat[0].platform
  return 'gpu' if platform in ('gpu', 'cuda', 'rocm') else platform


@dataclasses.dataclass(eq=False)
class Setup:
  """Everything of a run but the loop (setup's): what the evaluate, predict and notebook paths
  share with train_and_evaluate."""
  mesh: Any                            # the ('data',) mesh
  datasets: Any                        # pipeline.Datasets; None for a task without a dataset
  durations: dict                      # _durations: steps_per_epoch, total, eval_every, ...
  task: Any                            # task.Task
  feed: steps.Feed                     # DataFeed / DatalessFeed, members.MemberFeed
  hook: steps.EvaluationHook           # what the loop calls beside the callbacks (members')
  example: Any                         # a batch the state was initialised from (or None)
  state: Any                           # the fresh state (model_init's values in place)
  on_device: bool                      # the dataset held on the devices (not the host)
  members: Any                         # members.Layout, or None for one model


def setup(config, arrays=None, devices=None) -> Setup:
  """Everything but the loop: the data on the mesh, the task, its feed (compiled chunk, its
  arguments, evaluation) and the fresh state.

  Shared by train_and_evaluate and the evaluate/predict scripts. `datasets` and `example` are
  None for a task without a dataset; `members` is the member layout (library/members.py) or
  None.
  """
  config_lib.validate(config)
  module = config_lib.task_module(config.task)
  datasets = example = lay = None
  on_device = False
  hook = steps.EvaluationHook()
  if members_lib.enabled(config):
    if not hasattr(module, 'load_data') and arrays is not None:
      raise UserError(f'task={config.task!r} has no dataset: it takes no arrays')
    lay = members_lib.layout(config, module, arrays)
    mesh = members_lib.mesh_for(lay.size, devices)
    spe = lay.steps_per_epoch(config.batch_size)
    if lay.data is not None:    # what make_task sees: member 0's inputs
      train = dict(lay.data)
      if lay.member_inputs is not None:
        train['inputs'] = jax.tree.map(lambda v: v[0], lay.member_inputs)
      if lay.member_labels is not None:
        train['labels'] = lay.member_labels[0]
      datasets = pipeline.Datasets({'train': train}, None, lay.raw_input_shape,
                                   model_kwargs=lay.model_kwargs,
                                   preprocessing=lay.preprocessing)
  else:
    mesh = parallel.make_mesh(devices)
    if hasattr(module, 'load_data'):
      parallel.check_divisible(config.batch_size, mesh, 'batch_size')
      parallel.check_divisible(config.eval_batch_size, mesh, 'eval_batch_size')
      datasets = module.load_data(config, arrays)
      spe = pipeline.steps_per_epoch(datasets.size('train'), config.batch_size)
    elif arrays is not None:
      raise UserError(f'task={config.task!r} has no dataset: it takes no arrays')
    else:
      spe = None
  d = _durations(config, spe)
  task = module.make_task(config, datasets, d['total'])
  sharding = steps.state_shardings(task, mesh) if task.state_sharding is not None else None
  specs = evaluators.specs(config)
  if specs and (task.predict is None or task.eval_step is None):
    raise UserError(f'evaluators: task={config.task!r} has no predict and eval_step to '
                    'evaluate from')
  if lay is not None:
    feed = members_lib.MemberFeed(config, task, lay, mesh, specs)
    hook = members_lib.MemberHook(config, lay, feed, spe)
    state, example = feed.init()
  else:
    if datasets is not None:
      on_device = config.data.placement == 'device'
      # On several processes 'auto' keeps the data on the hosts, each process reading only the
      # rows of its own shards (replicated on the devices, every host would hold every row).
      if config.data.placement == 'auto' and jax.process_count() == 1:
        nbytes = sum(a.nbytes for s in datasets.splits.values() for a in jax.tree.leaves(s))
        on_device = nbytes <= config.data.on_device_max_mb * 2**20
      data = steps.MeshData(datasets, mesh, on_device)
      batches = pipeline.TrainBatches(datasets.size('train'), config.batch_size, config.seed)
      example = datasets.example(config.batch_size)
      feed = steps.DataFeed(task, mesh, data, batches, config.eval_batch_size, sharding, specs)
    else:
      feed = steps.DatalessFeed(task, mesh, sharding)
    state = steps.make_init(task, mesh)(jax.random.PRNGKey(config.seed), example)
    state = start_from(config, task, state, datasets.param_init if datasets else {}, mesh)
  return Setup(mesh=mesh, datasets=datasets, durations=d, task=task, feed=feed, hook=hook,
               example=example, state=state, on_device=on_device, members=lay)


def start_from(config, task, state, param_init: dict, mesh):
  """The initial state with data-given values (embeddings) and config.model_init applied
  (weights.start_values)."""
  values = weights.start_values(config.model_init, task, state, param_init, config.task)
  if not values:
    return state
  return jax.device_put(task.with_params(state, values), steps.state_shardings(task, mesh))


def _check_monitors(config, splits, task, state, example, stacked: bool) -> None:
  """A metric the run cannot report is an error before anything is written: its split must
  be one the run has, and its name one the task's step or an evaluator reports (the step's
  found by tracing it abstractly, only when a monitor or an evaluator is set); an evaluator
  may not take the name of a metric of the step."""
  wanted = [('checkpoint.best_metric', config.checkpoint.best_metric)]
  wanted += [(f'callbacks.{n}.monitor', config.callbacks[n].monitor)
             for n in ('early_stopping', 'reduce_lr')]
  extra = set(config.get('evaluators', {}))
  names = {}

  def reported(kind):
    if kind not in names:
      one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[stacked:], x.dtype), state)
      batch = None if example is None else jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), example)
      if kind == 'train':
        names[kind] = set(jax.eval_shape(task.train_step, one, batch)[1]) - {'count'}
      else:
        names[kind] = set(jax.eval_shape(task.eval_step, one, batch)) - {'count'}
    return names[kind]

  clash = sorted(extra & reported('eval')) if extra else []
  if clash:
    raise UserError(f"evaluators.{clash[0]}: the evaluation's own metric of that name exists; "
                    'give the evaluator another name')
  for key, monitor in wanted:
    if not monitor:
      continue
    split, _, name = monitor.partition('.')
    if split != 'train' and split not in splits:
      hint = ' (set data.validation to hold one out)' if split == 'validation' else ''
      raise UserError(f'{key}={monitor!r} names split {split!r}, which this run does not '
                      f'have{hint}')
    kind = 'train' if split == 'train' else 'eval'
    if name not in reported(kind) | (extra if kind == 'eval' else set()):
      known = names[kind] | (extra if kind == 'eval' else set())
      raise UserError(f'{key}={monitor!r}: the {split} split reports '
                      f'{", ".join(sorted(split + "." + n for n in known))}')


_copy_state = jax.jit(lambda state: jax.tree.map(lambda x: x.copy(), state))


def train_and_evaluate(config, workdir: str, *, arrays=None, devices=None,
                       start_over: bool = False, return_state: bool = False):
  """Trains `config` in `workdir` (resuming what is there) and returns results.json's dict.

  arrays: the in-memory source ({split: {'inputs', 'labels'}}, with data.source='arrays').
  devices: the devices of the mesh (default: all devices of all hosts).
  return_state: return (results, the trained state, setup(config)'s Setup) instead: the state
    whose numbers results.json reports (the best one where the run restores its best), as
    library/notebook.py hands it back.
  """
  run_start = time.perf_counter()
  config_lib.validate(config)
  workdirs.check_path(workdir)
  # One run per workdir: a second one is refused here, before it reads or writes anything.
  with workdirs.Lock(workdir, enabled=parallel.is_main_process()) as lock:
    out = _train_and_evaluate(config, workdir, arrays, devices, start_over, run_start, lock)
  return out if return_state else out[0]


SUMMARY_LINES = 80     # a model summary longer than this is printed as layer_kinds


def layer_kinds(params, where: str, stacked: int = 1) -> str:
  """The model in a few lines: each kind of layer (Dense, Embed, Conv, ...: a module's name
  without its number), how many and their parameters; `stacked`: members on a leading axis
  (their count divides the parameters)."""
  import collections  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  modules, sizes = collections.defaultdict(set), collections.Counter()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = [str(getattr(k, 'key', getattr(k, 'name', k))) for k in path]
    module = '/'.join(names[:-1]) or names[-1]
    kind = re.sub(r'_\d+$', '', names[-2] if len(names) > 1 else names[-1])
    modules[kind].add(module)
    sizes[kind] += leaf.size // stacked
  total = sum(sizes.values())
  lines = [f'{total:,} parameters in {sum(len(m) for m in modules.values())} layers (the full '
           f'table is {where}):']
  for kind, count in sorted(sizes.items(), key=lambda item: -item[1]):
    lines.append(f'  {kind:<24} x {len(modules[kind]):<5} {count:>14,} parameters')
  return '\n'.join(lines)


def _write_finish_files(workdir: str, hook, only_missing: bool = False) -> None:
  """The finish's pictures (and the hook's: members' history), from the records
  (metrics.jsonl, the hook's state saved with each checkpoint). only_missing: write them only
  when one is missing (a rerun of a run killed after its results.json)."""
  names = ['history.png'] + hook.files()
  if only_missing and all(os.path.exists(os.path.join(workdir, n)) for n in names):
    return
  plots.plot_history(os.path.join(workdir, 'metrics.jsonl'),
                     os.path.join(workdir, 'history.png'))
  hook.write_files(workdir)


@dataclasses.dataclass(eq=False)
class _Run:
  """What the phases of one run share: the set-up, the checkpoints, the callbacks, and the
  loop's running state (the state being trained, its best so far, what was dispatched and not
  yet read, the records). One object instead of closures over locals: each phase below reads
  top to bottom."""
  config: Any
  workdir: str
  s: Setup
  ckpt: checkpoints.Checkpointer
  callbacks: dict                      # Keras' callbacks by name
  keeps_best: bool                     # a best state is kept (and checkpointed) beside state
  lock: Any
  run_start: float
  state: Any = None
  best_state: Any = None
  start_step: int = 0
  step: int = 0
  stopped_early: bool = False
  saved_running: dict | None = None
  # The loop's: set by _start_loop.
  k: int = 1                           # steps per dispatch
  writer: Any = None
  running: Any = None                  # _TrainMetrics since the last log line
  progress: Any = None
  timing: dict = dataclasses.field(default_factory=lambda: {
      'first_chunk_s': None, 'first_done': None, 'first_steps': 0, 'eval_s': 0.0,
      'ckpt_s': 0.0, 'loop_start': None, 'loop_end': None})
  last_good: int | None = None         # the step of the last checkpoint saved
  latest_val: dict = dataclasses.field(default_factory=dict)   # for checkpoint.best_metric
  last_train: dict = dataclasses.field(default_factory=dict)   # for the callbacks' logs
  shown: dict = dataclasses.field(default_factory=dict)        # the progress bar's
  pending: tuple | None = None         # (first step, metrics) of the chunk not yet read
  pending_val: tuple | None = None     # (step, sums) of the validation not yet read
  final_val: dict | None = None        # the validation of the last step, if read

  main = property(lambda self: parallel.is_main_process())
  task = property(lambda self: self.s.task)
  feed = property(lambda self: self.s.feed)
  d = property(lambda self: self.s.durations)
  hook = property(lambda self: self.s.hook)
  early = property(lambda self: self.callbacks.get('early_stopping'))

  def epoch_of(self, step):
    spe = self.d['steps_per_epoch']
    return step / spe if spe else None

  def log(self, step, split, values):
    """One record (the mean over members, if any); the hook keeps members' own values."""
    self.hook.record(step, split, values)
    self.writer.write(step, split, _mean_over_members(values), self.epoch_of(step))

  def show(self, values: dict, prefix: str = '') -> None:
    self.shown.update({f'{prefix}{n}': v for n, v in values.items()
                       if n in ('loss', 'accuracy', 'mae')})
    self.progress.set_postfix({n: f'{v:.4f}' for n, v in self.shown.items()}, refresh=False)

  def absorb(self) -> None:
    """Reads the dispatched chunk's metrics: NaN guard, running means, progress, log lines."""
    (first_step, metrics), self.pending = self.pending, None
    metrics = self.hook.on_host(jax.device_get(metrics))
    bad = _check_finite(metrics, first_step)
    if bad is not None:
      what, at = bad
      when = f' (epoch {self.epoch_of(at):.2f})' if self.d['steps_per_epoch'] else ''
      kept = (f'The last good checkpoint ({self.last_good}) is kept in {self.ckpt.directory}'
              if self.last_good is not None else 'No checkpoint was saved before it')
      raise TrainingDiverged(f'{what} at step {at}{when}; stopped. {kept}')
    self.running.add(metrics)
    num = len(next(iter(metrics.values())))
    self.last_train.update({n: float(np.mean(v[-1])) for n, v in metrics.items()
                            if n not in self.running.reducers})
    end = first_step + num
    self.progress.update(num)
    self.show(_mean_over_members(self.running.means()))
    if end % self.d['log_every'] == 0 or end == self.d['total']:
      record = self.running.pop()
      self.log(end, 'train', record)
      self.last_train.update({f'train.{n}': v for n, v in _mean_over_members(record).items()})

  def finish_validation(self) -> dict:
    """Reads the dispatched validation sums: the record, the monitors, the progress bar."""
    (at, sums), self.pending_val = self.pending_val, None
    eval_start = time.perf_counter()
    val_members = self.feed.means(sums)
    self.timing['eval_s'] += time.perf_counter() - eval_start
    val = _mean_over_members(val_members)
    self.final_val = val if at == self.d['total'] else None
    self.latest_val.clear()
    self.latest_val.update({f'validation.{n}': v for n, v in val.items()})
    self.log(at, 'validation', val_members)
    self.show(val, 'val_')
    return val

  def read_all(self) -> dict | None:
    """Reads whatever was dispatched and not yet read; the validation's values, if any."""
    if self.pending is not None:
      self.absorb()
    return self.finish_validation() if self.pending_val is not None else None

  def save(self, step) -> None:
    meta = {'step': step, 'epoch': self.epoch_of(step), 'seed': self.config.seed,
            'callbacks': {name: cb.state() for name, cb in self.callbacks.items()},
            'train_running': self.running.state(), **self.hook.meta()}
    spe = self.d['steps_per_epoch']
    if spe:
      meta['data_position'] = {'epoch': step // spe, 'batch': step % spe}
    save_start = time.perf_counter()
    self.lock.check()
    self.ckpt.save(step, self.state, meta, metrics=dict(self.latest_val) or None,
                   best_state=self.best_state if self.keeps_best else None)
    self.timing['ckpt_s'] += time.perf_counter() - save_start
    self.last_good = step
    self.latest_val.clear()

  def at_evaluation(self, step, val) -> None:
    """Keras' callbacks and the hook (members' bests) at this evaluation (sets
    stopped_early)."""
    if self.callbacks:
      self.stopped_early = self._run_callbacks(step, val)
    if val is not None:
      self.best_state = self.hook.at_evaluation(step, self.state, self.best_state)

  def _run_callbacks(self, step, val) -> bool:
    """Keras' callbacks at this evaluation; True when training should stop."""
    logs = {f'validation.{n}': v for n, v in (val or {}).items()}
    logs.update({n: v for n, v in self.last_train.items() if n.startswith('train.')})
    index = math.ceil(step / self.d['eval_every']) - 1      # Keras' 0-based epoch
    stop = False
    if self.early is not None:
      decision = self.early.on_evaluation(index, step, logs)
      if decision['snapshot']:
        self.best_state = _copy_state(self.state)
      stop = decision['stop']
    if 'reduce_lr' in self.callbacks:
      if 'learning_rate' not in self.last_train:
        raise UserError(f'callbacks.reduce_lr: task={self.config.task!r} reports no '
                        'learning_rate')
      now = self.last_train['learning_rate']
      new_lr = self.callbacks['reduce_lr'].on_evaluation(index, step, logs, now)
      if new_lr is not None:
        scale = float(jax.device_get(optimizers.lr_scale(self.state)).ravel()[0])
        self.state = optimizers.with_hyperparameter(self.state, 'lr_scale',
                                                    scale * new_lr / now)
        if self.main:
          self.progress.write(f'step {step}: ReduceLROnPlateau reduced the learning rate to '
                              f'{new_lr:.3g}')
    return stop

  def artifacts(self, step) -> None:
    """The task's pictures and samples of this evaluation, written (the main process)."""
    jax.block_until_ready(self.state)  # (the pictures need it: the chunk's time is not theirs)
    start = time.perf_counter()
    produced = self.hook.artifacts(self.task, self.state, step)
    if self.main:
      writers.write_artifacts(self.workdir, step, produced)
    self.timing['eval_s'] += time.perf_counter() - start

  def close(self) -> None:
    for closable in (self.progress, self.writer, self.ckpt):
      if closable is not None:
        closable.close()


def _train_and_evaluate(config, workdir, arrays, devices, start_over, run_start, lock):
  """The run's phases: open it (set up, restore, or find it finished), write its files, train
  in chunks, finish (best weights, final evaluations, results)."""
  run = _open_run(config, workdir, arrays, devices, start_over, run_start, lock)
  try:
    finished = _restore(run)
    if finished is not None:
      return finished, run.state, run.s
    if run.main:
      _write_run_files(run)
    _start_loop(run)
    _train_chunks(run)
    return _finish(run), run.state, run.s
  finally:
    run.close()


def _open_run(config, workdir, arrays, devices, start_over, run_start, lock) -> _Run:
  """Set up (bad input fails here, before anything is written), check the monitors and
  callbacks against the task, prepare the workdir, open its checkpoints."""
  workdirs.check_config(workdir, config, start_over)
  set_compilation_cache(config.compilation_cache_dir)
  s = setup(config, arrays, devices)
  _check_monitors(config, set(s.feed.splits), s.task, s.state, s.example,
                  s.hook.size is not None)
  callbacks = callbacks_lib.from_config(config.callbacks, constant_rate=(
      config.optimizer.schedule == 'constant' and not config.optimizer.warmup_steps))
  if 'reduce_lr' in callbacks and optimizers.lr_scale(s.state) is None:
    raise UserError(f'callbacks.reduce_lr: the state of task={config.task!r} holds no '
                    'learning-rate scale (library.optimizers.make_optimizer adds one)')
  workdirs.prepare(workdir, start_over)
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, 'checkpoints'), config.checkpoint.keep,
                                  config.checkpoint.best_metric, config.checkpoint.best_mode,
                                  async_save=config.checkpoint.async_save)
  early = callbacks.get('early_stopping')
  # Members keeping each one's best evaluation (members.keep_best) hold a stacked best state.
  keeps_best = (early is not None and early.restore_best_weights) or s.hook.keeps_best
  return _Run(config, workdir, s, ckpt, callbacks, keeps_best, lock, run_start, state=s.state)


def _restore(run: _Run) -> dict | None:
  """The latest readable checkpoint, if any: the state (and best state), the callbacks'
  counters, the hook's state (members' history). A run found finished returns its results.json
  as it was (completing pictures a kill left unwritten); else None."""
  restored = run.ckpt.restore(checkpoints.abstract(run.state), with_best_state=run.keeps_best,
                              members=run.hook.size)
  if restored is not None:
    run.state, meta, run.best_state = restored
    for name, cb in run.callbacks.items():
      if name in (meta.get('callbacks') or {}):
        cb.load(meta['callbacks'][name])
    run.hook.load(meta)
    run.saved_running = meta.get('train_running')
    if run.main:
      print(f'resuming from the checkpoint at step {meta["step"]} in {run.workdir}', flush=True)
  run.start_step = run.step = int(np.ravel(jax.device_get(run.state.step)).max())
  run.stopped_early = run.early is not None and run.early.stopped_step is not None
  results_path = os.path.join(run.workdir, 'results.json')
  if restored is None or not (run.start_step >= run.d['total'] or run.stopped_early) or (
      not os.path.exists(results_path)):
    return None
  with open(results_path) as f:
    results = json.load(f)
  if run.main:
    print(f'{run.workdir} holds this run finished at step {run.start_step}: nothing to train, '
          'results.json is as it was (--start_over trains it again)', flush=True)
    # Killed after results.json, before its pictures: they are completed from the records.
    _write_finish_files(run.workdir, run.hook, only_missing=True)
  if run.keeps_best and run.best_state is not None:
    run.state = run.best_state
  return results


def _write_run_files(run: _Run) -> None:
  """config.json, the data's spec and fitted preprocessing, summary.txt; the summary and the
  run's size printed."""
  workdir, datasets, hook = run.workdir, run.s.datasets, run.hook
  writers.write_json_atomic(os.path.join(workdir, 'config.json'),
                            json.loads(config_lib.to_json(run.config)))
  if datasets is not None and hook.size is None:    # (members: member 0's view of the data)
    writers.write_json_atomic(os.path.join(workdir, 'data_spec.json'), {
        'input_shape': datasets.raw_input_shape, 'input_range': datasets.raw_input_range,
        'input_profile': datasets.raw_input_profile,
        'splits': {k: datasets.size(k) for k in datasets.splits}})
    if datasets.stats is not None:
      np.savez(os.path.join(workdir, 'preprocessing.npz'), **datasets.stats)
  if datasets is not None and datasets.preprocessing is not None:   # members: one each
    writers.write_json_atomic(os.path.join(workdir, 'preprocessing.json'),
                              datasets.preprocessing)
  task = run.task
  summary = task.summary(run.s.example) if task.summary is not None else ''
  with open(os.path.join(workdir, 'summary.txt'), 'w') as f:
    f.write(summary)
  # A long table (hundreds of embeddings, a deep base) is summed up a line per layer kind.
  shown = summary if summary.count('\n') <= SUMMARY_LINES else layer_kinds(
      task.params(run.state), os.path.join(workdir, 'summary.txt'), hook.padded)
  print(shown, flush=True)
  num_params = sum(x.size for x in jax.tree.leaves(task.params(run.state))) // hook.padded
  spe, mesh = run.d['steps_per_epoch'], run.s.mesh
  where, on = hook.describe(spe), ''
  if where is None and datasets is not None:
    where = f'{datasets.size("train"):,} training examples, {spe} steps per epoch, '
    on = '; data on ' + ('device' if run.s.on_device else 'host')
  elif where is None:
    where = 'no dataset, '
  print(f'{num_params:,} parameters; {where}{run.d["total"]} steps; {mesh.size} '
        f'{_backend(mesh)} device(s){on}', flush=True)


def _start_loop(run: _Run) -> None:
  """The loop's steps per dispatch, its writer, running means and progress bar."""
  config = run.config
  run.k = run.hook.steps_per_dispatch(config.steps_per_dispatch[_backend(run.s.mesh)],
                                      config.batch_size)
  run.writer = writers.MetricWriter(run.workdir, enabled=run.main)
  run.running = _TrainMetrics(run.task.reducers)
  run.running.load(run.saved_running)
  run.progress = tqdm.tqdm(total=run.d['total'], initial=run.start_step, unit='step',
                           dynamic_ncols=True, disable=not (run.main and config.progress_bar),
                           mininterval=0.5)
  saved = run.ckpt.all_steps()
  run.last_good = saved[-1] if saved else None


def _train_chunks(run: _Run) -> None:
  """Chunks of K steps to the end (or early stopping), each chunk's metrics read after the
  next one is dispatched; at each evaluation the validation, callbacks and artifacts; at each
  checkpoint a save; SIGTERM/SIGINT save and raise Interrupted."""
  d, feed, timing = run.d, run.feed, run.timing
  has_validation = 'validation' in feed.splits and run.task.eval_step is not None
  timing['loop_start'] = time.perf_counter()
  with _SignalFlag() as stop:
    while run.step < d['total'] and not run.stopped_early:
      start, end = run.step, _chunk_end(run.step, run.k, d)
      run.state, metrics = feed.chunk(run.state, *feed.args(start, end))
      run.read_all()     # the previous chunk's metrics and validation, while this one runs
      run.pending, run.step = (start, metrics), end
      stop.poll()
      if timing['first_chunk_s'] is None:
        jax.block_until_ready(metrics)
        timing['first_done'] = time.perf_counter()
        timing['first_chunk_s'] = timing['first_done'] - timing['loop_start']
        timing['first_steps'] = end - start
      at_eval = end % d['eval_every'] == 0 or end == d['total']
      at_ckpt = end % d['ckpt_every'] == 0 or end == d['total']
      if at_eval and has_validation:
        eval_start = time.perf_counter()
        run.pending_val = (end, feed.evaluate_sums(run.state, 'validation'))
        timing['eval_s'] += time.perf_counter() - eval_start
      # Saved states must have finite losses, and callbacks decide on this evaluation: then
      # the metrics are read now; otherwise a chunk later.
      if (at_ckpt or stop.signum is not None or end == d['total'] or
          (at_eval and (run.callbacks or run.hook.keeps_best))):
        val = run.read_all()
        if at_eval:
          run.at_evaluation(end, val)
      if at_eval and run.task.artifacts is not None:
        run.artifacts(end)
      if at_ckpt or stop.signum is not None or run.stopped_early:
        run.save(end)
      if stop.signum is not None:
        raise Interrupted(stop.signum, end)
    run.read_all()
  jax.block_until_ready(run.state)
  timing['loop_end'] = time.perf_counter()
  run.progress.close()  # before the test evaluation, so its line is complete


def _finish(run: _Run) -> dict:
  """The best weights if kept, the final evaluations, results.json and the pictures."""
  weights_step = _best_weights(run)
  results = _results(run, weights_step)
  results.update(_final_evaluations(run, weights_step))
  run.hook.results(results)
  # From entering train_and_evaluate to here: data, compilation, training and evaluation.
  results['run_seconds'] = time.perf_counter() - run.run_start
  run.ckpt.wait()     # results.json is written once the final checkpoint is complete
  if run.main:
    run.lock.check()
    _write_finish_files(run.workdir, run.hook)
    # Last: a run with results.json is finished (a rerun trains nothing), so everything else
    # of the finish is on disk before it.
    writers.write_json_atomic(os.path.join(run.workdir, 'results.json'), results)
  return results


def _best_weights(run: _Run) -> int | None:
  """Goes back to the kept best state, if any: the step its weights are from (None: each
  member's own best)."""
  if run.hook.keeps_best and run.best_state is not None:   # the hook's (each member's own)
    run.state = run.best_state
    if run.main:
      print(run.hook.best_line(), flush=True)
    return None
  if run.keeps_best and run.best_state is not None:    # Keras restores them at fit's end
    run.state = run.best_state
    if run.main:
      print(f'restoring the best weights, of step {run.early.best_step} '
            f'({run.early.monitor} = {run.early.best:.6g})', flush=True)
    return run.early.best_step
  return run.step


def _results(run: _Run, weights_step: int | None) -> dict:
  """results.json's account of the run: its length, why it stopped, its speed, its hardware."""
  config, mesh, step, timing = run.config, run.s.mesh, run.step, run.timing
  train_seconds = timing['loop_end'] - timing['loop_start']
  results = {'steps': int(step), 'epochs': run.epoch_of(step), 'train_seconds': train_seconds,
             # data read and preprocessed, model built and placed: all before the first step
             'setup_seconds': timing['loop_start'] - run.run_start,
             'devices': mesh.size, 'backend': _backend(mesh),
             'device_kind': mesh.devices.flat[0].device_kind, 'processes': jax.process_count(),
             'batch_size': config.batch_size, 'steps_per_dispatch': run.k,
             'num_params': int(sum(x.size for x in jax.tree.leaves(run.task.params(run.state)))),
             'resumed_from_step': run.start_step, 'jax_version': jax.__version__,
             'stopped': {'reason': 'early_stopping' if run.stopped_early else 'completed',
                         'step': int(step), 'epoch': run.epoch_of(step)},
             # None: each member's own best step (members.keep_best; its rows' best_step)
             'weights_from_step': int(weights_step) if weights_step is not None else None}
  if run.early is not None:
    results['stopped'].update(monitor=run.early.monitor, best=run.early.best,
                              best_step=run.early.best_step)
  if 'reduce_lr' in run.callbacks:
    results['learning_rate_reductions'] = [
        {'step': st, 'learning_rate': lr} for st, lr in run.callbacks['reduce_lr'].reductions]
  if timing['first_chunk_s'] is not None:
    results['first_step_seconds'] = timing['first_chunk_s']
    steady_steps = step - run.start_step - timing['first_steps']
    steady_s = (timing['loop_end'] - timing['first_done'] - timing['eval_s'] -
                timing['ckpt_s'])
    if steady_steps > 0 and steady_s > 0 and run.s.datasets is not None:
      # Training steps only: compilation, evaluation (with its pictures) and checkpoint time
      # excluded.
      results['examples_per_second'] = steady_steps * config.batch_size / steady_s
    elif steady_steps > 0 and steady_s > 0:
      results['steps_per_second'] = steady_steps / steady_s
  return results


def _final_evaluations(run: _Run, weights_step: int | None) -> dict:
  """The validation of the weights kept (the last evaluation's, if those are its weights) and
  the test split's, with the dataset's reference values; the test logged."""
  feed, out = run.feed, {}
  if 'validation' in feed.splits and run.task.eval_step is not None:
    if run.final_val and weights_step == run.step and not run.hook.wants_validation():
      out['validation'] = run.final_val
    else:
      values = feed.evaluate(run.state, 'validation')
      run.hook.evaluated('validation', values)
      out['validation'] = _mean_over_members(values)
  if 'test' in feed.splits and run.task.eval_step is not None:
    values = feed.evaluate(run.state, 'test')
    run.hook.evaluated('test', values)
    out['test'] = _mean_over_members(values)
  reference = run.s.datasets.reference if run.s.datasets is not None else {}
  for split, values in reference.items():
    if split in out:
      out[split].update(values)
  if 'test' in out:
    at = weights_step if weights_step is not None else run.step
    run.writer.write(at, 'test', out['test'], run.epoch_of(at))
  return out
