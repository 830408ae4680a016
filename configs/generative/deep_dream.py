"""Book 8.2, "DeepDream": a photo dreamed on by InceptionV3's mixed2-5 layers.

  python -m scripts.train --config=configs/generative/deep_dream.py --workdir=/tmp/dream

InceptionV3's ImageNet weights without the top (`imagenet:inception_v3_notop`, the default of
task_config.weights_dir: Keras' file, 88 MB, fetched on first use and converted once into
~/weights/inception_v3_notop); any converted folder can replace it.

projects/generative/dream.py: layer weights mixed2 0.2, mixed3 3, mixed4 2, mixed5 1.5; 3
octaves of scale 1.4, 20 gradient-ascent steps of 0.01 each, an octave stopped once its loss
passes 10, and the lost detail put back between octaves. The photo: scikit-image's cat
(`skimage:chelsea`, 300x451) offline, or any file (task_config.image). The dream after each
octave is written to workdir/artifacts.
Book: the loss climbs from ~3.4 to ~10 per octave (ImageNet weights). With weights_dir=''
the network is random: the run warns, the loss still rises (tested), and the picture
means nothing.
Ours: not run with ImageNet weights (none can be downloaded here); projects/generative/README.md.
Variants: `smoke` 2 octaves of 3 steps on a 106-row photo, InceptionV3 16 times narrower.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('smoke',)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.generative.dream')
  config.num_train_steps = 60
  config.eval_every_steps = 20
  config.task_config.weights_dir = 'imagenet:inception_v3_notop'
  if 'smoke' in chosen:
    config.task_config.weights_dir = ''      # a network 16 times narrower: random weights
    variants.shrink_for_smoke(config)
    config.task_config.num_octave = 2
    config.task_config.iterations = 3
    config.task_config.height = 106
    config.task_config.width_divisor = 16
  return config
