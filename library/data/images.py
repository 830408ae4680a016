"""Images in one folder per class, as Keras' flow_images_from_directory and the Kaggle cats/dogs
layout (book 5.2): root/<split>/<class>/*.jpg, decoded and resized once, on the host, before
training (off the training step's critical path), kept as uint8.

An image that fails to decode is skipped with a warning and counted, not a crash; an empty
class folder is an error.
"""
import os
import sys

import numpy as np

from library.data import folders
from library.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def load_images(paths, size) -> tuple[np.ndarray | None, list[str]]:
  """(uint8 (N, height, width, 3) of the files that decode, in order; the paths that did not).

  Decoded by a pool of threads (Pillow releases the GIL while it decodes and resizes), each
  image written straight into the one uint8 array: no list of copies, no float copy."""
  import concurrent.futures  # pylint: disable=import-outside-toplevel
  from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
  height, width = size
  paths = list(paths)
  out = np.empty((len(paths), height, width, 3), np.uint8)

  def decode(i: int) -> bool:
    try:
      with Image.open(paths[i]) as image:
        out[i] = np.asarray(image.convert('RGB').resize((width, height), Image.BILINEAR))
      return True
    except (UnidentifiedImageError, OSError, ValueError):
      return False

  with concurrent.futures.ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 1)) as pool:
    ok = np.fromiter(pool.map(decode, range(len(paths))), bool, len(paths))
  failed = [p for p, good in zip(paths, ok) if not good]
  if not ok.any():
    return None, failed
  return (out if ok.all() else out[ok]), failed


CATS_DOGS_SMALL = 'cats_and_dogs_small'


def _missing_hint(root: str) -> str:
  """What to run when the folder is missing: the exact commands for the book's cats and dogs,
  which Kaggle serves only after a login (nothing can fetch them on a user's behalf)."""
  if os.path.basename(os.path.normpath(root or '')) != CATS_DOGS_SMALL:
    return 'a folder of <split>/<class>/ images'
  return ("Kaggle's Dogs vs. Cats needs a Kaggle login: `kaggle competitions download -c "
          'dogs-vs-cats && unzip dogs-vs-cats.zip && unzip train.zip`, then `python -m '
          f'scripts.make_cats_dogs_subset --kaggle_train=train --output={root}`; or use the '
          ':tfds variant (TFDS cats_vs_dogs, prepared on first use)')


def load_image_folder(root: str, splits, class_names, size) -> dict[str, dict[str, np.ndarray]]:
  """{split: {'inputs': uint8 (N, height, width, 3), 'labels': int32}}; classes in
  class_names' order (default: the sub-folders, sorted)."""
  files = folders.class_folder_files(root, splits, class_names, IMAGE_EXTENSIONS,
                                     'image_folder', _missing_hint(root))
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
