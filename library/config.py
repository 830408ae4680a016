"""The loop's config schema, and its checks; a task's own settings are its own.

Each experiment's `get_config(arg)` starts from `default_config(task)` and changes values; it
never adds keys, so a typo in a config file or in an override (`--config.optimizer.lerning_rate`)
is an error instead of a silently ignored value. Nothing derived is computed here: epochs become
steps in the loop, from the dataset actually loaded.

The keys here are the loop's: seed, durations and cadences, batch sizes, data sources, the
optimizer, checkpoints, callbacks, members. `task_config` is the task's section: its keys and
their defaults come from the task module (`default_task_config()`), and the task's own
`validate_task_config(config)` checks them (an unknown key there is also a one-line error).
Nothing in this file knows a family.
"""
import importlib
import json
import math
from typing import Any

import ml_collections
from ml_collections import config_dict

from library import callbacks, members, optimizers
from library.data import augment
from library.data.sources import SOURCES
from library.errors import UserError

OPTIMIZERS = ('sgd', 'momentum', 'nesterov', 'rmsprop', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'exponential', 'linear')
BACKENDS = ('cpu', 'gpu', 'tpu')

# Keys that may differ between a run and its resume without making the checkpoint another
# model's: how long to train, how often to log/evaluate/save, and where data lives.
RESUME_SAFE_KEYS = frozenset({
    'num_epochs', 'num_train_steps', 'log_every_steps', 'eval_every_steps', 'eval_every_epochs',
    'checkpoint.every_steps', 'checkpoint.every_epochs', 'checkpoint.keep',
    'checkpoint.async_save', 'progress_bar',
    'compilation_cache_dir',
    'steps_per_dispatch.cpu', 'steps_per_dispatch.gpu', 'steps_per_dispatch.tpu',
    'data.data_dir', 'data.path', 'data.placement', 'eval_batch_size', 'members.vectorize',
})


def task_module(name: str):
  """The module a config's `task` names (a plain import, no registry)."""
  try:
    module = importlib.import_module(name)
  except ModuleNotFoundError as e:
    raise UserError(f'task={name!r} cannot be imported ({e})') from None
  if not hasattr(module, 'make_task'):
    raise UserError(f'task={name!r} has no make_task(config, data, total_steps)')
  return module


def task_defaults(name: str) -> ml_collections.ConfigDict:
  """The task's own section with its defaults (empty when the task has no settings)."""
  make = getattr(task_module(name), 'default_task_config', None)
  return make() if make is not None else ml_collections.ConfigDict()


