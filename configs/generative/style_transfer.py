"""Book 8.3, "Neural style transfer": a photo repainted in another image's style, on VGG19.

  python -m scripts.train --config=configs/generative/style_transfer.py --workdir=/tmp/style

VGG19's ImageNet weights without the top (`imagenet:vgg19_notop`, the default of
task_config.weights_dir: Keras' file, 80 MB, fetched on first use and converted once into
~/weights/vgg19_notop); any converted folder can replace it.

projects/generative/style.py: content loss on block5_conv2 (weight 0.025), Gram-matrix style
loss on block1-5_conv1 (1.0), total variation (1e-4), L-BFGS over the image from the content
photo: the book's 20 rounds of 15 iterations (300 steps; the image of each round is written to
workdir/artifacts). Images 400 rows high, as the book. Offline photos come from scikit-image
(task_config.content_image / style_image: 'skimage:<name>' or a file).
Book: a styled image (no number). With weights_dir='' the run warns and the
network is random: the loss still falls (tested), but the picture shows no style.
Ours: not run with ImageNet weights (none can be downloaded here); projects/generative/README.md.
Variants: `smoke` a tiny network on a 32-row image, a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('smoke',)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.generative.style')
  config.num_train_steps = 300
  config.eval_every_steps = 15
  config.task_config.weights_dir = 'imagenet:vgg19_notop'
  if 'smoke' in chosen:
    config.task_config.weights_dir = ''      # a tiny network: random weights
    variants.shrink_for_smoke(config)
    config.task_config.height = 32
    config.task_config.widths = (4, 8, 8, 8, 8)
  return config
