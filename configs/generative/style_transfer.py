"""Book 8.3, "Neural style transfer": a photo repainted in another image's style, on VGG19.

  python -m scripts.convert_weights --arch=vgg19 --input=vgg19.h5 --output=/tmp/vgg19
  python -m scripts.train --config=configs/generative/style_transfer.py \
      --config.task_config.weights_dir=/tmp/vgg19 --workdir=/tmp/style

projects/generative/style.py: content loss on block5_conv2 (weight 0.025), Gram-matrix style
loss on block1-5_conv1 (1.0), total variation (1e-4), L-BFGS over the image from the content
photo: the book's 20 rounds of 15 iterations (300 steps; the image of each round is written to
workdir/artifacts). Images 400 rows high, as the book. Offline photos come from scikit-image
(task_config.content_image / style_image: 'skimage:<name>' or a file).
Book: a styled image (no number). Without converted ImageNet weights the run warns and the
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
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.task_config.height = 32
    config.task_config.widths = (4, 8, 8, 8, 8)
  return config
