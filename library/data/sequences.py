"""Word-index sequences: Keras-format files and multi-hot vectors (text -> indices: text.py).

A sequence dataset's inputs are a 1-D object array of int32 arrays (ragged), until
`vectorize_sequences` turns them into dense multi-hot rows.

Keras ships IMDB and Reuters as `.npz` files whose ragged arrays are pickle streams. They are
read with a restricted unpickler that rebuilds NumPy arrays and plain lists of ints and refuses
any other Python object, so a crafted file cannot run code (np.load with pickles allowed would).
"""
import io
import os
import pickle
import zipfile

import numpy as np

from library.data import fetch
from library.errors import UserError

# What Keras' load_data() does to the stored files (keras.datasets.imdb / reuters).
KERAS_SEED = 113
KERAS_TEST_SPLIT = 0.2
START_CHAR, OOV_CHAR, INDEX_FROM = 1, 2, 3

_ALLOWED_GLOBALS = {
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) in _ALLOWED_GLOBALS:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'refusing to load {module}.{name}: only NumPy arrays allowed')


def load_npz_arrays(path: str) -> dict[str, np.ndarray]:
  """Every array of a .npz file; object arrays through the restricted unpickler."""
  if not path:
    raise UserError('this data source needs data.path, the Keras-format .npz file')
  path = fetch.on_first_use(path)      # Keras' own files, at their default place
  if not os.path.isfile(path):
    raise UserError(f'data.path={path!r}: no such file{fetch.hint(path)}')
  out = {}
  try:
    with zipfile.ZipFile(path) as archive:
      for member in archive.namelist():
        if not member.endswith('.npy'):
          continue
        with archive.open(member) as f:
          raw = io.BytesIO(f.read())
        version = np.lib.format.read_magic(raw)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _, _, dtype = read_header(raw)
        if dtype.hasobject:
          array = _ArraysOnlyUnpickler(raw).load()
          if not isinstance(array, np.ndarray):
            raise ValueError(f'{member} does not hold an array')
        else:
          raw.seek(0)
          array = np.lib.format.read_array(raw, allow_pickle=False)
        out[member[:-len('.npy')]] = array
  except (zipfile.BadZipFile, ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
    raise UserError(f'data.path={path!r} is not a readable Keras-format .npz file ({e})') from None
  return out


def _require(arrays: dict, keys: tuple[str, ...], path: str) -> None:
  missing = [k for k in keys if k not in arrays]
  if missing:
    raise UserError(f'{path} has no {missing[0]!r} array (it has {", ".join(sorted(arrays))}): '
                    'not the Keras-format file this source reads')


def _as_sequences(xs, path: str) -> np.ndarray:
  out = np.empty(len(xs), dtype=object)
  for i, x in enumerate(xs):
    seq = np.asarray(x)
    if seq.ndim != 1 or (seq.size and not np.issubdtype(seq.dtype, np.integer)):
      raise UserError(f'{path}: example {i} is not a sequence of word indices')
    out[i] = seq.astype(np.int64)
  return out


def _keras_indexing(splits: list[np.ndarray], num_words: int) -> list[np.ndarray]:
  """start_char, index_from and the num_words cut to oov_char, as Keras' load_data, over
  every split at once: num_words=0 ("all words") is, as there, the largest index of all
  splits, which itself then becomes oov_char (Keras keeps indices < num_words)."""
  indexed = [[np.concatenate([[START_CHAR], x + INDEX_FROM]) for x in xs] for xs in splits]
  if not num_words:
    num_words = max((int(seq.max()) for xs in indexed for seq in xs), default=0)
  out = []
  for xs in indexed:
    column = np.empty(len(xs), dtype=object)
    for i, seq in enumerate(xs):
      column[i] = np.where(seq < num_words, seq, OOV_CHAR).astype(np.int32)
    out.append(column)
  return out


def _shuffled(rng: np.random.RandomState, *arrays):
  indices = np.arange(len(arrays[0]))
  rng.shuffle(indices)
  return [a[indices] for a in arrays]


def load_keras_imdb(path: str, num_words: int):
  """Keras' imdb.load_data(num_words=...): 25,000/25,000 reviews, shuffled with seed 113."""
  arrays = load_npz_arrays(path)
  _require(arrays, ('x_train', 'y_train', 'x_test', 'y_test'), path)
  rng = np.random.RandomState(KERAS_SEED)
  shuffled = {split: _shuffled(rng, _as_sequences(arrays[f'x_{split}'], path),
                               np.asarray(arrays[f'y_{split}'])) for split in ('train', 'test')}
  inputs = _keras_indexing([x for x, _ in shuffled.values()], num_words)
  return {split: {'inputs': x, 'labels': y}
          for (split, (_, y)), x in zip(shuffled.items(), inputs)}


def load_keras_reuters(path: str, num_words: int):
  """Keras' reuters.load_data(num_words=...): 8,982/2,246 newswires, 46 topics."""
  arrays = load_npz_arrays(path)
  _require(arrays, ('x', 'y'), path)
  xs, ys = _shuffled(np.random.RandomState(KERAS_SEED), _as_sequences(arrays['x'], path),
                     np.asarray(arrays['y']))
  [xs] = _keras_indexing([xs], num_words)
  cut = int(len(xs) * (1 - KERAS_TEST_SPLIT))
  return {'train': {'inputs': xs[:cut], 'labels': ys[:cut]},
          'test': {'inputs': xs[cut:], 'labels': ys[cut:]}}


def load_keras_boston(path: str):
  """Keras' boston_housing.load_data(): 404/102 rows of 13 features, shuffled with seed 113."""
  arrays = load_npz_arrays(path)
  _require(arrays, ('x', 'y'), path)
  x, y = np.asarray(arrays['x']), np.asarray(arrays['y'])
  if x.ndim != 2 or y.shape != (len(x),):
    raise UserError(f'{path}: x{x.shape} and y{y.shape} are not (rows, features) and (rows,)')
  x, y = _shuffled(np.random.RandomState(KERAS_SEED), x, y)
  cut = int(len(x) * (1 - KERAS_TEST_SPLIT))
  return {'train': {'inputs': x[:cut], 'labels': y[:cut]},
          'test': {'inputs': x[cut:], 'labels': y[cut:]}}


def vectorize_sequences(sequences, dimension: int) -> np.ndarray:
  """Multi-hot rows (the book's vectorize_sequences): row i has 1 at each index in sequence i.

  An index >= dimension is an error (no silent out-of-vocabulary bucket): cap the vocabulary
  when loading (data.num_words, which maps rarer words to Keras' oov index 2) instead.
  Returned as uint8 (4x smaller than float32; the first Dense layer promotes it).
  """
  lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
  flat = (np.concatenate([np.asarray(s, np.int64) for s in sequences]) if lengths.sum()
          else np.zeros(0, np.int64))
  if flat.size and (flat.min() < 0 or flat.max() >= dimension):
    bad = flat.max() if flat.max() >= dimension else flat.min()
    raise UserError(f'word index {bad} does not fit a vectorization dimension of {dimension} '
                    f'(allowed: 0 to {dimension - 1}); set data.num_words to at most '
                    f'{dimension} so rarer words map to the out-of-vocabulary index')
  out = np.zeros((len(sequences), dimension), np.uint8)
  out[np.repeat(np.arange(len(sequences)), lengths), flat] = 1
  return out


def is_text(inputs: np.ndarray) -> bool:
  return inputs.dtype.kind in ('S', 'U') or (
      inputs.dtype == object and len(inputs) > 0 and isinstance(inputs[0], (bytes, str)))
