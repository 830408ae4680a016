"""From a config to preprocessed splits, and the per-step batch indices of the training loop.

Batches are chosen by index: the host computes which examples each step sees (a permutation
per epoch, from the seed and the epoch number), and the device gathers them from the dataset
it holds, or the host gathers them when the dataset stays in host memory. Keras' epoch
semantics are kept: every example once per epoch, the last batch partial (padded to the fixed
batch shape with zero-weight examples). Since the indices depend only on (seed, step), resuming
at any step replays exactly the batches an uninterrupted run would have seen.
"""
import dataclasses
import math
import sys
from typing import Any

import jax
import numpy as np

from library.data import (features, preprocessing, sequences, sources, splits as splits_lib,
                          text, timeseries)
from library.errors import UserError


@dataclasses.dataclass
class Datasets:
  # name -> a pytree of arrays of one leading size ({'inputs', 'labels'}, either of them a dict
  # of named arrays), preprocessed; or a timeseries split (library/data/timeseries.py).
  splits: dict[str, dict[str, Any]]
  stats: dict[str, np.ndarray] | None        # standardization fitted on 'train', if any
  raw_input_shape: tuple[int, ...] = ()      # one example as the source gives it
  # Metrics known before training, per split (the timeseries' common-sense baseline).
  reference: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
  # Initial values for parameters, by path (a GloVe embedding for the tokenizer's words).
  param_init: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  # (min, max) of the training inputs as the source gives them, before any scaling: what
  # predict checks new inputs against.
  raw_input_range: tuple[float, float] | None = None
  # How single training examples look (input_profile): what predict compares a new example
  # with, to say when it is blank or unlike all of them (an inverted background).
  raw_input_profile: dict[str, float] | None = None
  # Model settings that the data decides, passed to the model's constructor beside
  # config.model.kwargs (the sizes of a table's category embeddings).
  model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
  # What the run saves as preprocessing.json, so that predicting later applies exactly what
  # training fitted (a table's fitted columns); None: nothing to save.
  preprocessing: Any = None
  # Members (library/members.py) fit their preprocessing on their own training rows with this:
  # refit(train rows of each member) -> MemberInputs. Rows index the splits' examples in the
  # order train, validation, test. None: the members share the inputs above (and fit only
  # data.standardize, on the fly).
  refit: Any = None
  # Set when the inputs are kept as the source's uint8 images (prepare's keep_bytes): the
  # model sees inputs * input_scale in float32, made on the device in each batch
  # (library/steps.py), so that memory holds a byte per pixel, not four. inputs(split) gives
  # them scaled on the host; None: the inputs are as the model sees them.
  input_scale: float | None = None

  def size(self, split: str) -> int:
    return split_size(self.splits[split])

  def inputs(self, split: str):
    """A split's inputs as the model sees them (scaled to float32 where kept as bytes)."""
    return preprocessing.scale_inputs(self.splits[split]['inputs'], self.input_scale)

  def as_float(self) -> 'Datasets':
    """These datasets with float32 inputs, as the model sees them (no byte inputs)."""
    if self.input_scale is None:
      return self
    return dataclasses.replace(self, input_scale=None, splits={
        name: dict(split, inputs=self.inputs(name)) for name, split in self.splits.items()})

  def example(self, n: int) -> dict[str, Any]:
    """The first n (at most) training examples as a batch, with weights 1."""
    batch = timeseries.gather(self.splits['train'], np.arange(min(n, self.size('train'))))
    batch['inputs'] = preprocessing.scale_inputs(batch['inputs'], self.input_scale)
    batch['weights'] = np.ones(min(n, self.size('train')), np.float32)
    return batch


@dataclasses.dataclass
class MemberInputs:
  """What Datasets.refit returns: every member's inputs of every row, as its own fitted
  preprocessing makes them, stacked on a leading member axis (shapes shared by all members),
  what each member fitted (saved with the run), and the model settings shared by all."""
  inputs: Any                                  # pytree of (M, rows, ...) arrays
  preprocessing: list                          # per member, JSON
  model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
  labels: Any = None       # (M, rows): each member's own labels, where it scales the target


