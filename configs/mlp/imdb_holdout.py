"""Book 3.4, "Classifying movie reviews": 20 epochs with the first 10,000 reviews held out.

  python -m scripts.train --config=configs/mlp/imdb_holdout.py --workdir=/tmp/imdb_holdout
  python -m scripts.train --config=configs/mlp/imdb_holdout.py:tfds --workdir=/tmp/imdb_tfds

dense 16 relu -> dense 16 relu -> dense 1 sigmoid on 10,000-dim multi-hot reviews, rmsprop
1e-3, binary cross-entropy, batch 512; history.png holds the training vs validation curves.
Book: validation loss lowest near epoch 4, then overfitting (training accuracy -> ~1.0,
validation ~0.87). The 4-epoch model on all 25,000 reviews: configs/mlp/imdb_final.py.
Ours: not run here (no network to fetch IMDB; tests run it on mock data in both formats, and
from a loopback mirror as a first use fetches it). Variants: (none) Keras'
~/.keras/datasets/imdb.npz, fetched on first use (checked against the SHA-256 Keras pins; or
ahead of time: python -m scripts.fetch --only imdb), top 10,000 words as
keras.datasets.imdb.load_data(num_words=10000); `tfds` TFDS `imdb_reviews` raw text, a word
tokenizer fitted on the training reviews (top 10,000 words); `early_stopping` (book 7.2.1):
EarlyStopping on validation.loss, patience 2, the best weights restored (the book's curves turn
near epoch 4); `smoke` a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('tfds', 'early_stopping', 'smoke')


def imdb_base(chosen: set[str]):
  """The 3.4 model and data; configs of 3.4 and 4.4 change what differs."""
  config = default_config()
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs.hidden = (16, 16)
  config.model.kwargs.num_outputs = 1
  config.task_config.loss = 'binary_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'keras_imdb'
  config.data.path = '~/.keras/datasets/imdb.npz'
  config.data.num_words = 10000
  config.data.vectorize = 'multi_hot'
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 512
  config.eval_batch_size = 1000
  config.num_epochs = 20.0
  if 'tfds' in chosen:
    variants.use_tfds_imdb(config)
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
  return config


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = imdb_base(chosen)
  config.data.validation = 10000
  config.data.shuffle_holdout = False     # the book's x_train[1:10000]
  if 'early_stopping' in chosen:
    variants.use_early_stopping(config, 'validation.loss', 2)
  if 'smoke' in chosen:
    config.data.validation = 8
  return config
