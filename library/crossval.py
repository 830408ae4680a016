"""Every fold of a validation scheme, or several seeds, trained as ONE jit-compiled program.

  python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded --workdir=W

Keras trains k folds one after another, one step per dispatch. Here the training state gets a
leading fold axis (jax.vmap over the task's own init and train_step), epochs are a lax.scan
of steps and the whole run a lax.scan of epochs with each fold's validation evaluated on device
at every epoch's end; the fold axis is sharded over the devices. One compilation, one dispatch.

Exactly what each fold sees, so that fold f here equals training it alone (tested): its own
training indices, batched by `TrainBatches` with seed `config.seed + f` (the seed also of its
initialization), standardization fitted on its own training rows (on the fly, on device), and
its own validation rows. Folds of unequal size (stratified, bootstrap) are padded: every epoch
has the steps of the largest fold, and a fold past its own last batch of the epoch is masked
(its state is left untouched, step counter included); short validation sets are padded with
zero-weight examples. With several devices the fold count is padded to a multiple of the
devices with masked copies.

Schemes (library/data/splits.py): kfold, stratified_kfold, loo, bootstrap (out-of-bag
validation), seeds (k seeds on the whole training split; validation and test from the data
config). A test split, if the config carves one, is evaluated by every fold's final model.
"""
import copy
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from library import (config as config_lib, parallel, plots, steps, trace_cache,
                     train as train_lib, writers)
from library.data import pipeline, preprocessing, splits as splits_lib
from library.errors import TrainingDiverged, UserError

# Indices per dispatch are bounded (E x steps x folds x batch int32s), so that leave-one-out on
# thousands of rows does not hold every epoch's indices at once.
_MAX_INDICES_PER_DISPATCH = 2**24


def _check(config) -> int:
  config_lib.validate(config)
  if not config.crossval.scheme:
    raise UserError('crossval.scheme is empty: set one of '
                    f'{", ".join(splits_lib.SCHEMES)} (or train one model with scripts.train)')
  if config.data.window.lookback:
    raise UserError('cross-validation of timeseries windows is not supported (folds would '
                    'mix past and future rows); train with scripts.train')
  if config.crossval.scheme not in splits_lib.SCHEMES:
    raise UserError(f'crossval.scheme={config.crossval.scheme!r} is not one of '
                    f'{", ".join(splits_lib.SCHEMES)}')
  if config.num_train_steps is not None or config.num_epochs is None or not float(
      config.num_epochs).is_integer():
    raise UserError('cross-validation trains whole epochs: set num_epochs to a whole number and '
                    f'leave num_train_steps unset (got num_epochs={config.num_epochs}, '
                    f'num_train_steps={config.num_train_steps})')
  return int(config.num_epochs)


def _mesh(num_folds: int, devices) -> Mesh:
  """The devices the folds are spread over.

  On one host, as few devices as give the same number of folds per device (10 folds on 8
  devices: 5 devices with 2 folds each, rather than 8 with 6 padded folds). On several hosts,
  every device (each host must take part).
  """
  devices = list(devices) if devices is not None else jax.devices()
  if jax.process_count() == 1:
    per_device = math.ceil(num_folds / len(devices))
    devices = devices[:math.ceil(num_folds / per_device)]
  return Mesh(np.array(devices), ('data',))


class _Layout:
  """Where each fold's examples are: one array holds pool, validation and test splits."""

  def __init__(self, datasets, folds, scheme):
    pool = datasets.splits['train']
    parts, self.offset = [], {}
    start = 0
    for name in ('train', 'validation', 'test'):
      if name in datasets.splits:
        self.offset[name] = start
        parts.append(datasets.splits[name])
        start += datasets.size(name)
    self.data = {key: np.concatenate([p[key] for p in parts]) for key in ('inputs', 'labels')}
    self.pool_inputs = pool['inputs']
    self.train = [np.asarray(tr, np.int64) for tr, _ in folds]
    if scheme == 'seeds':
      n_val = datasets.size('validation') if 'validation' in datasets.splits else 0
      self.val = [self.offset.get('validation', 0) + np.arange(n_val) for _ in folds]
    else:
      self.val = [np.asarray(va, np.int64) for _, va in folds]
    self.test = (self.offset['test'] + np.arange(datasets.size('test'))
                 if 'test' in datasets.splits else None)


