"""Book 8.4, "Generating images with variational autoencoders": a 2-d latent space of MNIST.

  python -m scripts.train --config=configs/generative/mnist_vae.py:embedded --workdir=/tmp/vae
  python -m scripts.generate --workdir=/tmp/vae --output=/tmp/vae/samples

projects/generative/vae.py: the book's conv encoder (32, 64 /2, 64, 64 -> dense 32) to a 2-d
mean and log-variance, its conv-transpose decoder, loss = pixel BCE + 5e-4 x KL, rmsprop
(1e-3), 10 epochs of batch 16. Pictures in workdir/artifacts at every evaluation: the 15x15
grid decoded over the latent plane (normal quantiles 0.05 to 0.95) and the test digits' codes
coloured by label.
Book: (Python twin) validation loss ~0.180 on MNIST's 10,000 test digits, 60,000 to train.
Ours (`embedded`, 4,000 offline digits, 2,500 steps): test loss 0.207 in 231 s of training
on a 2-core x86 CPU (JAX 0.10.2); pictures and a quality check of its samples in
projects/generative/README.md.
Variants: (none) full MNIST from Keras' mnist.npz (fetched on first use into
~/.keras/datasets, 11 MB); `tfds` the same digits from TFDS `mnist`; `embedded` the 5,000 offline digits (4,000 train, 1,000 test);
`book` the book's sampling z = mean + exp(log_var) * eps (vae.py explains the difference);
`latent16` a 16-d latent space instead of 2 (sharper samples; the grid and the scatter show
its first two dimensions); `smoke` a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('embedded', 'tfds', 'book', 'latent16', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.generative.vae')
  variants.use_keras_mnist(config)
  config.model.module = 'projects.generative.models'
  config.model.name = 'VAE'
  config.model.kwargs = {'image_shape': (28, 28, 1), 'latent': 2}
  config.data.scale = 1 / 255
  config.data.validation = 0
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 16
  config.eval_batch_size = 1000
  config.num_epochs = 10.0
  config.eval_every_epochs = 1.0
  if 'tfds' in chosen:
    variants.use_tfds_mnist(config)
  if 'embedded' in chosen:
    variants.use_embedded_digits(config)
  if 'book' in chosen:
    config.task_config.book_sampling = True
  if 'latent16' in chosen:
    config.model.kwargs.latent = 16
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.model.kwargs.features = (4, 8, 8, 8)
    config.model.kwargs.hidden = 8
    config.task_config.grid = 3
    config.task_config.scatter_points = 50
  return config