def default_config(task: str = 'library.supervised') -> ml_collections.ConfigDict:
  """Every key a config may set, with its default; `task_config` holds the task's own."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  # What is trained: a module exposing make_task(config, data, total_steps) -> Task
  # (library/task.py), and that task's settings.
  c.task = task
  c.task_config = task_defaults(task)
  # The model of a one-model task: a linen Module class found by plain import; `kwargs` go to
  # its constructor. Tasks with several models name them in task_config.
  c.model = ml_collections.ConfigDict()
  c.model.module = config_dict.placeholder(str)
  c.model.name = config_dict.placeholder(str)
  c.model.kwargs = ml_collections.ConfigDict()

  # Where examples come from, for a task that loads a dataset (its module has load_data); a
  # task that makes its own inputs on the device ignores this section.
  c.data = _data_defaults()

  # Start from pretrained values (transfer learning, book 5.3): `path` is a folder written by
  # scripts.convert_weights, a .safetensors / Keras .h5 / .keras file, or a training workdir of
  # ours (its latest checkpoint). They go under `prefix` ('conv_base'); layer paths matching
  # `skip` (a regular expression, e.g. 'predictions' or 'Dense_1') are neither read nor
  # required, and keep their fresh initialization.
  c.model_init = ml_collections.ConfigDict({'path': '', 'prefix': '', 'skip': ''})

  c.batch_size = 128                # global batch, over all devices of all hosts
  c.eval_batch_size = 1000
  # How long to train: num_train_steps if set (it wins, so that --config.num_train_steps=N
  # works on an epoch-based config), else num_epochs of the training split actually loaded.
  c.num_epochs = config_dict.placeholder(float)
  c.num_train_steps = config_dict.placeholder(int)
  # Steps per dispatch (one lax.scan over a chunk), per backend. Chosen by measurement: see
  # each config's docstring and scripts/benchmark.py.
  c.steps_per_dispatch = ml_collections.ConfigDict({'cpu': 1, 'gpu': 1, 'tpu': 1})
  c.eval_every_epochs = config_dict.placeholder(float)  # default: every epoch
  c.eval_every_steps = config_dict.placeholder(int)
  c.log_every_steps = config_dict.placeholder(int)      # default: with every evaluation

  c.optimizer = optimizers.default_config()

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = config_dict.placeholder(int)  # default: at each evaluation
  c.checkpoint.every_epochs = config_dict.placeholder(float)   # or every this many epochs
  c.checkpoint.keep = 2               # the last K, plus the best below
  c.checkpoint.best_metric = ''      # e.g. 'validation.accuracy'; '' keeps no best
  c.checkpoint.best_mode = 'max'
  # Saves return once the arrays are in host memory; orbax writes them while training goes on.
  c.checkpoint.async_save = True

  c.callbacks = callbacks.default_config()     # Keras 3's, at every evaluation

  c.members = members.default_config()         # folds, seeds, values as one state

  c.progress_bar = True
  # JAX's persistent compilation cache: a rerun skips compilation. '' turns it off.
  c.compilation_cache_dir = '~/.cache/dlwr_jax/xla'
  return c


def _data_defaults() -> ml_collections.ConfigDict:
  """The data section: the source, held-out splits, preprocessing, placement."""
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


# Constructor arguments: any keys, not checked against the defaults.
FREE_FORM = ('model.kwargs', 'data.features.kwargs', 'data.generator_kwargs')


def flat_keys(d: Any, prefix: str = '', free_form=FREE_FORM) -> dict[str, Any]:
  out = {}
  for key, value in d.items():
    name = f'{prefix}{key}'
    if isinstance(value, (dict, ml_collections.ConfigDict)) and name not in free_form:
      out.update(flat_keys(value, name + '.', free_form))
    else:
      out[name] = value
  return out


def _is_count_or_fraction(value) -> bool:
  return value == 0 or (0 < value < 1) or (value >= 1 and float(value).is_integer())


def check_known_keys(section, defaults, prefix: str, free_form=()) -> None:
  """An unknown key of `section` (one `defaults` lacks) is a UserError naming it."""
  known = set(flat_keys(defaults, prefix, free_form))
  unknown = sorted(set(flat_keys(section, prefix, free_form)) - known)
  if unknown:
    close = sorted(k for k in known if k.rsplit('.', 1)[-1] == unknown[0].rsplit('.', 1)[-1])
    raise UserError(f'unknown config key {unknown[0]!r}'
                    f'{"; did you mean " + close[0] + "?" if close else ""}')


def one_of(key: str, value, allowed) -> None:
  if value not in allowed:
    raise UserError(f'{key}={value!r} is not one of {", ".join(map(str, allowed))}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first bad key or value and what is allowed: the loop's keys
  here, then the task's section by the task's own validate_task_config."""
  module = task_module(config.task)
  # The task's section is one opaque key here; the task checks inside it.
  check_known_keys(config, default_config(config.task), '', FREE_FORM + ('task_config',))
  if 'task_config' not in config:
    raise UserError('the config has no task_config section; start it from '
                    'library.config.default_config(task)')
  if hasattr(module, 'validate_task_config'):
    module.validate_task_config(config)
  else:
    check_known_keys(config.task_config, task_defaults(config.task), 'task_config.')
  _validate_loop(config)


