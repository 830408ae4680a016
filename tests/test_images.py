"""Image folders (book 5.2): decoding and resizing, bad files skipped and counted, the 5.2 model,
and the Kaggle subset script."""
import os

import numpy as np
import pytest
from PIL import Image

from library import train
from library.data import images, pipeline
from library.errors import UserError
from tests.conftest import run_script


def write_image_folder(root, splits=('train', 'validation', 'test'), per_class=20, seed=0,
                       corrupt=True):
  rng = np.random.default_rng(seed)
  for split in splits:
    for label, name in enumerate(('cats', 'dogs')):
      folder = root / split / name
      folder.mkdir(parents=True)
      for i in range(per_class):
        shape = (int(rng.integers(30, 60)), int(rng.integers(30, 60)), 3)
        pixels = rng.integers(0, 120, shape) + 100 * label       # dogs brighter: learnable
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f'{name}.{i}.jpg')
  if corrupt:
    (root / 'train' / 'cats' / 'broken.jpg').write_bytes(b'not an image')
  return str(root)


def test_image_folders_are_decoded_resized_and_bad_files_skipped(tmp_path, capsys):
  root = write_image_folder(tmp_path / 'cd')
  out = images.load_image_folder(root, ('train', 'test'), ('cats', 'dogs'), (32, 40))
  assert out['train']['inputs'].shape == (40, 32, 40, 3)
  assert out['train']['inputs'].dtype == np.uint8
  assert out['train']['labels'].tolist() == [0] * 20 + [1] * 20
  assert '1 image(s)' in capsys.readouterr().err          # the broken one, counted


def test_image_folder_errors_are_one_line(tmp_path):
  with pytest.raises(UserError, match='no such folder'):
    images.load_image_folder(str(tmp_path / 'nowhere'), ('train',), (), (8, 8))
  (tmp_path / 'r' / 'train' / 'cats').mkdir(parents=True)
  (tmp_path / 'r' / 'train' / 'dogs').mkdir(parents=True)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'r' / 'train' / 'cats' / 'a.png')
  with pytest.raises(UserError, match='dogs holds no .jpg'):
    images.load_image_folder(str(tmp_path / 'r'), ('train',), (), (8, 8))


@pytest.mark.parametrize('variant', ['smoke', 'augment,smoke'])
def test_cats_dogs_small_end_to_end(load_config, tmp_path, variant):
  config = load_config('configs/convnets/cats_dogs_small.py', variant)
  config.data.path = write_image_folder(tmp_path / 'cd')
  data = pipeline.prepare(config)
  assert data.splits['train']['inputs'].shape[1:] == (48, 48, 3)
  assert data.splits['train']['inputs'].dtype == np.uint8     # bytes, scaled in the step
  assert float(data.inputs('train').max()) <= 1.0
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(results['test']['loss']) and 'accuracy' in results['validation']


def test_the_5_2_model_has_the_book_parameter_count(load_config):
  import jax  # pylint: disable=import-outside-toplevel
  from library.task import make_model  # pylint: disable=import-outside-toplevel
  model = make_model(load_config('configs/convnets/cats_dogs_small.py').model)
  params = model.init(jax.random.PRNGKey(0), np.zeros((1, 150, 150, 3), np.float32))['params']
  assert sum(a.size for a in jax.tree.leaves(params)) == 3453121


def test_kaggle_subset_script(tmp_path):
  kaggle = tmp_path / 'train'
  kaggle.mkdir()
  for animal in ('cat', 'dog'):
    for i in range(7):
      Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(kaggle / f'{animal}.{i}.jpg')
  out = tmp_path / 'small'
  proc = run_script('scripts.make_cats_dogs_subset', f'--kaggle_train={kaggle}',
                    f'--output={out}', '--sizes=3,2,2')
  assert proc.returncode == 0, proc.stderr
  assert sorted(os.listdir(out / 'validation' / 'dogs')) == ['dog.3.jpg', 'dog.4.jpg']
  again = run_script('scripts.make_cats_dogs_subset', f'--kaggle_train={kaggle}',
                     f'--output={out}', '--sizes=3,2,2')
  assert again.returncode == 2 and 'is not empty' in again.stderr
  too_many = run_script('scripts.make_cats_dogs_subset', f'--kaggle_train={kaggle}',
                        f'--output={tmp_path / "other"}')
  assert too_many.returncode == 2 and 'has no cat.7.jpg' in too_many.stderr
  assert not (tmp_path / 'other').exists()


def test_cats_vs_dogs_from_tfds_resized_and_sliced(load_config, tmp_path):
  """TFDS cats_vs_dogs (photos of varying sizes, one 'train' split) through its mock data:
  resized while read; our three splits read the configured slices of TFDS' 'train'."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  config = load_config('configs/convnets/cats_dogs_small.py', 'tfds,smoke')
  config.data.data_dir = str(tmp_path)
  asked = []
  with tfds.testing.mock_data(num_examples=40):
    mocked = tfds.core.DatasetBuilder.as_dataset

    def spy(self, *args, split=None, **kwargs):
      asked.append(split)
      return mocked(self, *args, split=split, **kwargs)

    tfds.core.DatasetBuilder.as_dataset = spy
    try:
      data = pipeline.prepare(config)
      results = train.train_and_evaluate(config, str(tmp_path / 'run'))
    finally:
      tfds.core.DatasetBuilder.as_dataset = mocked
  assert asked[:3] == ['train[:2000]', 'train[2000:3000]', 'train[3000:4000]']
  # (the mock gives num_examples per split whatever the slice)
  assert {k: v['inputs'].shape for k, v in data.splits.items()} == {
      name: (40, 48, 48, 3) for name in ('train', 'validation', 'test')}
  assert np.isfinite(results['test']['loss'])
  config.data.image_size = ()
  with tfds.testing.mock_data(num_examples=40), pytest.raises(UserError, match='image_size'):
    pipeline.prepare(config)


def test_missing_cats_and_dogs_name_the_kaggle_commands_in_one_line(tmp_path):
  with pytest.raises(UserError) as info:
    images.load_image_folder(str(tmp_path / 'cats_and_dogs_small'), ('train',), (), (32, 32))
  message = str(info.value)
  assert '\n' not in message and 'kaggle competitions download -c dogs-vs-cats' in message
  assert f'--output={tmp_path / "cats_and_dogs_small"}' in message and ':tfds' in message
  with pytest.raises(UserError) as info:    # any other folder: no word of Kaggle
    images.load_image_folder(str(tmp_path / 'flowers'), ('train',), (), (32, 32))
  assert 'kaggle' not in str(info.value).lower()