def _padded_rows(index_lists, num_folds, batch):
  """(num_batches, folds, batch) indices and weights covering each fold's list once.

  No batches at all (shape (0, folds, 1)) when every list is empty.
  """
  longest = max(len(x) for x in index_lists)
  if not longest:
    return np.zeros((0, num_folds, 1), np.int32), np.zeros((0, num_folds, 1), np.float32)
  batch = min(batch, longest)
  num_batches = math.ceil(longest / batch)
  idx = np.zeros((num_folds, num_batches * batch), np.int32)
  weights = np.zeros((num_folds, num_batches * batch), np.float32)
  for f, rows in enumerate(index_lists):
    idx[f, :len(rows)] = rows
    weights[f, :len(rows)] = 1.0
  shape = (num_folds, num_batches, batch)
  return idx.reshape(shape).transpose(1, 0, 2), weights.reshape(shape).transpose(1, 0, 2)


def _masked(active_F, new, old):
  def pick(n, o):
    return jnp.where(active_F.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
  return jax.tree.map(pick, new, old)


def _make_program(task, standardize: bool, kept: tuple[str, ...], masked: bool):
  """(state, data, stats, idx, weights, active, val_idx, val_weights) -> (state, history).

  Only the `kept` training metrics leave the program, so XLA drops the others' computation
  (gradient and parameter norms cost as much as a small model's step).
  """

  def fold_batch(data, stats_f, idx_B, weights_B):
    batch = {k: v[idx_B] for k, v in data.items()}
    if standardize:
      batch['inputs'] = (batch['inputs'] - stats_f['mean'][None]) / stats_f['std'][None]
    batch['weights'] = weights_B
    return batch

  def train_step(state, data, stats, idx_FxB, weights_FxB, active_F):
    def one(state_f, stats_f, idx_B, weights_B):
      return task.train_step(state_f, fold_batch(data, stats_f, idx_B, weights_B))
    new, metrics = jax.vmap(one)(state, stats, idx_FxB, weights_FxB)
    return (_masked(active_F, new, state) if masked else new), metrics

  def evaluate(state, data, stats, idx_NxFxB, weights_NxFxB):
    def one(state_f, stats_f, idx_B, weights_B):
      return task.eval_step(state_f, fold_batch(data, stats_f, idx_B, weights_B))

    def body(total, xs):
      sums = jax.vmap(one)(state, stats, *xs)
      return jax.tree.map(jnp.add, total, sums), None

    zeros = jax.eval_shape(lambda: jax.vmap(one)(state, stats, idx_NxFxB[0], weights_NxFxB[0]))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zeros)
    total, _ = jax.lax.scan(body, zeros, (idx_NxFxB, weights_NxFxB))
    count = jnp.maximum(total.pop('count'), 1.0)
    return {name: value / count for name, value in total.items()}

  def program(state, data, stats, idx, weights, active, val_idx, val_weights):
    def epoch(state, xs):
      idx_e, weights_e, active_e = xs

      def step(carry, xs):
        state, sums, counts = carry
        state, metrics = train_step(state, data, stats, *xs)
        count = metrics['count'] * xs[2]
        sums = {k: sums[k] + metrics[k] * count for k in kept}
        return (state, sums, counts + count), None

      zeros = jnp.zeros(active_e.shape[1:], jnp.float32)
      (state, sums, counts), _ = jax.lax.scan(
          step, (state, {k: zeros for k in kept}, zeros), (idx_e, weights_e, active_e))
      total = jnp.maximum(counts, 1.0)
      out = {'train': {k: v / total for k, v in sums.items()}}
      if val_idx.shape[0]:
        out['validation'] = evaluate(state, data, stats, val_idx, val_weights)
      return state, out

    return jax.lax.scan(epoch, state, (idx, weights, active))

  return program, evaluate