def _validate_loop(config) -> None:
  one_of('data.source', config.data.source, SOURCES)
  one_of('optimizer.name', config.optimizer.name, OPTIMIZERS)
  one_of('optimizer.schedule', config.optimizer.schedule, SCHEDULES)
  if config.num_epochs is None and config.num_train_steps is None:
    raise UserError('set num_epochs or num_train_steps')
  for key in ('num_epochs', 'eval_every_epochs'):   # None: not set
    if config[key] is not None and not (math.isfinite(config[key]) and config[key] > 0):
      raise UserError(f'{key}={config[key]} must be a finite number > 0')
  for key in ('num_train_steps', 'eval_every_steps'):
    if config[key] is not None and config[key] < 1:
      raise UserError(f'{key}={config[key]} must be a whole number >= 1')
  if not 0 <= config.seed < 2**32:
    raise UserError(f'seed={config.seed} must be a whole number from 0 to 2**32 - 1')
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] < 1:
      raise UserError(f'{key}={config[key]} must be >= 1')
  for key in ('validation', 'test'):
    if config.data[key] == 1:
      raise UserError(f'data.{key}={config.data[key]}: a fraction must be below 1 (all of the '
                      'examples leaves nothing to train on) and one example measures nothing: '
                      'give a fraction in (0, 1) or a count >= 2')
    if not _is_count_or_fraction(config.data[key]):
      raise UserError(f'data.{key}={config.data[key]} must be 0, a fraction in (0, 1) '
                      'or a whole count >= 1')
  if config.data.tokenize not in ('', 'words', 'chars'):
    raise UserError(f'data.tokenize={config.data.tokenize!r} is not one of \'\', words, chars')
  for key in ('padding', 'truncating'):
    if config.data[key] not in ('pre', 'post'):
      raise UserError(f'data.{key}={config.data[key]!r} is not one of pre, post')
  if config.data.augment.fill_mode not in augment.FILL_MODES:
    raise UserError(f'data.augment.fill_mode={config.data.augment.fill_mode!r} is not one of '
                    f'{", ".join(augment.FILL_MODES)}')
  for key in ('rotation', 'width_shift', 'height_shift', 'shear', 'zoom'):
    if config.data.augment[key] < 0:
      raise UserError(f'data.augment.{key}={config.data.augment[key]} must be >= 0')
  if config.data.augment.zoom >= 1:
    raise UserError(f'data.augment.zoom={config.data.augment.zoom} must be < 1')
  if config.data.max_train < 0:
    raise UserError(f'data.max_train={config.data.max_train} must be >= 0 (0: all)')
  if config.data.maxlen < 0:
    raise UserError(f'data.maxlen={config.data.maxlen} must be >= 0 (0: no padding)')
  if config.data.maxlen and config.data.vectorize:
    raise UserError('data.maxlen (padded sequences) and data.vectorize (multi-hot rows) '
                    'exclude each other: set one')
  if config.data.vectorize not in ('', 'multi_hot'):
    raise UserError(f'data.vectorize={config.data.vectorize!r} is not one of \'\', multi_hot')
  if config.data.vectorize and config.data.num_words < 1:
    raise UserError('data.vectorize=multi_hot needs data.num_words, the vector dimension')
  if config.data.placement not in ('auto', 'device', 'host'):
    raise UserError(f'data.placement={config.data.placement!r} is not one of auto, device, host')
  if not (math.isfinite(config.optimizer.learning_rate) and config.optimizer.learning_rate > 0):
    raise UserError(f'optimizer.learning_rate={config.optimizer.learning_rate} must be a '
                    'finite number > 0')
  if config.checkpoint.best_mode not in ('max', 'min'):
    raise UserError(f'checkpoint.best_mode={config.checkpoint.best_mode!r} is not max or min')
  if config.checkpoint.keep < 1:
    raise UserError(f'checkpoint.keep={config.checkpoint.keep} must be >= 1')
  keep = tuple(config.data.keep_labels)
  if len(set(keep)) != len(keep):
    raise UserError(f'data.keep_labels={keep} repeats a label')
  if keep and config.data.num_classes != len(keep):
    raise UserError(f'data.keep_labels has {len(keep)} labels but data.num_classes='
                    f'{config.data.num_classes}: set it to {len(keep)}')
  f = config.data.features
  if f.module and (not f.name or not f.init):
    raise UserError('data.features needs module, name and init (the frozen model and its '
                    'weights); leave module empty for no cached features')
  if f.batch_size < 1:
    raise UserError(f'data.features.batch_size={f.batch_size} must be >= 1')
  if (config.model_init.prefix or config.model_init.skip) and not config.model_init.path:
    raise UserError('model_init.prefix/skip are set but model_init.path is empty')
  for backend in BACKENDS:
    if config.steps_per_dispatch[backend] < 1:
      raise UserError(f'steps_per_dispatch.{backend} must be >= 1')
  if config.data.embedding_file and not config.data.embedding_variable:
    raise UserError('data.embedding_file needs data.embedding_variable, the model variable its '
                    "vectors start ('params/Embed_0/embedding')")
  callbacks.validate(config.callbacks)
  members.validate(config)


