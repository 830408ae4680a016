"""Image-folder competitions: the same task, script and submission as a table's.

  python -m scripts.competition --make=digits --folder=/tmp/digits
  python -m scripts.competition --config=configs/tabular/competition.py:digits \
      --folder=/tmp/digits --workdir=/tmp/digits_run

A folder without train.csv but with a train/ folder is laid out as Kaggle's image-folder
downloads are (Plant Seedlings, and Keras' flow_images_from_directory):
- `train/<class>/<file>`: the labelled images, one folder per class (library/data/images.py's
  image_folder source reads them, decoded and resized to data.image_size once); or, as Kaggle's
  Dogs vs. Cats ships them, one flat train/ whose file names say the class before a dot
  (`train/cat.0.jpg`, `train/dog.0.jpg`);
- `test/<file>`: the images to predict;
- `sample_submission.csv`: the id column (the test files' names) and the target column, in the
  order a submission keeps.
Or, as Kaggle's Digit Recognizer ships it, tables of pixels: train.csv with the target and
pixel0..pixelN-1 (at least 64), test.csv with the pixels (an id column too, or none: then the
sample submission's rows are test.csv's rows, in order); the pixels are images of
data.image_size (or the square they make: 784 is 28 x 28 x 1), uint8, values 0-255 checked.
The classes are the class folders' names (or data.class_names, in that order), or the
target's values, and a submission names them. Nothing is fitted to the training rows (the pixels are scaled by
data.scale), so the folds of one run share one copy of the images; the spec saved with the run
says the image size, the scale and the classes. The model is any image model of the library's
configs: the 5.1 convnet, or a transfer-learning network started from converted weights
(config.model_init, configs/tabular/competition.py:cats_dogs).
"""
import os
import sys

import numpy as np

from library.data import (folders, images as images_lib, pipeline,
                          preprocessing as data_preprocessing)
from library.errors import UserError


def is_image_competition(folder: str) -> bool:
  """A folder of images (train/<class>/), or tables of pixels (train.csv's pixel0..pixelN)."""
  folder = os.path.expanduser(folder)
  if os.path.isfile(os.path.join(folder, 'train.csv')):
    from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
    return bool(pixel_columns(task_lib.csv_columns(os.path.join(folder, 'train.csv'))))
  return os.path.isdir(os.path.join(folder, 'train'))


MIN_PIXELS = 64      # 8 x 8: fewer pixel columns are a table's


def pixel_columns(columns: list[str]) -> list[str]:
  """pixel0, pixel1, ... pixelN-1, all of them (Kaggle's Digit Recognizer, Fashion-MNIST's
  CSVs), in index order; [] where the columns are not such a run of at least MIN_PIXELS."""
  import re  # pylint: disable=import-outside-toplevel
  found = {int(m.group(1)): c for c in columns if (m := re.fullmatch(r'pixel(\d+)', c))}
  if len(found) < MIN_PIXELS or sorted(found) != list(range(len(found))):
    return []
  return [found[i] for i in range(len(found))]


def pixel_shape(count: int, data_config) -> tuple[int, int, int]:
  """(H, W, C) of `count` pixels: data.image_size with as many channels as fill it where that
  fits, else a square of grey (784: 28 x 28 x 1) or of colour (3 x 32 x 32)."""
  height, width = data_config.image_size
  if count % (height * width) == 0 and count // (height * width) in (1, 3):
    return height, width, count // (height * width)
  for channels in (1, 3):
    side = round((count / channels) ** 0.5)
    if side * side * channels == count:
      return side, side, channels
  raise UserError(f'train.csv has {count} pixel columns: neither data.image_size='
                  f'{tuple(data_config.image_size)} (1 or 3 channels) nor a square; set '
                  'data.image_size to the images\' height and width')


def _pixel_images(frame, columns: list[str], shape, path: str) -> np.ndarray:
  """The rows' pixels as uint8 images (N, H, W, C); a value outside 0-255 is a one-line
  error naming its column and row."""
  values = frame[columns].to_numpy()
  if not np.issubdtype(values.dtype, np.number) or np.isnan(values).any() or (
      values.min() < 0 or values.max() > 255):
    bad = ~np.isfinite(values.astype(np.float64, copy=False)) | (values < 0) | (values > 255)
    row, column = np.argwhere(bad)[0] if bad.any() else (0, 0)
    raise UserError(f'{path}: {columns[column]} is {values[row, column]!r} at line {row + 2}; '
                    'pixels are numbers from 0 to 255')
  return values.astype(np.uint8).reshape(len(frame), *shape)


def _flat_files(train_dir: str) -> list[str] | None:
  """The image files of a flat train/ (Kaggle's Dogs vs. Cats: train/cat.0.jpg,
  train/dog.0.jpg), sorted; None where train/ holds class folders."""
  names = os.listdir(train_dir)
  if any(os.path.isdir(os.path.join(train_dir, n)) for n in names):
    return None
  return sorted(n for n in names if n.lower().endswith(images_lib.IMAGE_EXTENSIONS))


