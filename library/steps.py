"""The compiled functions of the loop, and the dataset placed on the device mesh.

`train_chunk` runs K steps in one dispatch (lax.scan over the chunk; K=1 is a plain step, as
scanning a convnet's step is slower on CPU: see scripts/benchmark.py). Batches are gathered on
device from the dataset held there, or passed in already gathered when it stays on the host.
"""
import functools
import gc
from typing import Any, Protocol

import jax
import numpy as np
from jax.sharding import Mesh

from library import evaluators, parallel
from library.data import timeseries
from library.data.pipeline import Datasets, eval_batches, split_size
from library.data.preprocessing import scale_inputs
from library.task import Task


def gc_paused(fn):
  """fn, with Python's cyclic garbage collector paused while it runs.

  The first call of a jitted function traces, lowers and compiles it. Tracing allocates many
  short-lived objects, and the collections they trigger walk every object of the process
  (~210,000 once flax, optax and orbax are loaded). For the 6.2 LSTM's training step, the
  trace took 0.53 s with the collector and 0.21 s without (medians of 6 fresh processes each,
  alternating, 2-core CPU; JAX's jaxpr_trace_duration timer). Lowering and XLA's compile did
  not change. `python -m scripts.benchmark` reports these phases. Later calls only dispatch,
  and the pause costs them two C calls. Cyclic garbage made meanwhile is collected after the
  call, as usual.
  """

  @functools.wraps(fn)
  def call(*args, **kwargs):
    if not gc.isenabled():
      return fn(*args, **kwargs)
    gc.disable()
    try:
      return fn(*args, **kwargs)
    finally:
      gc.enable()

  return call


class MeshData:
  """The splits of a dataset, either replicated on every device or kept in host memory.

  Kept in host memory, each process reads only the rows of its own devices' shards of each
  batch (the per-host data of several hosts: `put_rows`); the batch indices are the same
  function of (seed, step) on every process, so the global batches are those of one host.
  """

  def __init__(self, datasets: Datasets, mesh: Mesh, on_device: bool):
    self.mesh = mesh
    self.on_device = on_device
    self.host = datasets.splits
    self.input_scale = datasets.input_scale     # byte inputs: scaled in each batch
    self.device = ({name: parallel.put_tree(arrays, parallel.replicated(mesh))
                    for name, arrays in datasets.splits.items()} if on_device else None)

  def args(self, split: str, idx: np.ndarray, weights: np.ndarray):
    """(data, indices, weights) for a compiled function; batch axis = idx.ndim - 1."""
    sharding = parallel.sharded_on_batch(self.mesh, idx.ndim - 1)
    idx_on_mesh = parallel.put(idx, sharding)
    weights_on_mesh = parallel.put(weights, sharding)
    if self.on_device:
      return self.device[split], idx_on_mesh, weights_on_mesh
    return put_rows(self.host[split], idx, sharding), idx_on_mesh, weights_on_mesh


def put_rows(split, idx: np.ndarray, sharding) -> dict:
  """The examples `idx` of a host split as global arrays sharded like `idx`: every device of
  this process gets the rows of its own slice of `idx`, gathered here; no process reads the
  rows of another process's devices."""
  per_device = sharding.addressable_devices_indices_map(idx.shape)
  local = {}    # a slice of idx -> its gathered rows (devices holding the same slice share them)
  for index in per_device.values():
    key = tuple((s.start, s.stop) for s in index)
    if key not in local:
      local[key] = jax.tree.flatten(timeseries.gather(split, idx[index]))
  treedef = next(iter(local.values()))[1]
  devices = list(per_device)
  keys = [tuple((s.start, s.stop) for s in per_device[dev]) for dev in devices]
  leaves = []
  for i in range(treedef.num_leaves):
    parts = jax.device_put([local[key][0][i] for key in keys], devices)
    shape = idx.shape + parts[0].shape[idx.ndim:]
    leaves.append(jax.make_array_from_single_device_arrays(shape, sharding, parts))
  return jax.tree.unflatten(treedef, leaves)


