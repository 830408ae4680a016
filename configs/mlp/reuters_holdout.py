"""Book 3.5, "Classifying newswires": 46 topics, 20 epochs with the first 1,000 newswires held out.

  python -m scripts.train --config=configs/mlp/reuters_holdout.py --workdir=/tmp/reuters

dense 64 relu -> dense 64 relu -> dense 46 softmax on 10,000-dim multi-hot newswires, one-hot
labels, categorical cross-entropy, rmsprop 1e-3, batch 512; history.png holds the curves.
Book: validation loss lowest near epoch 9, then overfitting; the 9-epoch model's test
accuracy is 0.7765 (configs/mlp/reuters_final.py); a random classifier gets 0.189.
Ours: not run here (no network to fetch Reuters; tests run it on a mock reuters.npz).
Variants: (none) Keras' ~/.keras/datasets/reuters.npz, fetched on first use (checked against
the SHA-256 Keras pins; python -m scripts.fetch --only reuters), 8,982/2,246 newswires as
keras.datasets.reuters.load_data(num_words=10000) splits them; `smoke` a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('smoke',)


def reuters_base(chosen: set[str], hidden=(64, 64)):
  config = default_config()
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs.hidden = hidden
  config.model.kwargs.num_outputs = 46
  config.task_config.loss = 'categorical_crossentropy'     # the book's to_categorical labels
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'keras_reuters'
  config.data.path = '~/.keras/datasets/reuters.npz'
  config.data.num_words = 10000
  config.data.vectorize = 'multi_hot'
  config.data.one_hot = True
  config.data.num_classes = 46
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 512
  config.num_epochs = 20.0
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
  return config


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = reuters_base(chosen)
  config.data.validation = 8 if 'smoke' in chosen else 1000
  config.data.shuffle_holdout = False     # the book's x_train[1:1000]
  return config
