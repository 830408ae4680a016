"""Images in one folder per class, as Keras' flow_images_from_directory and the Kaggle cats/dogs
layout (book 5.2): root/<split>/<class>/*.jpg, decoded and resized once, on the host, before
training (off the training step's critical path), kept as uint8.

An image that fails to decode is skipped with a warning and counted, not a crash; an empty
class folder is an error.
"""
import sys

import numpy as np

from library.data import sources
from library.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def load_images(paths, size) -> tuple[np.ndarray | None, list[str]]:
  """(uint8 (N, height, width, 3) of the files that decode, in order; the paths that did not)."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  height, width = size
  images, failed = [], []
  for path in paths:
    try:
      with Image.open(path) as image:
        image = image.convert('RGB').resize((width, height), Image.BILINEAR)
        images.append(np.asarray(image, np.uint8))
    except (UnidentifiedImageError, OSError, ValueError):
      failed.append(path)
  return (np.stack(images) if images else None), failed


def load_image_folder(root: str, splits, class_names, size) -> dict[str, dict[str, np.ndarray]]:
  """{split: {'inputs': uint8 (N, height, width, 3), 'labels': int32}}; classes in
  class_names' order (default: the sub-folders, sorted)."""
  files = sources.class_folder_files(
      root, splits, class_names, IMAGE_EXTENSIONS, 'image_folder',
      "for the book's cats and dogs, run python -m scripts.make_cats_dogs_subset first")
  out = {}
  for split, items in files.items():
    images, skipped = load_images([path for _, path in items], size)
    if skipped:
      print(f'warning: {len(skipped)} image(s) of split {split!r} could not be decoded and '
            f'were skipped, e.g. {skipped[0]}', file=sys.stderr, flush=True)
    if images is None:
      raise UserError(f'no image of split {split!r} could be decoded')
    failed = set(skipped)
    labels = [label for label, path in items if path not in failed]
    out[split] = {'inputs': images, 'labels': np.asarray(labels, np.int32)}
  return out
