"""Book 8.5, "Introduction to generative adversarial networks": a DCGAN of CIFAR-10's frogs.

  python -m scripts.train --config=configs/generative/cifar_frogs_gan.py --workdir=/tmp/gan
  python -m scripts.train --config=configs/generative/cifar_frogs_gan.py:digits --workdir=/tmp/gd
  python -m scripts.generate --workdir=/tmp/gd --output=/tmp/gd/samples

projects/generative/gan.py: the book's generator (latent 32 -> 16x16x128 -> conv 256 k5 ->
conv-transpose 256 k4 /2 -> conv 256 k5 x2 -> conv 3 k7 tanh: 6,264,579 parameters) and
discriminator (conv 128 k3, conv 128 k4 /2 x3, dropout 0.4, dense: 790,913), RMSprop clipped at
1.0 by value, 8e-4 for the discriminator and 4e-4 for the generator, label noise 0.5 x U(0,1),
10,000 iterations of batch 20 on the 5,000 frogs (pixels /255). A picture of 64 samples from
fixed latent points every 500 iterations in workdir/artifacts.
Book: generated frogs; d_loss ~0.67 and adversarial loss ~0.68 near the end.
Variants: (none) TFDS `cifar10`, class 6 (frog); `digits` the same design on the 4,000 offline
training digits at 28x28x1, narrowed (32 filters instead of 256 and 128, a 14x14x64 start)
so that this CPU trains it in minutes; `smoke` a few steps.
Ours (`digits`, 2,000 iterations of batch 32): 658 s on a 2-core x86 CPU (JAX 0.10.2); its
samples, scored by the 5.1 convnet: confidence 0.82, class entropy 2.16 of 2.30, Fréchet
distance 14.2 (real digits 0.9, noise 270). Pictures: projects/generative/README.md.
The full-width DCGAN costs about 0.6 TFLOP per iteration (the generator's 5x5 convolutions of
256 filters at 32x32): minutes per hundred iterations on a 2-core CPU, seconds on a GPU.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('digits', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.generative.gan')
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.splits = ('train',)
  config.data.keep_labels = (6,)
  config.data.num_classes = 1
  config.data.scale = 1 / 255
  config.optimizer.name = 'rmsprop'
  config.optimizer.clip_value = 1.0
  config.batch_size = 20
  config.num_train_steps = 10_000
  config.eval_every_steps = 500
  config.log_every_steps = 100
  if 'digits' in chosen:
    variants.use_embedded_digits(config)
    config.data.keep_labels = ()
    config.data.num_classes = 10
    config.data.splits = ('train', 'test')
    t = config.task_config
    t.generator.kwargs = {'latent': 32, 'size': 28, 'channels': 1, 'width': 32, 'base': 64}
    t.discriminator.kwargs = {'width': 32, 'dropout_rate': 0.4}
    config.batch_size = 32
    config.num_train_steps = 2000
    config.eval_every_steps = 250
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.batch_size = 8
    t = config.task_config
    t.generator.kwargs.width = 8
    t.generator.kwargs.base = 8
    t.discriminator.kwargs.width = 8
    t.grid = 2
  return config