def _batch(data, idx, weights, on_device: bool, mesh: Mesh, input_scale=None):
  batch = timeseries.gather(data, idx) if on_device else dict(data)
  if input_scale is not None:
    batch['inputs'] = scale_inputs(batch['inputs'], input_scale)
  batch['weights'] = weights
  return jax.lax.with_sharding_constraint(batch, parallel.sharded_on_batch(mesh))


def _constrained(step, state_sharding):
  """train_step, its new state kept laid out as the task asked (None: as XLA propagates)."""
  if state_sharding is None:
    return step

  def constrained(state, batch):
    state, metrics = step(state, batch)
    return jax.lax.with_sharding_constraint(state, state_sharding), metrics

  return constrained


def make_train_chunk(task: Task, mesh: Mesh, on_device: bool, state_sharding=None,
                     input_scale=None):
  """jit((state, data, idx_KxB, weights_KxB) -> (state, metrics stacked over K)); donates state.
  input_scale: byte inputs' scale (Datasets.input_scale), applied to each batch."""
  train_step = _constrained(task.train_step, state_sharding)

  def train_chunk(state, data, idx, weights):
    if idx.shape[0] == 1:
      squeeze = (lambda x: x[0]) if not on_device else (lambda x: x)
      batch = _batch(jax.tree.map(squeeze, data), idx[0], weights[0], on_device, mesh,
                     input_scale)
      state, metrics = train_step(state, batch)
      return state, jax.tree.map(lambda m: m[None], metrics)

    def body(state, xs):
      data_k, idx_k, weights_k = xs
      return train_step(state, _batch(data_k, idx_k, weights_k, on_device, mesh, input_scale))

    if on_device:
      return jax.lax.scan(lambda s, xs: body(s, (data, *xs)), state, (idx, weights))
    return jax.lax.scan(body, state, (data, idx, weights))

  return gc_paused(jax.jit(train_chunk, donate_argnums=(0,)))


def make_dataless_chunk(task: Task, state_sharding=None):
  """jit((state, steps_K) -> (state, metrics stacked over K)) for a task without a dataset:
  steps_K only sets the chunk's length; the task makes its own inputs. Donates state."""
  train_step = _constrained(task.train_step, state_sharding)

  def train_chunk(state, steps_k):
    if steps_k.shape[0] == 1:
      state, metrics = train_step(state, None)
      return state, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(lambda s, _: train_step(s, None), state, steps_k)

  return gc_paused(jax.jit(train_chunk, donate_argnums=(0,)))


def with_rows(task: Task, eval_step, rows: bool):
  """eval_step(state, batch), and with `rows` the evaluators' rows of the batch beside its sums
  (evaluators.rows_of)."""
  if not rows:
    return eval_step
  return lambda state, batch: {**eval_step(state, batch),
                               evaluators.ROWS: evaluators.rows_of(task, state, batch)}


def make_eval_batch(task: Task, mesh: Mesh, on_device: bool, input_scale=None,
                    rows: bool = False):
  """jit((state, data, idx_B, weights_B) -> metric sums[, the evaluators' rows])."""
  step = with_rows(task, task.eval_step, rows)

  def eval_batch(state, data, idx, weights):
    return step(state, _batch(data, idx, weights, on_device, mesh, input_scale))

  return gc_paused(jax.jit(eval_batch))


def add_up(outputs) -> dict:
  """The sums of an evaluation's batches added up (on the device), and the evaluators' rows of
  every batch kept beside them, in order."""
  total, rows = None, []
  for out in outputs:
    out = dict(out)
    if evaluators.ROWS in out:
      rows.append(out.pop(evaluators.ROWS))
    total = out if total is None else jax.tree.map(lambda a, b: a + b, total, out)
  return {**total, evaluators.ROWS: rows} if rows else total


