"""Images in one folder per class, as Keras' flow_images_from_directory and the Kaggle cats/dogs
layout (book 5.2): root/<split>/<class>/*.jpg, decoded and resized once, on the host, before
training (off the training step's critical path), kept as uint8.

An image that fails to decode is skipped with a warning and counted, not a crash; an empty
class folder is an error.
"""
import os
import sys

import numpy as np

from library.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def load_image_folder(root: str, splits, class_names, size) -> dict[str, dict[str, np.ndarray]]:
  """{split: {'inputs': uint8 (N, height, width, 3), 'labels': int32}}; classes in
  class_names' order (default: the sub-folders, sorted)."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  if not root:
    raise UserError('data.source=image_folder needs data.path, the folder holding the splits')
  root = os.path.expanduser(root)
  if not os.path.isdir(root):
    raise UserError(f'data.path={root!r}: no such folder (for the book\'s cats and dogs, run '
                    'python -m scripts.make_cats_dogs_subset first)')
  height, width = size
  out = {}
  for split in splits:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
      raise UserError(f'{root} has no {split!r} folder (it has '
                      f'{", ".join(sorted(os.listdir(root))) or "nothing"})')
    classes = list(class_names) or sorted(
        n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))
    if not classes:
      raise UserError(f'{folder} has no class folders')
    images, labels, skipped = [], [], []
    for label, name in enumerate(classes):
      class_folder = os.path.join(folder, name)
      if not os.path.isdir(class_folder):
        raise UserError(f'{folder} has no class folder {name!r} (data.class_names)')
      files = sorted(f for f in os.listdir(class_folder)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
      if not files:
        raise UserError(f'class folder {class_folder} holds no image '
                        f'({", ".join(IMAGE_EXTENSIONS)})')
      for f in files:
        path = os.path.join(class_folder, f)
        try:
          with Image.open(path) as image:
            image = image.convert('RGB').resize((width, height), Image.BILINEAR)
            images.append(np.asarray(image, np.uint8))
        except (UnidentifiedImageError, OSError, ValueError):
          skipped.append(path)
          continue
        labels.append(label)
    if skipped:
      print(f'warning: {len(skipped)} image(s) of {folder} could not be decoded and were '
            f'skipped, e.g. {skipped[0]}', file=sys.stderr, flush=True)
    if not images:
      raise UserError(f'no image of {folder} could be decoded')
    out[split] = {'inputs': np.stack(images), 'labels': np.asarray(labels, np.int32)}
  return out