def _flat_class(name: str) -> str:
  """A flat train/ file's class: its name up to the first dot (cat.0.jpg is a cat)."""
  return name.split('.', 1)[0]


def class_names(folder: str, data_config) -> list[str]:
  """The classes of train/: its class folders, or in a flat train/ the file names' prefixes
  (cat.0.jpg, dog.0.jpg: cat, dog), sorted; data.class_names, in its order, where given."""
  train_dir = os.path.join(os.path.expanduser(folder), 'train')
  flat = _flat_files(train_dir)
  if flat is None:
    return folders.folder_classes(train_dir, data_config.class_names)
  if not flat:
    raise UserError(f'{train_dir} holds neither class folders nor images')
  unnamed = [n for n in flat if '.' not in os.path.splitext(n)[0]]
  if unnamed:
    raise UserError(f'{train_dir}/{unnamed[0]}: a flat train/ names each image\'s class '
                    f'before a dot (cat.0.jpg, dog.0.jpg), or holds one folder per class '
                    f'({len(unnamed)} files without one)')
  found = sorted({_flat_class(n) for n in flat})
  if data_config.class_names:
    other = sorted(set(found) - set(data_config.class_names))
    if other:
      raise UserError(f'{train_dir} has images of class {other[0]!r}, which '
                      f'data.class_names={tuple(data_config.class_names)} lacks')
    return list(data_config.class_names)
  return found


def _train_images(folder: str, classes: list[str], size) -> dict[str, np.ndarray]:
  """{'inputs': uint8 images, 'labels': class numbers} of train/'s class folders, or of a flat
  train/ whose file names say their classes; an image that does not decode is skipped with a
  warning, as the image_folder source does."""
  train_dir = os.path.join(folder, 'train')
  flat = _flat_files(train_dir)
  if flat is None:
    return images_lib.load_image_folder(folder, ('train',), classes, size)['train']
  code = {c: i for i, c in enumerate(classes)}
  inputs, failed = images_lib.load_images([os.path.join(train_dir, n) for n in flat], size)
  if failed:
    print(f'warning: {len(failed)} training image(s) could not be decoded and were skipped, '
          f'e.g. {failed[0]}', file=sys.stderr, flush=True)
  if inputs is None:
    raise UserError(f'no image of {train_dir} could be decoded')
  skipped = {os.path.basename(f) for f in failed}
  labels = [code[_flat_class(n)] for n in flat if n not in skipped]
  return {'inputs': inputs, 'labels': np.asarray(labels, np.int32)}


