"""The config's data section (`config.data`): its keys with their defaults, and their checks.

A config has this section only when its task loads a dataset (its module has `load_data`);
library/config.py collects it from here, as it does every section from its owner.
"""
import ml_collections
from ml_collections import config_dict

from library.data import augment
from library.data.sources import SOURCES
from library.errors import UserError

NEEDS_DATASET = True
# The keys of this section that may differ between a run and its resume (where the data lives
# and where it is held): changing them does not make the checkpoints another model's.
RESUME_SAFE = frozenset({'data_dir', 'path', 'placement'})


def default_config() -> ml_collections.ConfigDict:
  """config.data: the source, held-out splits, preprocessing, placement."""
  d = ml_collections.ConfigDict()
  d.source = 'tfds'
  d.name = 'mnist'            # TFDS dataset name
  d.data_dir = config_dict.placeholder(str)   # TFDS data dir; default ~/tensorflow_datasets
  d.path = config_dict.placeholder(str)       # .npz file for source='npz'
  # source='generator': the function (package.module.function) returning the splits, and its
  # keyword arguments.
  d.generator = ''
  d.generator_kwargs = ml_collections.ConfigDict()
  d.splits = ('train', 'test')                # splits the source provides and we load
  d.input_key = 'image'
  d.label_key = 'label'
  # Splits carved out of `pool` (what remains of it is 'train'): each a count (>= 1) or a
  # fraction of the pool (< 1); 0 means none. 70/30: test=0.3; 60/20/20: validation=0.2, test=0.2.
  d.pool = 'train'
  d.validation = 0.0
  d.test = 0.0
  # The source's test split is used as validation, and no test split remains (book 4.4, which
  # monitors the IMDB test reviews; pick this only to reproduce it).
  d.test_as_validation = False
  d.shuffle_holdout = True    # False: the first examples are held out (the book's IMDB)
  # The seed of the held-out splits (None: config.seed). Fixed, runs of several seeds keep
  # the same validation and test examples (an ensemble of them, book 7.3.3).
  d.holdout_seed = config_dict.placeholder(int)
  d.max_train = 0              # keep only the first N training examples (0: all)
  # Keep only the examples of these labels, relabelled 0, 1, ... in this order (digits 5-9 of
  # the transfer demo become classes 0-4); () keeps all.
  d.keep_labels = ()
  # Image augmentation of every training batch, on device (library/data/augment.py): Keras'
  # ImageDataGenerator ranges (rotation and shear in degrees; shifts below 1 as fractions of the
  # size, from 1 up in pixels, as Keras; zoom as a fraction).
  d.augment = augment.default_config()
  d.scale = 1.0                # inputs *= scale (1/255 for pixels)
  d.standardize = False        # feature-wise z-score with training-split statistics
  d.flatten = False            # (N, H, W, C) -> (N, H*W*C)
  d.one_hot = False            # labels as one-hot vectors (categorical_crossentropy)
  d.num_classes = 10
  d.class_names = ()           # text/image_folder: the class sub-folders, in label order
  d.image_size = (150, 150)    # image_folder: every image resized to (height, width)
  d.drop_columns = ()          # csv: columns that are not data (e.g. 'Date Time')
  # Timeseries windows (library/data/timeseries.py), used when lookback > 0: rows split in
  # time order at train_end and val_end (row numbers, or fractions of the rows).
  d.window = ml_collections.ConfigDict({
      'lookback': 0, 'step': 1, 'delay': 0, 'target': 0, 'train_end': 0.0, 'val_end': 0.0,
      'relative': False})
  # Word sequences (IMDB, Reuters): keep the num_words most frequent words (0: all). Keras-format
  # files map rarer words to the out-of-vocabulary index 2, as load_data(num_words=...) does.
  d.num_words = 0
  d.tokenize = ''              # 'words' / 'chars': raw text -> indices (fitted on train)
  # A GloVe text file: the model variable `embedding_variable` ('params/Embed_0/embedding')
  # starts from its vectors for the tokenizer's words (book 6.1).
  d.embedding_file = config_dict.placeholder(str)
  d.embedding_variable = ''

  d.vectorize = ''             # 'multi_hot': sequences -> num_words-dim 0/1 rows
  # Sequences -> (N, maxlen) int32, Keras' pad_sequences (0: not padded).
  d.maxlen = 0
  d.padding = 'pre'
  d.truncating = 'pre'
  # 'device': keep the dataset on the accelerators and gather batches there; 'host': feed
  # batches from host memory, each process reading only its own devices' rows of each batch;
  # 'auto': on device if it fits in on_device_max_mb, on one process; on several, 'host'.
  d.placement = 'auto'
  # Cached features (book 5.3, feature extraction): before training, every split's inputs are
  # replaced, once, by the outputs of this frozen model (module/name/kwargs as `model`) with
  # its variables from `init` (as model_init.path).
  d.features = ml_collections.ConfigDict({
      'module': '', 'name': '', 'kwargs': ml_collections.ConfigDict(), 'init': '',
      'batch_size': 50})
  d.on_device_max_mb = 2048
  return d