def _fold_arrays(batches, train_rows, epochs, steps, num_folds_padded):
  """(epochs, steps, folds, batch) indices/weights and (epochs, steps, folds) active flags."""
  batch = batches[0].batch_size
  idx = np.zeros((len(epochs), steps, num_folds_padded, batch), np.int32)
  weights = np.zeros_like(idx, dtype=np.float32)
  active = np.zeros((len(epochs), steps, num_folds_padded), bool)
  for f, (b, rows) in enumerate(zip(batches, train_rows)):
    for i, e in enumerate(epochs):
      local, w = b.epoch(e)
      idx[i, :len(local), f] = rows[local]
      weights[i, :len(local), f] = w
      active[i, :len(local), f] = True
  return idx, weights, active


def run_crossval(config, workdir: str, *, arrays=None, devices=None,
                 start_over: bool = False) -> dict:
  """Trains every fold of config.crossval in one program; writes and returns results.json."""
  num_epochs = _check(config)
  main = parallel.is_main_process()
  results_path = os.path.join(workdir, 'results.json')
  if os.path.exists(results_path) and not start_over:
    raise UserError(f'{workdir} already holds a finished run (results.json); use another '
                    '--workdir or rerun with --start_over to move it aside')
  train_lib.set_compilation_cache(config.compilation_cache_dir)

  # Data without standardization: each fold fits its own statistics below.
  plain = copy.deepcopy(config)
  plain.unlock()
  plain.data.standardize = False
  module = config_lib.task_module(config.task)
  if not hasattr(module, 'load_data'):
    raise UserError(f'task={config.task!r} has no dataset to cross-validate')
  datasets = module.load_data(plain, arrays)
  if datasets.param_init or config.model_init.path:
    raise UserError('cross-validation does not take data.embedding_file or model_init yet: '
                    'train with scripts.train')
  pool = datasets.splits['train']
  scheme, seed = config.crossval.scheme, config.seed
  if scheme == 'seeds' and 'validation' not in datasets.splits and 'test' not in datasets.splits:
    raise UserError('crossval.scheme=seeds needs a validation or test split to compare seeds '
                    'on: set data.validation or data.test')
  folds = splits_lib.fold_indices(scheme, len(pool['labels']), config.crossval.k, seed,
                                  config.crossval.shuffle, pool['labels'])
  layout = _Layout(datasets, folds, scheme)
  num_folds = len(folds)
  mesh = _mesh(num_folds, devices)
  padded = math.ceil(num_folds / mesh.size) * mesh.size
  fold_sharding = NamedSharding(mesh, P('data'))

  batches = [pipeline.TrainBatches(len(rows), config.batch_size, seed + f)
             for f, rows in enumerate(layout.train)]
  epoch_steps = max(b.steps_per_epoch for b in batches)
  task = module.make_task(config, datasets, num_epochs * epoch_steps)
  standardize = bool(config.data.standardize)
  if standardize:
    fitted = [preprocessing.fit_standardizer(layout.pool_inputs[rows]) for rows in layout.train]
    stats = {k: np.stack([s[k] for s in fitted] + [fitted[0][k]] * (padded - num_folds))
             for k in ('mean', 'std')}
  else:
    stats = {'none': np.zeros((padded,), np.float32)}
  rows_padded = layout.train + [layout.train[0]] * (padded - num_folds)
  val_idx, val_weights = _padded_rows(layout.val + [np.zeros(0, np.int64)] * (
      padded - num_folds), padded, config.eval_batch_size)

  _check_shapes(layout, config)
  if start_over:
    train_lib.prepare_workdir(workdir, True)
  os.makedirs(workdir, exist_ok=True)

  example = {k: v[:config.batch_size] for k, v in pool.items()}
  if standardize:
    example['inputs'] = (example['inputs'] - stats['mean'][0]) / stats['std'][0]
  example['weights'] = np.ones(len(example['labels']), np.float32)
  if main:
    writers.write_json_atomic(os.path.join(workdir, 'config.json'),
                              json.loads(config_lib.to_json(config)))
    with open(os.path.join(workdir, 'summary.txt'), 'w') as f:
      f.write(task.summary(example))

  # Folds of equal size with no padding never skip a step: no masking to compile in.
  masked = padded != num_folds or len({b.steps_per_epoch for b in batches}) > 1
  metric_names = tuple(config.task_config.metrics)
  program, evaluate = _make_program(task, standardize, ('loss', *metric_names), masked)
  replicated = parallel.replicated(mesh)
  on = lambda axis: NamedSharding(mesh, P(*([None] * axis), 'data'))  # noqa: E731
  per_dispatch = max(1, min(num_epochs, _MAX_INDICES_PER_DISPATCH // max(
      1, epoch_steps * padded * config.batch_size)))
  dispatches = [list(range(first, min(num_epochs, first + per_dispatch)))
                for first in range(0, num_epochs, per_dispatch)]

  def fold_arrays(epochs):
    idx, weights, active = _fold_arrays(batches, rows_padded, epochs, epoch_steps, padded)
    active[:, :, num_folds:] = False
    return parallel.put(idx, on(2)), parallel.put(weights, on(2)), parallel.put(active, on(2))

  start = time.perf_counter()
  seeds = parallel.put(np.array([seed + f for f in range(num_folds)] +
                                [seed] * (padded - num_folds), np.int32), fold_sharding)
  context = f'{config_lib.trace_json(config)}|masked={masked}|steps={num_epochs * epoch_steps}'

  def init_folds(seeds, example):
    state = jax.vmap(lambda s: task.init(jax.random.PRNGKey(s), example))(seeds)
    return jax.lax.with_sharding_constraint(state, fold_sharding)

  data = parallel.put_tree(layout.data, replicated)
  stats_dev = parallel.put_tree(stats, fold_sharding)
  val_args = (parallel.put(val_idx, on(1)), parallel.put(val_weights, on(1)))
  phases = {}
  t = time.perf_counter()
  first_arrays = fold_arrays(dispatches[0])
  phases['indices'] = time.perf_counter() - t
  t = time.perf_counter()
  traces = trace_cache.TraceCache(config.compilation_cache_dir, context)
  init = traces.compile(init_folds, (seeds, example), name='crossval.init',
                        compiler_options=steps.INIT_COMPILER_OPTIONS)
  # The same sharding object whichever way init was compiled: it is part of the program's key.
  state = jax.device_put(init(seeds, example), fold_sharding)
  phases['init'] = time.perf_counter() - t
  t = time.perf_counter()
  executable = traces.compile(program, (state, data, stats_dev, *first_arrays, *val_args),
                              name='crossval.program', donate_argnums=(0,))
  compile_seconds = time.perf_counter() - t
  jitted_program = None

  history = {'train': {}, 'validation': {}}
  for i, epochs in enumerate(dispatches):
    if i:
      t = time.perf_counter()
      arrays = fold_arrays(epochs)
      phases['indices'] += time.perf_counter() - t
      if jitted_program is None:    # the last dispatch may have fewer epochs: other shapes
        jitted_program = jax.jit(program, donate_argnums=(0,))
      executable = jitted_program
    else:
      arrays = first_arrays
    args = (state, data, stats_dev, *arrays, *val_args)
    t = time.perf_counter()
    state, out = executable(*args)
    traces.save_in_background()
    out = jax.device_get(out)
    phases['run'] = phases.get('run', 0.0) + time.perf_counter() - t
    for split, metrics in out.items():
      for name, values in metrics.items():
        history[split].setdefault(name, []).extend(np.asarray(values)[:, :num_folds].tolist())
    _check_finite(history['train']['loss'])
  jax.block_until_ready(state)
  train_seconds = time.perf_counter() - start
  t = time.perf_counter()
  traces.finish()
  phases['trace_save_wait'] = time.perf_counter() - t

  test = None
  if layout.test is not None:
    test_idx, test_weights = _padded_rows([layout.test] * padded, padded, config.eval_batch_size)
    test = jax.device_get(jax.jit(evaluate)(state, data, stats_dev, parallel.put(test_idx, on(1)),
                                            parallel.put(test_weights, on(1))))
  results = _results(config, history, test, layout, num_folds, num_epochs, mesh,
                     train_seconds, compile_seconds)
  results['seconds'] = {k: round(v, 4) for k, v in phases.items()}
  results['trace_cache'] = traces.status
  results['num_params'] = int(sum(x.size // x.shape[0]
                                  for x in jax.tree.leaves(task.params(state))))
  if main:
    writers.write_json_atomic(os.path.join(workdir, 'history.json'), {
        'epochs': list(range(1, num_epochs + 1)), **history})
    _write_metrics(workdir, history)
    plots.plot_folds(history, os.path.join(workdir, 'curves.png'))
    if history['validation']:
      plots.plot_mean_validation(history, metric_names[0] if metric_names else 'loss',
                                 os.path.join(workdir, 'mean_validation.png'))
    writers.write_json_atomic(results_path, results)
  return results


