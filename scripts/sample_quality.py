"""Scores generated digits with a trained digit classifier, beside real digits and noise.

  python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded --workdir=/tmp/cnn
  python -m scripts.sample_quality --classifier=/tmp/cnn --workdir=/tmp/vae --workdir=/tmp/gd

For each --workdir (a VAE or GAN run on 28x28x1 digits) draws --count images from its prior
(and, for a VAE, from a Gaussian fitted to its training digits' codes) and scores them with
the classifier (projects/generative/quality.py: mean confidence, entropy of the
predicted-class histogram, an Inception-Score-like number, and a Fréchet distance on
the classifier's penultimate features against its training digits). The classifier's held-out
test digits and uniform noise get the same scores. Prints a Markdown table and writes it as
JSON to --output.
"""
from absl import flags

from library import cli

_CLASSIFIER = flags.DEFINE_string('classifier', None, 'a workdir of a digit classifier '
                                  '(configs/convnets/mnist_convnet.py:embedded)')
_WORKDIR = flags.DEFINE_multi_string('workdir', [], 'generative workdirs to score')
_COUNT = flags.DEFINE_integer('count', 1000, 'images drawn from each workdir')
_SEED = flags.DEFINE_integer('seed', 0, 'seed of the draws and of the noise')
_OUTPUT = flags.DEFINE_string('output', '', 'a JSON file for the table ("" : none)')
flags.mark_flags_as_required(['classifier'])


def main(_):
  import json  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.generative import quality  # pylint: disable=import-outside-toplevel
  if _COUNT.value < 2:
    raise UserError(f'--count={_COUNT.value} must be >= 2')
  classifier = quality.Classifier(_CLASSIFIER.value)
  sets = {}
  if classifier.test_inputs is not None:
    sets['real held-out digits'] = classifier.test_inputs[:_COUNT.value]
  for workdir in _WORKDIR.value:
    for how, images in quality.samples_of(workdir, _COUNT.value, _SEED.value).items():
      sets[f'{workdir} ({how})'] = images
  rng = np.random.default_rng(_SEED.value)
  sets['uniform noise'] = rng.uniform(size=(_COUNT.value, 28, 28, 1)).astype(np.float32)
  rows = quality.table(classifier, sets)
  print('| images | confidence | class entropy (max 2.303) | inception-like score | '
        'Fréchet distance |')
  print('|---|---|---|---|---|')
  for name, row in rows.items():
    print(f'| {name} | {row["confidence"]:.3f} | {row["class_entropy"]:.3f} | '
          f'{row["inception_score"]:.2f} | {row["frechet_distance"]:.1f} |')
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  cli.run(main)