def evaluate_sums(state, split: str, data: MeshData, eval_fn, batch_size: int) -> dict:
  """The metric sums over one split (every example exactly once), still on the device."""
  n = split_size(data.host[split])
  return add_up(eval_fn(state, *data.args(split, idx, weights))
                for idx, weights in eval_batches(n, batch_size))


class Feed(Protocol):
  """What the loop asks of a run's data, whichever it is: one model's dataset (DataFeed), a
  task that makes its own inputs (DatalessFeed), members (members.MemberFeed)."""
  splits: Any                    # the splits it evaluates ('validation', 'test')

  def chunk(self, state, *args):
    """(state after the steps of args, their metrics), dispatched, not waited for."""

  def args(self, step: int, end: int) -> tuple:
    """The chunk's arguments for steps [step, end)."""

  def evaluate_sums(self, state, split: str):
    """The metrics' weighted sums over `split` and their 'count', dispatched."""

  def means(self, sums) -> dict:
    """The means of evaluate_sums (per member: arrays of the members' own)."""

  def evaluate(self, state, split: str) -> dict:
    """means(evaluate_sums(...)), waited for."""


def reduce_sums(total: dict, count, reducers: dict) -> dict:
  """Each metric of an evaluation's sums (without their 'count'): the task's reducer where it
  has one (AUC from the summed confusion counts), else the sum over `count` (the default
  evaluation); over any leading axes (members)."""
  return {name: reducers[name](value) if name in reducers else value / count
          for name, value in total.items()}


class Sums:
  """The reduction every feed shares, written once: an evaluation's weighted sums over its
  'count' (the default evaluation), or the task's reducer of a metric that is no mean (AUC);
  then the config's evaluators over the split's rows (library/evaluators.py). As floats, or per
  member (arrays over the first num_members)."""
  num_members: int | None = None
  reducers: dict = {}      # Task.reducers
  evaluators: dict = {}    # evaluators.specs(config)

  def means(self, total) -> dict:
    total = dict(total)
    rows = total.pop(evaluators.ROWS, None)
    total = dict(jax.device_get(total))
    if self.num_members is None:   # floats (a mean divided in float64)
      count = float(total.pop('count'))
      total = {n: v if n in self.reducers else float(v) for n, v in total.items()}
      out = {n: float(v) for n, v in reduce_sums(total, count, self.reducers).items()}
    else:
      total = {k: np.asarray(v)[:self.num_members] for k, v in total.items()}
      out = reduce_sums(total, np.maximum(total.pop('count'), 1.0), self.reducers)
    if rows:
      out.update(evaluators.evaluate(self.evaluators, rows, self.num_members))
    return out

  def evaluate(self, state, split: str) -> dict:
    """Mean metrics over one split (every example exactly once)."""
    return self.means(self.evaluate_sums(state, split))  # pylint: disable=no-member


