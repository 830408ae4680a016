"""Held-out splits by count or fraction, deterministic from the seed."""
import numpy as np

from library.errors import UserError


def holdout_indices(num_examples: int, sizes: dict[str, float], seed: int,
                    shuffle: bool = True) -> dict[str, np.ndarray]:
  """Carves named splits out of `num_examples` examples; the remainder is 'train'.

  Each size is a count (>= 1) or a fraction of num_examples (< 1); 0 skips the split. Splits
  are taken in the order given, from the front of the (shuffled) order, so that
  {'validation': 10000} without shuffling is the book's "first 10,000 samples".
  """
  order = np.random.default_rng(seed).permutation(num_examples) if shuffle else np.arange(
      num_examples)
  out, start = {}, 0
  for name, size in sizes.items():
    if size == 0:
      continue
    count = int(round(size * num_examples)) if size < 1 else int(size)
    if count < 1 or start + count >= num_examples:
      raise UserError(f'holding out {name}={size} leaves no training examples out of '
                      f'{num_examples} (after {start} already held out)')
    out[name] = np.sort(order[start:start + count]) if shuffle else order[start:start + count]
    start += count
  out['train'] = order[start:]
  return out


SCHEMES = ('kfold', 'stratified_kfold', 'loo', 'bootstrap', 'seeds')


def _class_labels(labels: np.ndarray) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim == 2:             # one-hot
    return labels.argmax(-1)
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise UserError(f'stratified_kfold needs class labels, got {labels.dtype} labels of shape '
                    f'{labels.shape} (regression targets cannot be stratified; use kfold)')
  return labels


def fold_indices(scheme: str, num_examples: int, k: int, seed: int, shuffle: bool = False,
                 labels: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
  """(train, validation) index pairs of a validation scheme over `num_examples` examples.

  kfold: k folds, contiguous as the book's (shuffle=True shuffles first, seeded); every
    example is validated exactly once.
  stratified_kfold: k folds keeping each class's proportion in every fold (shuffle=True
    shuffles within classes first).
  loo: leave-one-out, num_examples folds (k is not used).
  bootstrap: k rounds, each training on num_examples draws with replacement and validating on
    the examples never drawn (out-of-bag).
  seeds: k runs on all examples (the validation split, if any, comes from the data config).
  """
  n = num_examples
  if scheme not in SCHEMES:
    raise UserError(f'members.scheme={scheme!r} is not one of {", ".join(SCHEMES)}')
  if scheme == 'loo':
    if n < 2:
      raise UserError(f'leave-one-out needs at least 2 examples, got {n}')
    k = n
  elif scheme in ('kfold', 'stratified_kfold') and not 2 <= k <= n:
    raise UserError(f'members.k={k} must be between 2 and the number of examples ({n})')
  elif k < 1:
    raise UserError(f'members.k={k} must be >= 1 ({scheme} rounds)')
  if scheme == 'seeds':
    return [(np.arange(n), np.zeros(0, np.int64)) for _ in range(k)]
  if scheme == 'bootstrap':
    out = []
    for r in range(k):
      train = np.random.default_rng([seed, r]).integers(0, n, n)
      oob = np.setdiff1d(np.arange(n), train)
      if not oob.size:
        raise UserError(f'bootstrap round {r} left no out-of-bag example out of {n}')
      out.append((train, oob))
    return out
  order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
  fold_of = np.empty(n, np.int64)
  if scheme in ('kfold', 'loo'):
    # Contiguous runs of the order; the first n % k folds one example longer (sklearn's KFold).
    fold_of[order] = np.repeat(np.arange(k), [len(c) for c in np.array_split(order, k)])
  else:
    classes = _class_labels(labels)
    values, counts = np.unique(classes, return_counts=True)
    if counts.min() < k:
      raise UserError(f'stratified_kfold with members.k={k}: class {values[counts.argmin()]} '
                      f'has only {counts.min()} examples (each class needs at least k)')
    # Deal each class's examples (in order) round-robin over the folds, each class starting
    # where the previous one stopped: per class, fold counts differ by at most one, and so do
    # fold sizes.
    start = 0
    for value in values:
      members = order[classes[order] == value]
      fold_of[members] = (start + np.arange(len(members))) % k
      start = (start + len(members)) % k
  everything = np.arange(n)
  return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]
