"""Members: folds, seeds and hyperparameter values as a leading axis of one run of the loop.

  python -m scripts.train --config=configs/mlp/boston_kfold.py:embedded --workdir=/tmp/kfold

`config.members` makes the state M states stacked on a leading axis: one per fold of a
validation scheme (kfold, stratified_kfold, loo, bootstrap, or k seeds), times one per value
of `members.learning_rate` when values are given (a grid: folds x values). The loop trains them
as one program: the task's own init and train_step under jax.vmap, each member gathering its
own batch from the data held once on the device. Checkpoints, resume, SIGTERM, the NaN guard
and metrics come from the loop as for any run.

What each member sees, so that member f equals training it alone (tested): its own training
rows, batched by `TrainBatches` with seed `config.seed + f` (the seed also of its
initialization and of its dropout keys), standardization fitted on its own training rows
(applied on the fly, on device), and its own validation rows. A dataset whose preprocessing
is more than a z-score (a table's medians, category codes; Datasets.refit) gives each member
its own copy of every row's inputs, fitted on that member's training rows, on a leading member
axis beside the state; the labels stay one shared copy. Members of unequal size
(stratified, bootstrap) are padded: every epoch has the steps of the largest member, and a
member past its own last batch of the epoch is masked (its state is left untouched, step
counter included). A hyperparameter value is an array of the member's state, not a constant of
the program, so every combination shares one compile (see VALUES for where each one lives).
With several devices the member axis is sharded over them, padded to a multiple of the
devices with masked copies.
"""
import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from library import callbacks, evaluators, optimizers, parallel, steps
from library.data import pipeline, preprocessing, splits as splits_lib, timeseries
from library.errors import UserError

SCHEMES = splits_lib.SCHEMES
# The schemes whose members' validation rows partition the pool (each row once).
PARTITIONS = ('kfold', 'stratified_kfold', 'loo')
# Indices per dispatch are bounded (steps x members x batch int32s), so that leave-one-out on
# thousands of rows does not hold a long chunk's indices at once.
MAX_INDICES_PER_DISPATCH = 2**24
# Health metrics: not computed for members (see MemberFeed), not part of their result rows.
_HEALTH = ('grad_norm', 'param_norm', 'learning_rate')
# Hyperparameters that members may take values of: config.members.<name> -> the leaf of the
# state that holds it (found by name anywhere in the state). The learning rate is the optimizer's
# `lr_scale` times config.optimizer.learning_rate (library/optimizers.py); the optimizer holds
# `weight_decay` when it is varied; library/supervised.py holds `dropout_rate`, `l1` and `l2`
# in its state's `hyper` when they are varied. A task without the leaf is a one-line error.
VALUES = {'learning_rate': 'lr_scale', 'weight_decay': 'weight_decay',
          'dropout_rate': 'dropout_rate', 'l1': 'l1', 'l2': 'l2'}


# The keys of this section that may differ between a run and its resume: how the members'
# steps are batched changes no value.
RESUME_SAFE = frozenset({'vectorize'})


def default_config() -> ml_collections.ConfigDict:
  """config.members."""
  # Members (library/members.py): every fold of a validation scheme (kfold, stratified_kfold,
  # loo, bootstrap, or k seeds), times every combination of the hyperparameter values given
  # (learning_rate, weight_decay, dropout_rate, l1, l2), trained as one vmapped state by the
  # loop. '' and () train one model. keep_best: each member ends with its own best evaluation
  # by checkpoint.best_metric (e.g. a DQN seed's best greedy return), not its last state.
  # vectorize: the members of a step batched ('vmap') or one after another in the same
  # program ('loop'); 'auto' loops convolutional models on one CPU device, where XLA's batched
  # (grouped) convolutions run about 2x slower than the members' own, and batches the rest
  # (book 5.1's convnet as 5 folds: 58 s against 74 s for the 5 models one after another).
  return ml_collections.ConfigDict({'scheme': '', 'k': 4, 'shuffle': False,
                                         'learning_rate': (), 'weight_decay': (),
                                         'dropout_rate': (), 'l1': (), 'l2': (),
                                         'keep_best': False, 'vectorize': 'auto'})

def varied(config) -> tuple[str, ...]:
  """The hyperparameters (names of VALUES) that the members take values of."""
  return tuple(name for name in VALUES if tuple(config.members.get(name, ())))


def enabled(config) -> bool:
  return bool(config.members.scheme or varied(config))


VECTORIZE = ('auto', 'vmap', 'loop')
# 'loop' writes each member's step into the program, up to this many members a device (a
# convolution's step in an XLA loop body runs about 4x slower on a CPU; each written copy
# adds its compilation); more members loop inside the program (jax.lax.map).
MAX_UNROLLED = 16