def _check_shapes(layout, config) -> None:
  if config.batch_size < 1 or not layout.train:
    raise UserError('no folds to train')
  if min(len(rows) for rows in layout.train) == 0:
    raise UserError('a fold has no training examples')


def _check_finite(losses) -> None:
  losses = np.asarray(losses)
  bad = np.argwhere(~np.isfinite(losses))
  if bad.size:
    epoch, fold = bad[0]
    raise TrainingDiverged(f'fold {fold}: the training loss is {losses[epoch, fold]} in epoch '
                           f'{epoch + 1}; stopped')


def _results(config, history, test, layout, num_folds, num_epochs, mesh, train_seconds,
             compile_seconds) -> dict:
  folds = []
  for f in range(num_folds):
    row = {'fold': f, 'seed': config.seed + f, 'train_size': int(len(layout.train[f])),
           'val_size': int(len(layout.val[f]))}
    for split, prefix in (('train', 'train_'), ('validation', 'val_')):
      for name in ('loss', *config.task_config.metrics):
        if name in history[split]:
          row[prefix + name] = float(history[split][name][-1][f])
    if history['validation']:
      val_loss = np.asarray(history['validation']['loss'])[:, f]
      row['best_epoch'] = int(np.argmin(val_loss)) + 1
    if test is not None:
      for name in ('loss', *config.task_config.metrics):
        row['test_' + name] = float(np.asarray(test[name])[f])
    folds.append(row)
  names = [k for k in folds[0] if k.startswith(('train_', 'val_', 'test_'))
           and not k.endswith('_size')]
  mean = {k: float(np.mean([r[k] for r in folds])) for k in names}
  std = {k: float(np.std([r[k] for r in folds])) for k in names}
  out = {'scheme': config.crossval.scheme, 'num_folds': num_folds, 'epochs': num_epochs,
         'batch_size': config.batch_size, 'folds': folds, 'mean': mean, 'std': std,
         'train_seconds': train_seconds, 'compile_seconds': compile_seconds,
         'devices': mesh.size, 'backend': mesh.devices.flat[0].platform,
         'device_kind': mesh.devices.flat[0].device_kind, 'jax_version': jax.__version__}
  if history['validation']:
    # Where the fold-averaged validation curves are best: the epoch count to train the final
    # model for (the book's "improvement stops near epoch 70").
    out['best_epoch_of_mean'] = {
        name: int((np.argmax if name == 'accuracy' else np.argmin)(
            np.mean(history['validation'][name], axis=1))) + 1
        for name in ('loss', *config.task_config.metrics)}
  return out


def _write_metrics(workdir: str, history) -> None:
  """Fold means per epoch, to metrics.jsonl and TensorBoard like a single run."""
  writer = writers.MetricWriter(workdir, enabled=True)
  try:
    for split, metrics in history.items():
      for e in range(len(next(iter(metrics.values()), []))):
        writer.write(e + 1, split, {n: float(np.mean(v[e])) for n, v in metrics.items()},
                     float(e + 1))
  finally:
    writer.close()