def _is_count_or_fraction(value) -> bool:
  return value == 0 or (0 < value < 1) or (value >= 1 and float(value).is_integer())


def _one_of(key: str, value, allowed) -> None:
  if value not in allowed:
    shown = ", ".join(str(a) if a else "''" for a in allowed)
    raise UserError(f'data.{key}={value!r} is not one of {shown}')


def validate(config) -> None:
  """Raises UserError naming the first bad data key or value and what is allowed."""
  d = config.data
  _one_of('source', d.source, SOURCES)
  for key in ('validation', 'test'):
    if d[key] == 1:
      raise UserError(f'data.{key}={d[key]}: a fraction must be below 1 (all of the '
                      'examples leaves nothing to train on) and one example measures nothing: '
                      'give a fraction in (0, 1) or a count >= 2')
    if not _is_count_or_fraction(d[key]):
      raise UserError(f'data.{key}={d[key]} must be 0, a fraction in (0, 1) '
                      'or a whole count >= 1')
  _one_of('tokenize', d.tokenize, ('', 'words', 'chars'))
  for key in ('padding', 'truncating'):
    _one_of(key, d[key], ('pre', 'post'))
  _one_of('augment.fill_mode', d.augment.fill_mode, augment.FILL_MODES)
  for key in ('rotation', 'width_shift', 'height_shift', 'shear', 'zoom'):
    if d.augment[key] < 0:
      raise UserError(f'data.augment.{key}={d.augment[key]} must be >= 0')
  if d.augment.zoom >= 1:
    raise UserError(f'data.augment.zoom={d.augment.zoom} must be < 1')
  if d.max_train < 0:
    raise UserError(f'data.max_train={d.max_train} must be >= 0 (0: all)')
  if d.maxlen < 0:
    raise UserError(f'data.maxlen={d.maxlen} must be >= 0 (0: no padding)')
  if d.maxlen and d.vectorize:
    raise UserError('data.maxlen (padded sequences) and data.vectorize (multi-hot rows) '
                    'exclude each other: set one')
  _one_of('vectorize', d.vectorize, ('', 'multi_hot'))
  if d.vectorize and d.num_words < 1:
    raise UserError('data.vectorize=multi_hot needs data.num_words, the vector dimension')
  _one_of('placement', d.placement, ('auto', 'device', 'host'))
  keep = tuple(d.keep_labels)
  if len(set(keep)) != len(keep):
    raise UserError(f'data.keep_labels={keep} repeats a label')
  if keep and d.num_classes != len(keep):
    raise UserError(f'data.keep_labels has {len(keep)} labels but data.num_classes='
                    f'{d.num_classes}: set it to {len(keep)}')
  f = d.features
  if f.module and (not f.name or not f.init):
    raise UserError('data.features needs module, name and init (the frozen model and its '
                    'weights); leave module empty for no cached features')
  if f.batch_size < 1:
    raise UserError(f'data.features.batch_size={f.batch_size} must be >= 1')
  if d.embedding_file and not d.embedding_variable:
    raise UserError('data.embedding_file needs data.embedding_variable, the model variable its '
                    "vectors start ('params/Embed_0/embedding')")