def read_folder(folder: str, target: str, id_column: str):
  """(the test files in the sample submission's order, the sample submission) of an image
  competition folder, checked against each other: every mistake a one-line UserError. An id
  is a test file's name, or its name without the extension. For tables of pixels: (test.csv's
  rows in the sample's order, the sample)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  folder = os.path.expanduser(folder)
  if os.path.isfile(os.path.join(folder, 'train.csv')):
    from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
    _, test, sample = task_lib.read_folder(folder, target, id_column)
    if test is None or sample is None:
      raise UserError(f'{folder} needs test.csv and a sample submission to make a submission')
    if id_column:
      where = {v: i for i, v in enumerate(test[id_column])}
      return [where[v] for v in sample[id_column]], sample
    return list(range(len(test))), sample
  test_dir = os.path.join(folder, 'test')
  path = os.path.join(folder, 'sample_submission.csv')
  if not os.path.isdir(test_dir) or not os.path.isfile(path):
    raise UserError(f'{folder} needs test/ (the images to predict) and sample_submission.csv '
                    'to make a submission')
  files = sorted(f for f in os.listdir(test_dir)
                 if f.lower().endswith(images_lib.IMAGE_EXTENSIONS))
  if not files:
    raise UserError(f'{test_dir} holds no images (files ending in '
                    f'{", ".join(images_lib.IMAGE_EXTENSIONS)}): there is nothing to predict')
  try:
    sample = pd.read_csv(path, dtype={id_column: str})
  except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is not a CSV file ({str(e).splitlines()[0]})') from None
  if id_column not in sample:
    raise UserError(f'{path} has no id column {id_column!r} (the test images\' file names); '
                    f'it has {", ".join(map(str, sample.columns))}')
  ids = sample[id_column].tolist()
  if len(set(ids)) != len(ids):
    raise UserError(f'{path}: id {sample[id_column][sample[id_column].duplicated()].iloc[0]!r} '
                    'appears more than once')
  # An id names its file, or the file's name without its extension (Kaggle's Dogs vs. Cats).
  by_name = {f: f for f in files}
  stems = {}
  for f in files:
    stems.setdefault(os.path.splitext(f)[0], []).append(f)
  by_name.update({stem: found[0] for stem, found in stems.items()
                  if len(found) == 1 and stem not in by_name})
  missing = [i for i in ids if i not in by_name]
  if missing:
    raise UserError(f'{path}: id {missing[0]!r} (line {ids.index(missing[0]) + 2}) is not an '
                    f'image of {test_dir} ({len(missing)} such ids)')
  named = [by_name[i] for i in ids]
  unlisted = sorted(set(files) - set(named))
  if unlisted:
    raise UserError(f'{test_dir}/{unlisted[0]} is not in {path} ({len(unlisted)} test images '
                    'are not): a submission must predict every test image')
  return named, sample


def _scaled(config, images: np.ndarray) -> np.ndarray:
  return data_preprocessing.transform_inputs(images, config.data, None)


def load_data(config, split_rows, kind: str) -> pipeline.Datasets:
  """The training images of the class folders as the table task's splits (held out as
  data.validation / data.test ask), scaled; `kind` is the task's 'binary', 'multiclass' or
  'regression'."""
  d, t = config.data, config.task_config.table
  if kind == 'regression':
    raise UserError(f'{d.path} is an image-folder competition: its classes are its folders; '
                    f'task_config.loss={config.task_config.loss} is a regression')
  # What the image_folder source's other settings would change, a competition does not do.
  for key, value, unused in (('max_train', d.max_train, 0), ('one_hot', d.one_hot, False),
                             ('features.module', d.features.module, '')):
    if value != unused:
      raise UserError(f'data.{key}={value!r} is not applied to an image-folder competition '
                      f'(every training image, labels as class numbers, pixels times '
                      f'data.scale, flattened if data.flatten); leave it at {unused!r}')
  if os.path.isfile(os.path.join(os.path.expanduser(d.path), 'train.csv')):
    classes, raw = _pixel_table(config)
  else:
    classes = class_names(d.path, d)
    raw = _train_images(os.path.expanduser(d.path), classes, d.image_size)
  if kind == 'binary' and len(classes) != 2:
    raise UserError(f'task_config.loss=binary_crossentropy needs 2 classes; {d.path} '
                    f'has {len(classes)}: {classes[:6]}')
  rows = split_rows(config, len(raw['labels']))
  splits = {name: {'inputs': _scaled(config, raw['inputs'][r]), 'labels': raw['labels'][r]}
            for name, r in rows.items()}
  spec = {'images': {'size': list(d.image_size), 'scale': float(d.scale),
                     'id': t.id, 'target': t.target}, 'classes': classes}
  # One sigmoid output for two classes, one output a class otherwise, whatever the model
  # config it came from said (the 5.1 convnet's 10).
  model_kwargs = {'num_outputs': 1 if kind == 'binary' else len(classes)}
  return pipeline.Datasets(splits, None, raw['inputs'].shape[1:], model_kwargs=model_kwargs,
                           preprocessing=spec, raw_input_range=(0.0, 255.0))


def _pixel_table(config):
  """(the classes, {'inputs': uint8 images, 'labels': class numbers}) of train.csv's pixel
  columns and target."""
  from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
  d, t = config.data, config.task_config.table
  path = os.path.join(os.path.expanduser(d.path), 'train.csv')
  train, _, _ = task_lib.read_folder(d.path, t.target, t.id)
  columns = pixel_columns([str(c) for c in train.columns])
  others = [c for c in train.columns if c not in columns and c not in (t.target, t.id)]
  if others:
    raise UserError(f'{path} has pixel columns and {others[0]!r}: an image competition\'s '
                    'table holds the target, the pixels and at most an id')
  classes = task_lib.classes_of(config, train[t.target])
  labels = task_lib.encode_labels(config, classes, train[t.target])
  shape = pixel_shape(len(columns), d)
  return classes, {'inputs': _pixel_images(train, columns, shape, path), 'labels': labels}


def test_inputs(config, folder: str, files: list) -> np.ndarray:
  """The test images `files`, as training saw its images; one that does not decode is a
  one-line error (a submission predicts every test image). For tables of pixels, `files` are
  test.csv's rows."""
  table = os.path.join(os.path.expanduser(folder), 'test.csv')
  if os.path.isfile(os.path.join(os.path.expanduser(folder), 'train.csv')):
    from projects.tabular import task as task_lib  # pylint: disable=import-outside-toplevel
    test = task_lib.read_csv(table)
    columns = pixel_columns([str(c) for c in test.columns])
    shape = pixel_shape(len(columns), config.data)
    if not columns or int(np.prod(shape)) != len(columns):
      raise UserError(f'{table} has not the pixel columns train.csv has')
    return _scaled(config, _pixel_images(test.iloc[files], columns, shape, table))
  paths = [os.path.join(os.path.expanduser(folder), 'test', f) for f in files]
  images, failed = images_lib.load_images(paths, config.data.image_size)
  if failed:
    raise UserError(f'test image {failed[0]} cannot be decoded ({len(failed)} such images); '
                    'a submission predicts every test image')
  return _scaled(config, images)
