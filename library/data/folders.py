"""Folder-per-class layouts (Keras' flow_images_from_directory, aclImdb): root/<split>/<class>/
<file>, for the image_folder and text_folder sources alike."""
import os

from library.errors import UserError


def folder_classes(folder: str, class_names=()) -> list[str]:
  """The classes of a folder-per-class layout: class_names, in its order, or else the
  sub-folders of `folder`, sorted."""
  return list(class_names) or sorted(
      n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))


def class_folder_files(root: str, splits, class_names, extensions: tuple[str, ...],
                       source: str, missing_hint: str):
  """{split: [(label, path), ...]} of a folder-per-class layout: root/<split>/<class>/<file>.

  Classes follow class_names' order (default: the sub-folders, sorted). A missing folder, or a
  class folder without any file of `extensions`, is a UserError.
  """
  if not root:
    raise UserError(f'data.source={source} needs data.path, the folder holding the splits')
  root = os.path.expanduser(root)
  if not os.path.isdir(root):
    raise UserError(f'data.path={root!r}: no such folder ({missing_hint})')
  out = {}
  for split in splits:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
      raise UserError(f'{root} has no {split!r} folder (it has '
                      f'{", ".join(sorted(os.listdir(root))) or "nothing"})')
    classes = folder_classes(folder, class_names)
    if not classes:
      raise UserError(f'{folder} has no class folders')
    out[split] = []
    for label, name in enumerate(classes):
      class_folder = os.path.join(folder, name)
      if not os.path.isdir(class_folder):
        raise UserError(f'{folder} has no class folder {name!r} (data.class_names)')
      files = sorted(f for f in os.listdir(class_folder) if f.lower().endswith(extensions))
      if not files:
        raise UserError(f'class folder {class_folder} holds no {" / ".join(extensions)} file')
      out[split].extend((label, os.path.join(class_folder, f)) for f in files)
  return out
