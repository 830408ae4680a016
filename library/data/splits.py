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