def over_members(vectorize: str, fn, *args):
  """fn(member's args) for every member (leading axis of each arg): batched by jax.vmap, or
  one member after another ('loop': full-speed convolutions on a CPU, where vmap's grouped
  ones are slow; written out up to MAX_UNROLLED members). 'auto' (on a CPU: MemberFeed makes
  it 'vmap' elsewhere): loop when a leaf of the stacked state has 4 or more axes (a
  convolution's kernel on the member axis)."""
  if vectorize == 'auto':
    convolutional = any(getattr(x, 'ndim', 0) >= 4 for x in jax.tree.leaves(args[0]))
    vectorize = 'loop' if convolutional else 'vmap'
  if vectorize == 'loop':
    size = jax.tree.leaves(args[0])[0].shape[0]
    if size > MAX_UNROLLED:      # (a loop in the program: compiles once, runs slower)
      return jax.lax.map(lambda a: fn(*a), args)
    outs = [fn(*jax.tree.map(lambda x, i=i: x[i], args)) for i in range(size)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
  return jax.vmap(fn)(*args)


def validate(config) -> None:
  m = config.members
  if m.scheme and m.scheme not in SCHEMES:
    raise UserError(f'members.scheme={m.scheme!r} is not one of {", ".join(SCHEMES)}')
  if m.vectorize not in VECTORIZE:
    raise UserError(f'members.vectorize={m.vectorize!r} is not one of {", ".join(VECTORIZE)}')
  for name in varied(config):
    values = tuple(m[name])
    numbers = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    if name == 'learning_rate':
      ok, allowed = numbers and min(values) > 0, '> 0'
    elif name == 'dropout_rate':
      ok, allowed = numbers and 0 <= min(values) and max(values) < 1, 'in [0, 1)'
    else:
      ok, allowed = numbers and min(values) >= 0, '>= 0'
    if not ok:
      raise UserError(f'members.{name}={values}: every value must be a finite number {allowed}')
  if m.keep_best and not enabled(config):
    raise UserError('members.keep_best is for members (members.scheme or values); a single '
                    'run keeps its best with callbacks.early_stopping.restore_best_weights')
  named = set(config.get('evaluators', {})) & (set(VALUES) | {'member', 'fold', 'seed'})
  if named and enabled(config):
    raise UserError(f'evaluators.{sorted(named)[0]}: the name of a member\'s field; give the '
                    'evaluator another name')
  if (m.scheme == 'loo' and config.checkpoint.best_metric.partition('.')[2] in
      config.get('evaluators', {})):
    raise UserError(f'checkpoint.best_metric={config.checkpoint.best_metric!r}: a member of '
                    'members.scheme=loo validates one row, which has no value of an evaluator '
                    '(its value over all the rows is results.json\'s out_of_fold)')
  if m.keep_best and not config.checkpoint.best_metric.startswith('validation.'):
    raise UserError('members.keep_best needs checkpoint.best_metric=validation.<metric> (and '
                    f'checkpoint.best_mode), not {config.checkpoint.best_metric!r}')
  if not enabled(config):
    return
  if 'data' in config and config.data.window.lookback:
    raise UserError('members of timeseries windows are not supported (folds would mix past '
                    'and future rows); train one model')
  for name in ('early_stopping', 'reduce_lr'):
    if config.callbacks[name].monitor:
      raise UserError(f'callbacks.{name} with members is not supported yet: train one model '
                      '(members.keep_best keeps each member\'s best evaluation)')
  if 'data' in config and config.data.embedding_file:
    raise UserError('members do not take data.embedding_file yet: train one model')


@dataclasses.dataclass
class Layout:
  """Where each member's examples are: one split ('all') holds pool, validation and test."""
  data: dict | None                # {'inputs', 'labels'}: pool, then validation, then test;
                                   # None for a task without a dataset (members: seeds, values)
  train_rows: list                 # per member, indices into data
  eval_rows: dict                  # split -> per member indices into data
  names: list                      # per member: {'member', 'fold', 'seed', <varied values>}
  seeds: np.ndarray                # (M,)
  values: dict                     # state leaf name (VALUES) -> (M,) float32
  stats: dict | None               # per-member standardization, leading axis M
  raw_input_shape: tuple = ()
  # Members that fitted their own preprocessing (Datasets.refit): every member's inputs of
  # every row of `data` (pytree of (M, rows, ...)), which then holds only the labels.
  # `preprocessing`, saved with the run, is one spec per member: what each fitted, or the
  # dataset's one spec that they all share (None when the dataset has none). The model
  # settings they share are model_kwargs.
  member_inputs: dict | None = None
  # Each member's own labels of every row, (M, rows), where its preprocessing also scales the
  # target (a regression's per-fold standardization): they replace `data`'s labels.
  member_labels: np.ndarray | None = None
  preprocessing: list | None = None
  model_kwargs: dict = dataclasses.field(default_factory=dict)

  @property
  def size(self) -> int:
    return len(self.names)

  def steps_per_epoch(self, batch_size: int) -> int:
    """The steps of the largest member's epoch: every member's epoch has that many (None:
    no dataset, no epochs)."""
    if self.data is None:
      return None
    return max(pipeline.steps_per_epoch(len(rows), batch_size) for rows in self.train_rows)


def _grid(config) -> tuple[tuple[str, ...], list[tuple]]:
  """(the varied names, every combination of their values, in order)."""
  names = varied(config)
  return names, list(itertools.product(*(tuple(float(v) for v in config.members[n])
                                         for n in names)))


def _values(config, names: list, varied_names) -> dict:
  values = {}
  for name in varied_names:
    base = config.optimizer.learning_rate if name == 'learning_rate' else 1.0
    values[VALUES[name]] = np.array([n[name] / base for n in names], np.float32)
  return values


def _dataless_layout(config) -> Layout:
  """A task without a dataset: its members are seeds (members.scheme=seeds, k of them) and
  hyperparameter values; each makes its own inputs from its own seed."""
  m = config.members
  if m.scheme not in ('', 'seeds'):
    raise UserError(f'members.scheme={m.scheme!r}: task={config.task!r} has no dataset to '
                    'fold; its members are seeds (members.scheme=seeds) and values')
  names_varied, grid = _grid(config)
  k = m.k if m.scheme else 1
  if k < 1:
    raise UserError(f'members.k={k} must be >= 1')
  names = [{'member': i, 'seed': config.seed + f, **dict(zip(names_varied, combo))}
           for i, (f, combo) in enumerate(itertools.product(range(k), grid))]
  return Layout(None, [], {}, names, np.array([n['seed'] for n in names], np.int32),
                _values(config, names, names_varied), None)


def layout(config, module, arrays) -> Layout:
  """Loads the data (standardization left to each member) and lays out every member."""
  import copy  # pylint: disable=import-outside-toplevel
  if not hasattr(module, 'load_data'):
    return _dataless_layout(config)
  plain = copy.deepcopy(config)
  plain.unlock()
  plain.data.standardize = False
  datasets = module.load_data(plain, arrays).as_float()   # members gather float inputs
  if datasets.param_init:
    raise UserError('members do not take initial parameter values from the data yet')
  pool = datasets.splits['train']
  if isinstance(pool['labels'], dict):
    raise UserError('members of models with several outputs are not supported yet')
  m = config.members
  scheme = m.scheme or 'seeds'
  k = m.k if m.scheme else 1
  if scheme == 'seeds' and not {'validation', 'test'} & set(datasets.splits):
    raise UserError('members.scheme=seeds needs a validation or test split to compare seeds '
                    'on: set data.validation or data.test')
  folds = splits_lib.fold_indices(scheme, len(pool['labels']), k, config.seed, m.shuffle,
                                  pool['labels'])
  if min(len(tr) for tr, _ in folds) == 0:
    raise UserError('a fold has no training examples')
  offset, parts, start = {}, [], 0
  for name in ('train', 'validation', 'test'):
    if name in datasets.splits:
      offset[name] = start
      parts.append(datasets.splits[name])
      start += datasets.size(name)
  data = {key: jax.tree.map(lambda *a: np.concatenate(a), *[p[key] for p in parts])
          for key in ('inputs', 'labels')}
  names_varied, grid = _grid(config)
  names, train_rows, val_rows, seeds = [], [], [], []
  for (f, (tr, va)), combo in itertools.product(enumerate(folds), grid):
    names.append({'member': len(names), 'fold': f, 'seed': config.seed + f,
                  **dict(zip(names_varied, combo))})
    seeds.append(config.seed + f)
    train_rows.append(np.asarray(tr, np.int64))
    if scheme == 'seeds':
      n_val = datasets.size('validation') if 'validation' in datasets.splits else 0
      val_rows.append(offset.get('validation', 0) + np.arange(n_val))
    else:
      val_rows.append(np.asarray(va, np.int64))
  eval_rows = {}
  if any(len(v) for v in val_rows):
    eval_rows['validation'] = val_rows
  if 'test' in datasets.splits:
    eval_rows['test'] = [offset['test'] + np.arange(datasets.size('test'))] * len(names)
  stats = refit = None
  if config.data.standardize:
    fitted = [preprocessing.fit_standardizer(pool['inputs'][rows]) for rows in train_rows]
    stats = {k: np.stack([s[k] for s in fitted]) for k in ('mean', 'std')}
  specs = (None if datasets.preprocessing is None else
           [datasets.preprocessing] * len(names))
  if datasets.refit is not None:   # each member's own preprocessing of every row
    refit = datasets.refit(train_rows)
    data = {'labels': data['labels']}
    specs = refit.preprocessing
  return Layout(data, train_rows, eval_rows, names, np.array(seeds, np.int32),
                _values(config, names, names_varied),
                stats, datasets.raw_input_shape,
                member_inputs=None if refit is None else refit.inputs,
                member_labels=None if refit is None else refit.labels,
                preprocessing=specs,
                model_kwargs=datasets.model_kwargs if refit is None else refit.model_kwargs)


def mesh_for(num_members: int, devices) -> Mesh:
  """The devices the members are spread over.

  On one host, as few devices as give the same number of members per device (10 folds on 8
  devices: 5 devices with 2 folds each, rather than 8 with 6 padded folds). On several hosts,
  every device (each host must take part).
  """
  devices = list(devices) if devices is not None else jax.devices()
  if jax.process_count() == 1:
    per_device = math.ceil(num_members / len(devices))
    devices = devices[:math.ceil(num_members / per_device)]
  return Mesh(np.array(devices), ('data',))


def _pad(values: list, padded: int):
  return values + [values[0]] * (padded - len(values))


class MemberBatches:
  """(indices, weights, active) of every member for any range of global steps.

  An epoch has the steps of the largest member; a member past its own last batch is inactive.
  """

  def __init__(self, lay: Layout, batch_size: int, padded: int):
    self.num = lay.size
    self.rows = _pad(lay.train_rows, padded)
    self.batches = [pipeline.TrainBatches(len(rows), batch_size, int(seed))
                    for rows, seed in zip(self.rows, _pad(list(lay.seeds), padded))]
    self.batch_size = batch_size
    self.steps_per_epoch = lay.steps_per_epoch(batch_size)
    self.uneven = len({b.steps_per_epoch for b in self.batches}) > 1 or padded != self.num

  def indices(self, first_step: int, num_steps: int):
    members = len(self.batches)
    idx = np.zeros((num_steps, members, self.batch_size), np.int32)
    weights = np.zeros_like(idx, dtype=np.float32)
    active = np.zeros((num_steps, members), bool)
    k = 0
    while k < num_steps:
      epoch, b = divmod(first_step + k, self.steps_per_epoch)
      take = min(num_steps - k, self.steps_per_epoch - b)
      for m in range(self.num):
        local, w = self.batches[m].epoch(epoch)
        end = min(b + take, len(local))
        if end > b:
          n = end - b
          idx[k:k + n, m] = self.rows[m][local[b:end]]
          weights[k:k + n, m] = w[b:end]
          active[k:k + n, m] = True
      k += take
    return idx, weights, active


def _eval_rows(rows_per_member: list, padded: int, batch: int):
  """(num_batches, members, batch) indices and weights covering each member's rows once."""
  rows_per_member = _pad(rows_per_member, padded)
  longest = max(len(r) for r in rows_per_member)
  batch = min(batch, longest)
  num_batches = math.ceil(longest / batch)
  idx = np.zeros((padded, num_batches * batch), np.int32)
  weights = np.zeros((padded, num_batches * batch), np.float32)
  for m, rows in enumerate(rows_per_member):
    idx[m, :len(rows)] = rows
    weights[m, :len(rows)] = 1.0
  shape = (padded, num_batches, batch)
  return idx.reshape(shape).transpose(1, 0, 2), weights.reshape(shape).transpose(1, 0, 2)


def _member_batch(data, stats_m, own_m, idx_B, weights_B):
  if own_m is not None:    # the member's own preprocessing of every row (inputs, labels)
    data = {**data, **own_m}
  batch = timeseries.gather(data, idx_B)
  if stats_m is not None:
    batch['inputs'] = (batch['inputs'] - stats_m['mean'][None]) / stats_m['std'][None]
  batch['weights'] = weights_B
  return batch


def _pad_members(tree, padded: int):
  """A per-member pytree (leading axis M) padded to `padded` members with copies of the
  first."""
  return jax.tree.map(lambda v: np.concatenate([v, np.repeat(v[:1], padded - len(v), 0)]),
                      tree)


def _scanned(step, state, xs):
  """lax.scan of `step` over the chunk's leading axis; one step (K=1) is a plain call, as
  library/steps.py does it: a convolution's step inside a scan runs about 4x slower on a CPU
  (XLA's loop body; measured on book 5.1's convnet as 5 members: 203 against 47 ms a step)."""
  if jax.tree.leaves(xs)[0].shape[0] == 1:
    state, metrics = step(state, jax.tree.map(lambda x: x[0], xs))
    return state, jax.tree.map(lambda m: m[None], metrics)
  return jax.lax.scan(step, state, xs)


def _masked(active_M, new, old):
  def pick(n, o):
    return jnp.where(active_M.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)
  return jax.tree.map(pick, new, old)


class MemberFeed(steps.Sums):
  """What the loop needs to train and evaluate members: the compiled chunk, its arguments for a
  range of steps, the stacked initial state and per-member evaluation."""

  def __init__(self, config, task, lay: Layout, mesh: Mesh, evaluator_specs=None):
    self.mesh, self.task, self.layout = mesh, task, lay
    self.reducers = task.reducers or {}
    # The evaluators of each member's own rows, and of the members' rows pooled (out_of_fold;
    # leave-one-out's single row has none of its own); `last`: each split's last evaluation.
    self.pooled_evaluators, self.last = evaluator_specs or {}, {}
    self.scheme = config.members.scheme
    self.evaluators = {} if self.scheme == 'loo' else self.pooled_evaluators
    self.num = self.num_members = lay.size
    self.padded = math.ceil(self.num / mesh.size) * mesh.size
    self.on_members = NamedSharding(mesh, P('data'))
    self.replicated = parallel.replicated(mesh)
    self.eval_batch_size = config.eval_batch_size
    self.model_init, self.task_name = config.model_init, config.task

    def on_axis(axis):
      return NamedSharding(mesh, P(*([None] * axis), 'data'))

    self._on_axis = on_axis
    self.dataless = lay.data is None
    vectorize = config.members.vectorize
    if vectorize == 'auto' and (mesh.devices.flat[0].platform != 'cpu' or mesh.size > 1):
      vectorize = 'vmap'       # (accelerators batch convolutions well; members spread over
                               # several devices run side by side)
    if self.dataless:   # each member makes its own inputs; evaluation is eval_step(state, None)
      self.batches = self.data = self.stats = self.own = None
      self.splits = {'validation'} if task.eval_step is not None else set()
      masked = False
      self._lengths = {}

      def chunk(state, steps_k):
        def step(state, _):
          new, metrics = over_members(vectorize, lambda s: task.train_step(s, None), state)
          return new, {k: v for k, v in metrics.items() if k not in _HEALTH}
        return _scanned(step, state, steps_k)

      def evaluate(state):
        return over_members(vectorize, lambda s: task.eval_step(s, None), state)
    else:
      self.batches = MemberBatches(lay, config.batch_size, self.padded)
      self.data = parallel.put_tree(lay.data, self.replicated)
      own = None if lay.member_inputs is None else {'inputs': lay.member_inputs}
      if lay.member_labels is not None:
        own['labels'] = lay.member_labels
      self.stats, self.own = (
          None if tree is None else parallel.put_tree(_pad_members(tree, self.padded),
                                                      self.on_members)
          for tree in (lay.stats, own))
      self.splits = set(lay.eval_rows)
      masked = self.batches.uneven

      def chunk(state, data, stats, own, idx_KxMxB, weights_KxMxB, active_KxM):
        def step(state, xs):
          idx_MxB, weights_MxB, active_M = xs

          def one(state_m, stats_m, own_m, idx_B, weights_B):
            return task.train_step(state_m, _member_batch(data, stats_m, own_m, idx_B,
                                                          weights_B))

          new, metrics = over_members(vectorize, one, state, stats, own, idx_MxB,
                                      weights_MxB)
          # The gradient and parameter norms cost as much as a small model's step: dropped
          # here, so XLA does not compute them (measured on book 3.6's k-fold: 2.0 -> 1.4 s a
          # rerun).
          metrics = {k: v for k, v in metrics.items() if k not in _HEALTH}
          return (_masked(active_M, new, state) if masked else new), metrics

        return _scanned(step, state, (idx_KxMxB, weights_KxMxB, active_KxM))

      eval_step = steps.with_rows(task, task.eval_step, bool(self.pooled_evaluators))

      def evaluate(state, data, stats, own, idx_MxB, weights_MxB):
        def one(state_m, stats_m, own_m, idx_B, weights_B):
          return eval_step(state_m, _member_batch(data, stats_m, own_m, idx_B, weights_B))
        return over_members(vectorize, one, state, stats, own, idx_MxB, weights_MxB)

    self._chunk_fn, self._evaluate_fn, self._compiled, self._eval_args = chunk, evaluate, {}, {}
    for split, rows in lay.eval_rows.items() if not self.dataless else ():
      idx, weights = _eval_rows(rows, self.padded, config.eval_batch_size)
      self._eval_args[split] = (parallel.put(idx, on_axis(1)), parallel.put(weights, on_axis(1)))

  def init(self):
    """(The stacked initial state: member m from PRNGKey(seed_m), its hyperparameter values
    set; the example batch it was initialized from)."""
    seeds = parallel.put(np.array(_pad(list(self.layout.seeds), self.padded), np.int32),
                         self.on_members)
    example = None
    if not self.dataless:
      first = lambda tree: jax.tree.map(lambda v: v[:self.batches.batch_size], tree)  # noqa: E731
      example = {k: first(v) for k, v in self.layout.data.items()}
      if self.layout.member_inputs is not None:
        example['inputs'] = first(jax.tree.map(lambda v: v[0], self.layout.member_inputs))
      if self.layout.member_labels is not None:
        example['labels'] = first(self.layout.member_labels[0])
      if self.layout.stats is not None:
        example['inputs'] = ((example['inputs'] - self.layout.stats['mean'][0]) /
                             self.layout.stats['std'][0])
      example['weights'] = np.ones(len(example['labels']), np.float32)

    def init_all(seeds, example):
      state = jax.vmap(lambda s: self.task.init(jax.random.PRNGKey(s), example))(seeds)
      return jax.lax.with_sharding_constraint(state, self.on_members)

    state = self._call('members.init', init_all, (seeds, example),
                       compiler_options=steps.INIT_COMPILER_OPTIONS)
    state = jax.device_put(state, self.on_members)
    if self.model_init.path:    # every member starts from the same given values
      state = self._start_from(state)
    for leaf, values in self.layout.values.items():
      name = next(n for n, l in VALUES.items() if l == leaf)
      if optimizers.hyperparameter(state, leaf) is None:
        raise UserError(f'members.{name}: the task\'s state holds no {leaf!r} (the task or '
                        f'the model cannot vary it)')
      values = np.concatenate([values, np.repeat(values[:1], self.padded - self.num)])
      state = optimizers.with_hyperparameter(state, leaf, parallel.put(values, self.on_members))
    return state, example

  def _start_from(self, state):
    """Each member's state with config.model_init's values in place (its own seed's values
    elsewhere, e.g. a fresh head) and its optimizer state afresh: weights.start_values, as a
    single run starts (train.start_from), given to every member."""
    from library import weights  # pylint: disable=import-outside-toplevel
    one = jax.tree.map(lambda x: x[0], state)
    values = weights.start_values(self.model_init, self.task, one, task_name=self.task_name)
    values = {k: jnp.asarray(v) for k, v in values.items()}
    start = jax.jit(jax.vmap(lambda s, v: self.task.with_params(s, v), in_axes=(0, None)),
                    out_shardings=self.on_members)
    return start(state, values)

  def _call(self, name: str, fn, args: tuple, donate_argnums=(), compiler_options=None):
    """fn(*args), compiled once per argument shapes (ahead of time, so that its compilation is
    apart from its first run; JAX's persistent cache serves a rerun's)."""
    key = (name, tuple(getattr(x, 'shape', ()) for x in jax.tree.leaves(args)))
    compiled = self._compiled.get(key)
    if compiled is None:
      jitted = jax.jit(fn, donate_argnums=donate_argnums, compiler_options=compiler_options)
      compiled = self._compiled[key] = steps.gc_paused(
          lambda: jitted.lower(*args).compile())()
    return compiled(*args)

  def chunk(self, state, *args):
    # The chunk's length: steps_K, or idx_KxMxB (a last chunk may be shorter).
    steps = args[0].shape[0] if self.dataless else args[3].shape[0]
    state, metrics = self._call(f'members.chunk[{steps}]', self._chunk_fn, (state, *args),
                                donate_argnums=(0,))
    # The same sharding objects as the state evaluation was compiled for.
    return jax.device_put(state, self.on_members), metrics

  def args(self, step: int, end: int):
    if self.dataless:
      n = end - step
      if n not in self._lengths:
        self._lengths[n] = parallel.put(np.zeros(n, np.int32), self.replicated)
      return (self._lengths[n],)
    idx, weights, active = self.batches.indices(step, end - step)
    return (self.data, self.stats, self.own, parallel.put(idx, self._on_axis(1)),
            parallel.put(weights, self._on_axis(1)), parallel.put(active, self._on_axis(1)))

  def evaluate_sums(self, state, split: str):
    """Each member's metric sums over its rows of `split`, dispatched, not waited for."""
    if self.dataless:
      return self._call('members.evaluate', self._evaluate_fn, (state,))
    idx, weights = self._eval_args[split]
    self.last[split] = steps.add_up(
        self._call(f'members.evaluate.{split}', self._evaluate_fn,
                   (state, self.data, self.stats, self.own, idx[b], weights[b]))
        for b in range(idx.shape[0]))
    return self.last[split]

  def out_of_fold(self) -> list[dict] | None:
    """The last validation pooled over the members of a partition of the pool (kfold,
    stratified_kfold, loo: each row validated once, by the member that did not train on it),
    one row per combination of values: every metric over all of those rows together (sums
    over counts, a reducer of the summed counts, evaluators over the pooled predictions), as
    Kaggle scores out-of-fold predictions. None for other schemes, whose rows overlap."""
    if (self.scheme not in PARTITIONS or 'validation' not in self.last
        or self.layout.member_labels is not None):   # (targets scaled each its own way)
      return None
    total = dict(self.last['validation'])
    rows = total.pop(evaluators.ROWS, None)
    sums = {k: np.asarray(v)[:self.num] for k, v in jax.device_get(total).items()}
    groups = {}
    for m, name in enumerate(self.layout.names):
      values = tuple((k, v) for k, v in name.items() if k not in ('member', 'fold', 'seed'))
      groups.setdefault(values, []).append(m)
    out = []
    for values, ms in groups.items():
      pooled = {n: v[ms].sum(0) for n, v in sums.items()}
      row = dict(values)
      row.update({n: float(v) for n, v in steps.reduce_sums(
          pooled, pooled.pop('count'), self.reducers).items()})
      if rows:
        row.update(evaluators.pooled(self.pooled_evaluators, rows, ms))
      out.append(row)
    return out


class BestMembers:
  """Each member's best evaluation so far (members.keep_best), by checkpoint.best_metric and
  checkpoint.best_mode: the values, their steps, and the stacked state of those bests (the
  loop's best_state, saved in every checkpoint; the final results come from it). A member's
  best is its own: seed 1 may be best at step 40,000 and seed 2 at the end."""

  def __init__(self, config, padded: int):
    self.metric = config.checkpoint.best_metric.partition('.')[2]
    self.higher = config.checkpoint.best_mode == 'max'
    self.values = np.full(padded, -np.inf if self.higher else np.inf)
    self.steps = np.full(padded, -1, np.int64)

  def update(self, step: int, values: dict, state, best_state):
    """The best state after an evaluation at `step` of `state` gave `values` per member."""
    if self.metric not in values:
      raise UserError(f'checkpoint.best_metric=validation.{self.metric!r}: the evaluation '
                      f'reports {", ".join(sorted(values))}')
    v = np.asarray(values[self.metric], np.float64).ravel()
    v = np.concatenate([v, np.full(len(self.values) - len(v), self.values[0])])
    improved = v > self.values if self.higher else v < self.values
    self.values = np.where(improved, v, self.values)
    self.steps = np.where(improved, step, self.steps)
    return _select(jnp.asarray(improved), state, state if best_state is None else best_state)

  def state(self) -> dict:
    finite = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731
    return {'values': [finite(x) for x in self.values], 'steps': self.steps.tolist()}

  def load(self, saved: dict | None, num: int | None = None) -> None:
    """From a checkpoint's state(); `num` real members: one saved with another padding (on
    another device count) keeps its first `num` and is padded as this run's."""
    if saved:
      worst = -np.inf if self.higher else np.inf
      values = np.array([worst if x is None else x for x in saved['values']], np.float64)
      steps = np.array(saved['steps'], np.int64)
      if len(values) != len(self.values) and num is not None:
        pad = len(self.values) - num
        values = np.concatenate([values[:num], np.repeat(values[:1], pad)])
        steps = np.concatenate([steps[:num], np.repeat(steps[:1], pad)])
      self.values, self.steps = values, steps


@jax.jit
def _select(mask_M, new, old):
  return jax.tree.map(
      lambda n, o: jnp.where(mask_M.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def evaluation_epochs(history: dict, steps_per_epoch: int | None, split: str = 'validation'):
  """The epochs (or, without epochs, the steps) of a split's records in members' history:
  what curves and best epochs are counted in, however often the run evaluated."""
  at = np.asarray(history.get('steps', {}).get(split) or [], np.float64)
  if not at.size:      # (a history without steps: one record an epoch)
    at = np.arange(1, len(next(iter(history.get(split, {}).values()), [])) + 1,
                   dtype=np.float64)
    return at
  return at / steps_per_epoch if steps_per_epoch else at


def _epoch(value: float):
  """An epoch as results.json says it: an integer where it is one."""
  return int(value) if float(value).is_integer() else round(float(value), 3)


def results(lay: Layout, history: dict, final: dict, scheme: str,
            best: BestMembers | None = None, steps_per_epoch: int | None = None) -> dict:
  """results.json's member part: per-member rows, their mean and std, the best epoch (the
  epoch of the best evaluation, whatever the evaluation cadence; the step without epochs)."""
  epochs = evaluation_epochs(history, steps_per_epoch)
  rows = []
  for m, name in enumerate(lay.names):
    row = dict(name)
    if best is not None:
      row['best_step'] = int(best.steps[m])
    if lay.data is not None:
      row['train_size'] = int(len(lay.train_rows[m]))
    if 'validation' in lay.eval_rows:
      row['val_size'] = int(len(lay.eval_rows['validation'][m]))
    for split, metrics in final.items():
      prefix = {'train': 'train_', 'validation': 'val_', 'test': 'test_'}[split]
      for metric, values in metrics.items():
        if split != 'train' or metric not in _HEALTH:
          row[prefix + metric] = float(np.ravel(values)[m])
    if history.get('validation', {}).get('loss'):
      row['best_epoch'] = _epoch(epochs[int(np.argmin(np.asarray(
          history['validation']['loss'])[:, m]))])
    rows.append(row)
  keys = [k for k in rows[0] if k.startswith(('train_', 'val_', 'test_'))
          and not k.endswith('_size')]
  out = {'scheme': scheme, 'num_members': len(rows), 'members': rows,
         'mean': {k: float(np.mean([r[k] for r in rows])) for k in keys},
         'std': {k: float(np.std([r[k] for r in rows])) for k in keys}}
  if history.get('validation') and lay.data is not None:
    # Where the member-averaged validation curves are best: the epoch count to train the final
    # model for (the book's "improvement stops near epoch 70").
    out['best_epoch_of_mean'] = {
        name: _epoch(epochs[int((np.argmax if callbacks.higher_is_better(name) else np.argmin)(
            np.mean(values, axis=1)))])
        for name, values in history['validation'].items()}
  return out


class MemberHook(steps.EvaluationHook):
  """Members' part of the loop, beside the callbacks: each split's history (every record's
  values per member), the last values, each member's best (members.keep_best), and their
  rows in results.json, history.json and the curves."""

  def __init__(self, config, lay: Layout, feed: MemberFeed, steps_per_epoch: int | None):
    self.lay, self.size, self.padded, self.spe = lay, lay.size, feed.padded, steps_per_epoch
    self.feed = feed
    self.scheme = config.members.scheme or 'values'
    self.best = BestMembers(config, self.padded) if config.members.keep_best else None
    self.keeps_best = self.best is not None
    self.best_metric = config.checkpoint.best_metric
    self.history = {'train': {}, 'validation': {}}
    self.final = {}

  def steps_per_dispatch(self, k: int, batch_size: int) -> int:
    # bounded indices per dispatch (leave-one-out on thousands of rows)
    return max(1, min(k, MAX_INDICES_PER_DISPATCH // (self.padded * batch_size)))

  def on_host(self, metrics: dict) -> dict:
    return {n: np.asarray(v)[:, :self.size] for n, v in metrics.items()}

  def record(self, step: int, split: str, values: dict) -> None:
    for name, v in values.items():
      self.history[split].setdefault(name, []).append(np.asarray(v).tolist())
    self.history.setdefault('steps', {}).setdefault(split, []).append(int(step))
    self.final[split] = values

  def evaluated(self, split: str, values: dict) -> None:
    self.final[split] = values

  def at_evaluation(self, step: int, state, best_state):
    if self.best is None:
      return best_state
    return self.best.update(step, self.final['validation'], state, best_state)

  def best_line(self) -> str:
    return (f'each member restored to its best evaluation ({self.best_metric}: steps '
            f'{self.best.steps[:self.size].tolist()})')

  def meta(self) -> dict:
    out = {'member_history': self.history}
    if self.best is not None:
      out['member_best'] = self.best.state()
    return out

  def load(self, meta: dict) -> None:
    self.history = meta.get('member_history') or self.history
    if self.history['train']:   # the last train record: results' means
      self.final['train'] = {n: np.asarray(v[-1]) for n, v in self.history['train'].items()}
    if self.best is not None:
      self.best.load(meta.get('member_best'), self.size)

  def artifacts(self, task, state, step: int) -> dict:
    """Each member's own, named '<name>-member<m>' (the task sees one member's state, as a run
    of its own)."""
    out = {}
    for m in range(self.size):
      one = jax.tree.map(lambda x, m=m: x[m], state)
      out.update({f'{name}-member{m}': value
                  for name, value in task.artifacts(one, step).items()})
    return out

  def describe(self, steps_per_epoch: int | None) -> str:
    return (f'{self.size} members ({self.scheme}), ' +
            (f'{steps_per_epoch} steps per epoch, ' if steps_per_epoch else 'no dataset, '))

  def wants_validation(self) -> bool:
    return (self.feed.scheme in PARTITIONS and 'validation' not in self.feed.last
            and self.lay.member_labels is None)

  def results(self, out: dict) -> None:
    out['num_params'] //= self.padded
    out.update(results(self.lay, self.history, self.final, self.scheme, self.best, self.spe))
    pooled = self.feed.out_of_fold()
    if pooled is not None:
      out['out_of_fold'] = pooled

  def files(self) -> list[str]:
    return ['history.json', 'curves.png'] + (
        ['mean_validation.png'] if self.history.get('validation') else [])

  def write_files(self, workdir: str) -> None:
    write_history(workdir, self.history, self.spe)


def write_history(workdir: str, history: dict, spe: int | None) -> None:
  """history.json (per-evaluation, per-member curves), curves.png and mean_validation.png."""
  import os  # pylint: disable=import-outside-toplevel
  from library import plots, writers  # pylint: disable=import-outside-toplevel
  steps = history.get('steps', {})
  at = steps.get('validation') or steps.get('train') or []
  curves = {split: history.get(split, {}) for split in ('train', 'validation')}
  writers.write_json_atomic(os.path.join(workdir, 'history.json'), {
      'epochs': [s / spe for s in at] if spe else None, 'steps': at, **curves})
  x = {split: evaluation_epochs(history, spe, split) for split in ('train', 'validation')}
  unit = 'epoch' if spe else 'step'
  plots.plot_folds(curves, os.path.join(workdir, 'curves.png'), x, unit)
  if curves['validation']:
    names = [n for n in curves['validation'] if n != 'loss'] or ['loss']
    plots.plot_mean_validation(curves, names[0], os.path.join(workdir, 'mean_validation.png'),
                               x['validation'], unit)