def _literal(text: str):
  if text.lower() in ('true', 'false'):
    return text.lower() == 'true'
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def apply_override(config: ml_collections.ConfigDict, assignment: str) -> None:
  """'key=value' (the scripts' --set), the value parsed as the key's current type; model.kwargs
  keys take ints, floats, booleans or strings as written."""
  key, sep, text = assignment.partition('=')
  *parents, name = key.split('.')
  if sep and parents == ['model', 'kwargs'] and name not in config.model.kwargs:
    config.model.kwargs[name] = _literal(text)   # a constructor argument the config leaves out
    return
  node = config
  try:
    for part in parents:
      node = node[part]
    current = node[name]
  except (KeyError, AttributeError):
    raise UserError(f'--set {key!r} is not a config key') from None
  field = node.get_ref(name) if hasattr(node, 'get_ref') else None
  kind = field.get_type() if field is not None else type(current)
  if not sep:
    raise UserError(f'--set {assignment!r} must be key=value')
  try:
    if kind is bool:
      value = {'true': True, 'false': False}[text.lower()]
    elif kind in (tuple, list):
      value = tuple(type(current[0])(v) if current else v for v in text.split(',') if v)
    else:
      value = kind(text)
  except (KeyError, ValueError, TypeError):
    raise UserError(f'--set {key}={text!r} is not a {kind.__name__}') from None
  node[name] = value


def with_section(config: ml_collections.ConfigDict, name: str,
                 section: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose section `name` is `section`: what a task hands to another's
  functions (text generation gives the supervised task its own keys and the model's size)."""
  copy = config.copy_and_resolve_references()
  copy.unlock()
  copy[name] = section
  return copy


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def _assign(node: ml_collections.ConfigDict, loaded: dict) -> None:
  """Values of a saved config into a default one; a key the defaults lack is free-form
  (constructor arguments) and is taken as saved."""
  for key, value in loaded.items():
    current = node.get(key) if key in node else None
    if isinstance(value, dict):
      if isinstance(current, ml_collections.ConfigDict) and current:
        _assign(current, value)
      else:
        node[key] = ml_collections.ConfigDict(value)
    else:
      node[key] = tuple(value) if isinstance(value, list) else value


def from_json(text: str, where: str = 'config.json') -> ml_collections.ConfigDict:
  """The config a workdir was trained with, back from its config.json (`where`, for the
  error: a file that is not such a config, damaged or edited, is a UserError)."""

  def damaged(reason):
    return UserError(f'{where} is not a config this codebase wrote ({reason}): it was '
                     'damaged or edited; train the run again (scripts.train with '
                     '--start_over moves the old run aside)')

  try:
    loaded = json.loads(text)
  except ValueError as e:
    raise damaged(f'not JSON: {e}') from None
  if not isinstance(loaded, dict) or not {'task', 'model', 'data'} <= set(loaded):
    raise damaged('no task, model and data keys')
  try:
    config = default_config(loaded['task'])
    config.unlock()
    _assign(config, loaded)
  except UserError as e:
    raise damaged(str(e)) from None
  except (TypeError, ValueError, KeyError, AttributeError, ImportError) as e:
    raise damaged(f'{type(e).__name__}: {e}') from None
  return config


def resume_mismatches(saved_json: str, config: ml_collections.ConfigDict) -> list[str]:
  """Keys whose values make a workdir's checkpoints belong to another experiment. A key the
  saved config lacks (added to the codebase since) is no mismatch while it keeps its default:
  the old run computed what that default computes."""
  saved = flat_keys(json.loads(saved_json))
  now = flat_keys(json.loads(to_json(config)))
  defaults = flat_keys(json.loads(to_json(default_config(config.task))))
  return sorted(k for k in set(saved) | set(now)
                if k not in RESUME_SAFE_KEYS and saved.get(k) != now.get(k)
                and not (k not in saved and k in defaults and now.get(k) == defaults[k]))