def split_size(split: dict[str, Any]) -> int:
  """The number of examples of a split: its labels' leading size (a timeseries split's
  series is longer), or of its first array when it has no labels."""
  leaves = jax.tree.leaves(split['labels'] if 'labels' in split else split)
  return len(leaves[0])


def _take(split: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
  return jax.tree.map(lambda v: v[index], split)


def _named_arrays(raw, d) -> Datasets:
  """Splits whose inputs or labels are dicts of named arrays (models with several inputs or
  outputs): taken as given, integer arrays as int32 and the others as float32."""
  for key in ('standardize', 'flatten', 'one_hot', 'tokenize', 'vectorize', 'maxlen'):
    if d[key]:
      raise UserError(f'data.{key} applies to one input array; these inputs/labels are dicts '
                      'of named arrays: prepare them before')
  if d.scale != 1:
    raise UserError(f'data.scale={d.scale} applies to one input array; these inputs/labels are '
                    'dicts of named arrays: scale them before')

  def cast(x):
    x = np.asarray(x)
    return x.astype(np.int32 if np.issubdtype(x.dtype, np.integer) else np.float32)

  out = {name: jax.tree.map(cast, split) for name, split in raw.items()}
  shape = jax.tree.map(lambda x: x.shape[1:], raw['train']['inputs'])
  return Datasets(out, None, shape)


def prepare(config, arrays=None) -> Datasets:
  """Loads the source, carves held-out splits, fits preprocessing on 'train' only."""
  d = config.data
  raw = sources.load(d, arrays)
  if d.window.lookback:
    if set(raw) != {'series'}:
      raise UserError(f'data.window is set but data.source={d.source!r} is not a series '
                      '(csv or statsmodels_co2)')
    splits, reference = timeseries.make_splits(raw['series']['inputs'], d.window)
    shape = (len(splits['train']['offsets']), raw['series']['inputs'].shape[1])
    return Datasets(splits, None, shape, reference)
  if 'series' in raw:
    raise UserError(f'data.source={d.source!r} is a series: set data.window (lookback, ...)')
  if d.keep_labels:
    present = set().union(*(np.unique(s['labels']).tolist() for s in raw.values()))
    missing = sorted(set(d.keep_labels) - present)
    if missing:
      raise UserError(f'data.keep_labels={tuple(d.keep_labels)}: labels {missing} have no '
                      f'example (the labels are {sorted(present)})')
    raw = {name: _keep_labels(split, tuple(d.keep_labels)) for name, split in raw.items()}
  if d.test_as_validation:
    if 'test' not in raw or 'validation' in raw:
      raise UserError('data.test_as_validation needs a source with a test split and no '
                      f'validation split (this one has {", ".join(sorted(raw))})')
    raw['validation'] = raw.pop('test')
  for name, split in raw.items():
    sizes = {'/'.join(str(getattr(k, 'key', k)) for k in path): len(leaf)
             for path, leaf in jax.tree_util.tree_flatten_with_path(split)[0]}
    if len(set(sizes.values())) > 1:
      raise UserError(f'split {name!r} has arrays of different lengths: ' + ', '.join(
          f'{k} {n}' for k, n in sizes.items()))
  _carve_holdouts(raw, d, config.seed)
  if 'train' not in raw:
    raise UserError(f'no training split: the source has {", ".join(sorted(raw))}; '
                    'set data.pool to carve one')
  if d.max_train:
    raw['train'] = _take(raw['train'], np.arange(min(d.max_train, split_size(raw['train']))))
  if isinstance(raw['train']['inputs'], dict) or isinstance(raw['train']['labels'], dict):
    return _named_arrays(raw, d)
  param_init = _words_to_vectors(raw, d)
  stats = None
  if d.standardize:
    stats = preprocessing.fit_standardizer(
        preprocessing.transform_inputs(raw['train']['inputs'], d, None))
  # uint8 images only scaled (and flattened) stay bytes: 1/4 of the memory, on the host and on
  # the device; each batch is scaled in the step (Datasets.input_scale), or in the frozen
  # model that replaces them by its features.
  keep_bytes = not (stats is not None or d.vectorize or d.maxlen) and all(
                        isinstance(s['inputs'], np.ndarray) and s['inputs'].dtype == np.uint8
                        and s['inputs'].ndim >= 3 for s in raw.values())

  def inputs(x):
    if keep_bytes:
      return x.reshape(len(x), -1) if d.flatten else x
    return preprocessing.transform_inputs(x, d, stats)

  out = {name: {'inputs': inputs(s['inputs']),
                'labels': preprocessing.transform_labels(s['labels'], d)}
         for name, s in raw.items()}
  if features.enabled(d.features):
    features.extract(out, d.features, progress=config.progress_bar,
                     input_scale=float(d.scale) if keep_bytes else None)
    keep_bytes = False                          # the inputs are now the features, float32
  train_inputs = np.asarray(raw['train']['inputs'])
  value_range = ((float(train_inputs.min()), float(train_inputs.max()))
                 if train_inputs.size and np.issubdtype(train_inputs.dtype, np.number) else None)
  return Datasets(out, stats, tuple(train_inputs.shape[1:]), param_init=param_init,
                  raw_input_range=value_range, raw_input_profile=input_profile(train_inputs),
                  input_scale=float(d.scale) if keep_bytes else None)


def _carve_holdouts(raw: dict, d, seed: int) -> None:
  """data.validation / data.test examples held out of data.pool (seeded, or the first ones
  unshuffled), in place."""
  carve = {name: d[name] for name in ('validation', 'test') if d[name]}
  if not carve and d.pool == 'train':
    return
  if d.pool not in raw:
    raise UserError(f'data.pool={d.pool!r} is not a split of this source '
                    f'(it has {", ".join(sorted(raw))})')
  for name in carve:
    if name in raw and name != d.pool:
      raise UserError(f'the source already has a {name!r} split; set data.{name}=0')
  pool = raw.pop(d.pool)
  seed = seed if d.holdout_seed is None else d.holdout_seed
  index = splits_lib.holdout_indices(split_size(pool), carve, seed, d.shuffle_holdout)
  for name, idx in index.items():
    raw[name] = _take(pool, idx)
  if not d.shuffle_holdout:
    _warn_one_class_holdout(raw, carve)


def _warn_one_class_holdout(raw: dict, carve: dict) -> None:
  """A split held out from the front of an ordered source (data.shuffle_holdout=False) that
  holds one class while training holds several: the source is sorted by class (aclImdb's
  folders), and every score on that split is meaningless. Said, not refused: a user may mean it."""
  labels = raw['train']['labels']
  if isinstance(labels, dict) or np.asarray(labels).ndim != 1 or not np.issubdtype(
      np.asarray(labels).dtype, np.integer):
    return
  for name in carve:
    held = np.unique(np.asarray(raw[name]['labels']))
    if len(held) == 1 and len(np.unique(labels)) > 1:
      print(f'warning: the {name} split (the first {split_size(raw[name]):,} examples, '
            f'data.shuffle_holdout=False) holds class {held[0]} only, while training holds '
            f'{len(np.unique(labels))} classes: the source is ordered by class, so its {name} '
            'scores mean nothing; set data.shuffle_holdout=True', file=sys.stderr, flush=True)


def input_profile(inputs: np.ndarray) -> dict[str, float] | None:
  """The spread of the training examples' own means, and their smallest own standard
  deviation, for examples of several values (images, windows); None for scalars or text."""
  if inputs.ndim < 2 or not inputs.size or not np.issubdtype(inputs.dtype, np.number):
    return None
  flat = inputs.reshape(len(inputs), -1)
  # In chunks: a float64 copy of every photo at once (25,000 at 150x150x3) would be 13 GB.
  means, stds = [], []
  for start in range(0, len(flat), 1024):
    chunk = flat[start:start + 1024].astype(np.float64)
    means.append(chunk.mean(axis=1))
    stds.append(chunk.std(axis=1))
  means, stds = np.concatenate(means), np.concatenate(stds)
  return {'mean_low': float(means.min()), 'mean_high': float(means.max()),
          'std_low': float(stds.min())}


def _keep_labels(split: dict[str, np.ndarray], keep: tuple) -> dict[str, np.ndarray]:
  labels = np.asarray(split['labels'])
  if labels.ndim != 1:
    raise UserError(f'data.keep_labels needs integer labels, got labels of shape {labels.shape}')
  rows = np.flatnonzero(np.isin(labels, keep))
  relabel = np.full(max(int(labels.max()), *keep) + 1, -1, np.int64)
  relabel[list(keep)] = np.arange(len(keep))
  return {'inputs': split['inputs'][rows], 'labels': relabel[labels[rows]].astype(labels.dtype)}


def _words_to_vectors(raw: dict[str, dict[str, np.ndarray]], d) -> dict[str, np.ndarray]:
  """Text -> indices (vocabulary from 'train' only) -> padded or multi-hot rows, in place.

  Returns the initial embedding from data.embedding_file, if set, by parameter path.
  """
  param_init = {}
  if d.embedding_file and d.tokenize != 'words':
    raise UserError('data.embedding_file needs data.tokenize=words (its vectors are looked up '
                    'by the words of the tokenizer fitted on the training texts)')
  if d.tokenize:
    texts = raw['train']['inputs']
    if not sequences.is_text(texts):
      raise UserError(f'data.tokenize={d.tokenize} but the inputs are {texts.dtype}, not text')
    tokenizer = text.Tokenizer(num_words=d.num_words or None,
                               char_level=d.tokenize == 'chars').fit(texts)
    for split in raw.values():
      split['inputs'] = tokenizer.texts_to_sequences(split['inputs'])
    if d.embedding_file:
      param_init[d.embedding_variable] = text.load_glove(
          d.embedding_file, tokenizer.word_index, d.num_words or len(tokenizer.word_index) + 1)
  for split in raw.values():
    x = split['inputs']
    if (d.vectorize or d.maxlen) and x.dtype != object and x.ndim != 2:
      raise UserError(f'data.vectorize / data.maxlen need word-index sequences, got inputs of '
                      f'shape {x.shape}')
    if d.vectorize == 'multi_hot':
      split['inputs'] = sequences.vectorize_sequences(x, d.num_words)
    elif d.maxlen:
      split['inputs'] = text.pad_sequences(x, d.maxlen, padding=d.padding,
                                           truncating=d.truncating)
  return param_init


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  return math.ceil(num_examples / batch_size)


class TrainBatches:
  """Which examples each training step sees: (indices, weights) for any range of steps."""

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    self.num_examples = num_examples
    self.batch_size = batch_size
    self.seed = seed
    self.steps_per_epoch = steps_per_epoch(num_examples, batch_size)
    self._cached_epoch, self._cached_order = -1, None

  def _order(self, epoch: int) -> np.ndarray:
    if epoch != self._cached_epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._cached_epoch, self._cached_order = epoch, rng.permutation(self.num_examples)
    return self._cached_order

  def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 indices and float32 weights of one whole epoch, both (steps_per_epoch, batch_size)."""
    size = self.steps_per_epoch * self.batch_size
    idx = np.zeros(size, np.int32)
    weights = np.zeros(size, np.float32)
    idx[:self.num_examples] = self._order(epoch)
    weights[:self.num_examples] = 1.0
    shape = (self.steps_per_epoch, self.batch_size)
    return idx.reshape(shape), weights.reshape(shape)

  def indices(self, first_step: int, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 indices and float32 weights, both (num_steps, batch_size)."""
    idx = np.zeros((num_steps, self.batch_size), np.int32)
    weights = np.zeros((num_steps, self.batch_size), np.float32)
    k = 0
    while k < num_steps:
      epoch, b = divmod(first_step + k, self.steps_per_epoch)
      take = min(num_steps - k, self.steps_per_epoch - b)
      epoch_idx, epoch_weights = self.epoch(epoch)
      idx[k:k + take] = epoch_idx[b:b + take]
      weights[k:k + take] = epoch_weights[b:b + take]
      k += take
    return idx, weights


def eval_batches(num_examples: int, batch_size: int):
  """Contiguous (indices, weights) batches covering a split once, the last one padded."""
  for start in range(0, num_examples, batch_size):
    part = np.arange(start, min(start + batch_size, num_examples), dtype=np.int32)
    idx = np.zeros(batch_size, np.int32)
    weights = np.zeros(batch_size, np.float32)
    idx[:len(part)] = part
    weights[:len(part)] = 1.0
    yield idx, weights
