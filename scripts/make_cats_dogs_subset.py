"""Builds the book's small cats-vs-dogs dataset (5.2) from Kaggle's `train` folder.

  python -m scripts.make_cats_dogs_subset --kaggle_train=~/Downloads/train \
      --output=~/cats_and_dogs_small

Kaggle's "Dogs vs. Cats" train folder holds cat.0.jpg ... cat.12499.jpg and dog.*.jpg. As the
book: the first 1,000 of each class train, the next 500 validate, the next 500 test, copied
into OUTPUT/{train,validation,test}/{cats,dogs}/. An OUTPUT that is not empty is refused.
"""
import os
import shutil

from absl import flags

from library import cli
from library.errors import UserError

_KAGGLE = flags.DEFINE_string('kaggle_train', None, "Kaggle's train folder")
_OUTPUT = flags.DEFINE_string('output', None, 'where the subset goes (must be new or empty)')
_SIZES = flags.DEFINE_list('sizes', ['1000', '500', '500'], 'train, validation, test per class')
flags.mark_flags_as_required(['kaggle_train', 'output'])


def main(_):
  source = os.path.expanduser(_KAGGLE.value)
  output = os.path.expanduser(_OUTPUT.value)
  if not os.path.isdir(source):
    raise UserError(f'--kaggle_train={source!r}: no such folder')
  if os.path.isdir(output) and os.listdir(output):
    raise UserError(f'--output={output!r} is not empty; choose a new folder')
  try:
    sizes = [int(v) for v in _SIZES.value]
  except ValueError:
    raise UserError(f'--sizes={",".join(_SIZES.value)} must be three whole numbers') from None
  if len(sizes) != 3 or min(sizes) < 1:
    raise UserError(f'--sizes={",".join(_SIZES.value)} must be three counts >= 1')
  plan = []
  for animal in ('cat', 'dog'):
    first = 0
    for split, count in zip(('train', 'validation', 'test'), sizes):
      for i in range(first, first + count):
        name = f'{animal}.{i}.jpg'
        if not os.path.isfile(os.path.join(source, name)):
          raise UserError(f'{source} has no {name}: not Kaggle\'s Dogs vs. Cats train folder '
                          f'(or too few images for --sizes)')
        plan.append((name, os.path.join(output, split, f'{animal}s', name)))
      first += count
  for name, target in plan:         # everything checked first: nothing half-written on error
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(os.path.join(source, name), target)
  print(f'{len(plan)} images copied into {output}')


if __name__ == '__main__':
  cli.run(main)