class EvaluationHook:
  """What the loop calls beside the callbacks at each record, evaluation, checkpoint and at the
  finish. One model's hook does nothing of its own; members' (members.MemberHook) keeps their
  history, their bests and their results. The loop calls it unconditionally."""
  size: int | None = None        # models on the state's leading axis (None: one, no axis)
  padded: int = 1                # that axis' length (members padded to the devices)
  keeps_best: bool = False       # keeps a best state of its own (read at every evaluation)

  def steps_per_dispatch(self, k: int, batch_size: int) -> int:
    del batch_size
    return k

  def on_host(self, metrics: dict) -> dict:
    """A chunk's train metrics, read: the real models' only."""
    return metrics

  def record(self, step: int, split: str, values: dict) -> None:
    """A record written (values per model)."""

  def evaluated(self, split: str, values: dict) -> None:
    """A final evaluation of the weights kept."""

  def at_evaluation(self, step: int, state, best_state):
    """The best state after this validation of `state` (its values recorded)."""
    del step, state
    return best_state

  def best_line(self) -> str:
    """What is said when the best state kept becomes the final one."""
    return ''

  def meta(self) -> dict:
    """What a checkpoint keeps of the hook (JSON)."""
    return {}

  def load(self, meta: dict) -> None:
    """From a checkpoint's meta()."""

  def artifacts(self, task, state, step: int) -> dict:
    return task.artifacts(state, step)

  def describe(self, steps_per_epoch: int | None) -> str | None:
    """The run's size as its start says it; None: the dataset's."""
    del steps_per_epoch
    return None

  def wants_validation(self) -> bool:
    """Whether results need the final weights' validation evaluated in this process (not
    read back from the last evaluation before a resume)."""
    return False

  def results(self, results: dict) -> None:
    """Adds its part to results.json."""

  def files(self) -> list[str]:
    """The pictures and records write_files writes."""
    return []

  def write_files(self, workdir: str) -> None:
    """Its pictures and records, at the finish."""


class DataFeed(Sums):
  """A task with a dataset: the chunk's arguments for a range of steps, and evaluation."""

  def __init__(self, task: Task, mesh: Mesh, data: MeshData, batches, eval_batch_size: int,
               state_sharding=None, evaluator_specs=None):
    self.data, self.batches, self.eval_batch_size = data, batches, eval_batch_size
    self.splits = set(data.host)
    self.chunk = make_train_chunk(task, mesh, data.on_device, state_sharding, data.input_scale)
    self.reducers = task.reducers or {}
    self.evaluators = evaluator_specs or {}
    self.eval_fn = (make_eval_batch(task, mesh, data.on_device, data.input_scale,
                                    rows=bool(self.evaluators))
                    if task.eval_step is not None else None)

  def args(self, step: int, end: int):
    return self.data.args('train', *self.batches.indices(step, end - step))

  def evaluate_sums(self, state, split: str):
    """Dispatched, not waited for: `means` reads them (a chunk later, in the loop)."""
    return evaluate_sums(state, split, self.data, self.eval_fn, self.eval_batch_size)


class DatalessFeed(Sums):
  """A task without a dataset: the chunk only needs its length. Its evaluation, if it has one,
  is `eval_step(state, None)`: the task makes its own inputs (greedy episodes of a policy),
  and the sums it returns are the 'validation' split."""

  def __init__(self, task: Task, mesh: Mesh, state_sharding=None):
    self.chunk = make_dataless_chunk(task, state_sharding)
    self.reducers = task.reducers or {}
    self._replicated = parallel.replicated(mesh)
    self._lengths = {}     # chunk length -> its placed stand-in, made once
    self.splits = frozenset({'validation'} if task.eval_step is not None else ())
    self.eval_fn = (gc_paused(jax.jit(lambda state: task.eval_step(state, None)))
                    if task.eval_step is not None else None)

  def evaluate_sums(self, state, split: str):
    del split
    return self.eval_fn(state)

  def args(self, step: int, end: int):
    n = end - step
    if n not in self._lengths:
      self._lengths[n] = parallel.put(np.zeros(n, np.int32), self._replicated)
    return (self._lengths[n],)


# Initialization runs once, and its random number generation (threefry) is slow to compile at
# XLA's default optimization level (2.5 s for the 3.6 MLP's four folds on a 2-core CPU, 0.9 s
# without backend optimization); the values are the same bits.
INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 0}


def state_shardings(task: Task, mesh: Mesh):
  """The sharding of each leaf of the task's state: the task's layout, else replicated."""
  if task.state_sharding is None:
    return parallel.replicated(mesh)
  return task.state_sharding(mesh)


def make_init(task: Task, mesh: Mesh):
  return gc_paused(jax.jit(task.init, out_shardings=state_shardings(task, mesh),
                           compiler_options=INIT_COMPILER_OPTIONS))
