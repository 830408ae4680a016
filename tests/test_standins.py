"""scripts/make_standins.py: its files at a small --scale, read by the real readers (ours,
NumPy's, Pillow's, the configs' own default paths), with the real counts, skipped when there,
deterministic, and shaped as the real data (lengths, Zipf words, image sides, learnable labels)."""
import collections
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from library.data import images, sequences, sources, text, timeseries
from library.errors import UserError
from scripts import make_standins as m
from tests.conftest import ROOT

SCALE = 0.02


@pytest.fixture(scope='module')
def home(tmp_path_factory):
  root = tmp_path_factory.mktemp('standins')
  lines = []
  records = m.make(str(root), scale=SCALE, seed=0, out=lines.append)
  return root, records, lines


def _scaled(count):
  return max(m.MINIMUM, round(count * SCALE))


def _keras(root, name):
  return os.path.join(root, '.keras', 'datasets', name)


def test_the_full_size_constants_are_the_books_numbers():
  assert (m.MNIST_TRAIN, m.MNIST_TEST) == (60_000, 10_000)
  assert (m.IMDB_TRAIN, m.IMDB_TEST) == (25_000, 25_000)
  assert m.REUTERS_NEWSWIRES == 11_228 == m.REUTERS_TRAIN + m.REUTERS_TEST
  assert (m.REUTERS_TRAIN, m.REUTERS_TEST) == (8_982, 2_246)
  assert int(m.REUTERS_NEWSWIRES * (1 - m.REUTERS_TEST_SPLIT)) == m.REUTERS_TRAIN  # load_data
  assert sum(m.REUTERS_TOPIC_COUNTS) == m.REUTERS_TRAIN
  assert len(m.REUTERS_TOPIC_COUNTS) == m.REUTERS_CLASSES == 46
  assert m.BOSTON_ROWS == 506 and m.BOSTON_FEATURES == 13
  assert m.JENA_ROWS == 420_451
  assert m.CATS_DOGS_PER_CLASS == {'train': 1_000, 'validation': 500, 'test': 500}
  assert m.NIETZSCHE_CHARS == 600_893
  assert m.ACLIMDB_PER_CLASS * 2 == 25_000
  assert (m.GLOVE_WORDS, m.GLOVE_DIM) == (400_000, 100)
  assert 'glove' in m.DATASETS and 'glove' not in m.DEFAULT


def test_every_default_target_is_written_once_and_said(home):
  root, records, lines = home
  assert [r['dataset'] for r in records] == [
      'mnist', 'imdb', 'imdb', 'reuters', 'reuters', 'boston_housing', 'jena', 'cats_dogs',
      'nietzsche', 'aclimdb']
  assert all(r['written'] and r['mb'] > 0 for r in records)
  assert len(lines) == len(records) and all(' MB) in ' in l for l in lines)
  leftovers = [n for _, dirs, files in os.walk(root) for n in dirs + files if '.partial-' in n]
  assert not leftovers


def test_keras_npz_files_read_as_keras_and_our_loaders_read_them(home):
  root, _, _ = home
  n = _scaled
  # MNIST: Keras' keys, uint8 (N, 28, 28), both by np.load and our restricted reader.
  with np.load(_keras(root, 'mnist.npz')) as f:
    assert sorted(f.files) == ['x_test', 'x_train', 'y_test', 'y_train']
    assert f['x_train'].shape == (n(60_000), 28, 28) and f['x_train'].dtype == np.uint8
    assert f['x_test'].shape == (n(10_000), 28, 28) and f['y_test'].dtype == np.uint8
    assert set(np.unique(f['y_train'])) == set(range(10))
  ours = sequences.load_npz_arrays(_keras(root, 'mnist.npz'))
  assert ours['x_train'].shape == (n(60_000), 28, 28)
  # IMDB: ragged lists of ranks in object arrays, int64 labels; Keras' load_data indexing.
  with np.load(_keras(root, 'imdb.npz'), allow_pickle=True) as f:
    assert sorted(f.files) == ['x_test', 'x_train', 'y_test', 'y_train']
    x, y = f['x_train'], f['y_train']
    assert x.dtype == object and x.shape == (n(25_000),) and isinstance(x[0], list)
    assert y.dtype == np.int64 and y.sum() * 2 == len(y)            # balanced
    ranks = np.concatenate([np.asarray(s) for s in x])
    assert ranks.min() >= 1 and ranks.max() <= m.IMDB_WORDS
  imdb = sequences.load_keras_imdb(_keras(root, 'imdb.npz'), num_words=10_000)
  assert len(imdb['train']['inputs']) == len(imdb['test']['inputs']) == n(25_000)
  first = imdb['train']['inputs'][0]
  assert first[0] == sequences.START_CHAR and first.max() < 10_000
  with open(_keras(root, 'imdb_word_index.json'), encoding='utf-8') as f:
    index = json.load(f)
  assert len(index) == m.IMDB_WORDS and sorted(index.values()) == list(range(1, 88_585))
  # Reuters: x, y; load_data's 80/20 split.
  with np.load(_keras(root, 'reuters.npz'), allow_pickle=True) as f:
    assert sorted(f.files) == ['x', 'y'] and f['y'].dtype == np.int64
    total = len(f['x'])
    assert total == n(11_228) and f['y'].max() < 46
  reuters = sequences.load_keras_reuters(_keras(root, 'reuters.npz'), num_words=10_000)
  assert len(reuters['train']['labels']) == int(total * 0.8)
  assert len(reuters['train']['labels']) + len(reuters['test']['labels']) == total
  # Boston: x (rows, 13) and y float64, in the real ranges.
  with np.load(_keras(root, 'boston_housing.npz')) as f:
    assert f['x'].shape == (n(506), 13) and f['x'].dtype == f['y'].dtype == np.float64
    assert 5 <= f['y'].min() and f['y'].max() <= 50 and 3.5 < f['x'][:, 5].mean() < 9
  boston = sequences.load_keras_boston(_keras(root, 'boston_housing.npz'))
  assert boston['train']['inputs'].shape[1] == 13


def test_jena_csv_has_the_real_header_timestamps_and_plausible_weather(home):
  root, _, _ = home
  path = os.path.join(root, 'jena_climate_2009_2016.csv')
  with open(path, encoding='utf-8') as f:
    header, first, second = f.readline(), f.readline(), f.readline()
  assert header.rstrip('\n').split(',') == ['Date Time', *timeseries.JENA_COLUMNS]
  assert first.startswith('01.01.2009 00:10:00,') and second.startswith('01.01.2009 00:20:00,')
  assert re.fullmatch(r'\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d(,-?\d+\.\d\d){14}\n', first)
  series, columns = timeseries.load_csv(path, drop_columns=('Date Time',))
  assert columns == list(timeseries.JENA_COLUMNS)
  assert series.shape == (max(1000, round(420_451 * SCALE)), 14)
  t, p, rho = series[:, 1], series[:, 0], series[:, 10]
  assert -25 < t.min() and t.max() < 38 and 940 < p.mean() < 1030 and 1100 < rho.mean() < 1350
  relative_humidity = series[:, 4]
  assert 0 < relative_humidity.min() and relative_humidity.max() <= 100


def test_cats_and_dogs_read_as_the_config_reads_them(home):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  root, _, _ = home
  folder = os.path.join(root, 'cats_and_dogs_small')
  data = images.load_image_folder(folder, ('train', 'validation', 'test'), ('cats', 'dogs'),
                                  (150, 150))
  per_class = {s: max(4, round(c * SCALE)) for s, c in m.CATS_DOGS_PER_CLASS.items()}
  for split, count in per_class.items():
    assert data[split]['inputs'].shape == (2 * count, 150, 150, 3)
    assert np.bincount(data[split]['labels']).tolist() == [count, count]
  names = sorted(os.listdir(os.path.join(folder, 'validation', 'dogs')),
                 key=lambda n: int(n.split('.')[1]))
  first = per_class['train']
  assert names == [f'dog.{i}.jpg' for i in range(first, first + per_class['validation'])]
  sides = []
  for split in per_class:
    for animal in ('cats', 'dogs'):
      for name in os.listdir(os.path.join(folder, split, animal)):
        with Image.open(os.path.join(folder, split, animal, name)) as image:
          assert image.format == 'JPEG' and image.mode == 'RGB'
          sides.extend(image.size)
  assert 300 <= min(sides) and max(sides) <= 500 and len(set(sides)) > 10
  # Photo-like, not noise: neighbouring pixels alike; the classes' colours differ.
  x = data['train']['inputs'].astype(np.float32)
  assert np.abs(np.diff(x, axis=2)).mean() < 6
  assert x.std() > 20


def test_aclimdb_reads_as_text_folder_with_stanfords_names(home):
  root, _, _ = home
  folder = os.path.join(root, 'aclImdb')
  data = sources.load_text_folder(folder, ('train', 'test'), ('neg', 'pos'))
  count = max(m.MINIMUM, round(12_500 * SCALE))
  for split in ('train', 'test'):
    assert np.bincount(data[split]['labels']).tolist() == [count, count]
    for name, ratings in (('neg', range(1, 5)), ('pos', range(7, 11))):
      names = os.listdir(os.path.join(folder, split, name))
      parsed = [re.fullmatch(r'(\d+)_(\d+)\.txt', n) for n in names]
      assert all(parsed)
      assert sorted(int(p.group(1)) for p in parsed) == list(range(count))
      assert {int(p.group(2)) for p in parsed} <= set(ratings)
  vocab = open(os.path.join(folder, 'imdb.vocab'), encoding='utf-8').read().split('\n')[:-1]
  assert len(vocab) == m.ACLIMDB_VOCAB and vocab[:3] == ['the', 'and', 'a']
  lengths = [len(text.text_to_word_sequence(t)) for t in data['train']['inputs']]
  assert abs(np.mean(lengths) / m.IMDB_MEAN_LENGTH - 1) < 0.2       # 'br' counted too
  assert '<br /><br />' in ''.join(data['train']['inputs'][:50])


def test_nietzsche_has_the_scaled_length_and_reads_as_english_like_text(home):
  root, _, _ = home
  with open(_keras(root, 'nietzsche.txt'), encoding='utf-8') as f:
    corpus = f.read()
  assert len(corpus) == round(600_893 * SCALE)
  words = re.findall(r'[a-z]+', corpus.lower())
  top = collections.Counter(words).most_common(3)
  assert top[0][0] in ('the', 'and', 'a', 'of') and '\n' in corpus and '. ' in corpus
  assert 40 < len(set(corpus)) < 90


def test_statistics_look_real(home):
  root, _, _ = home
  with np.load(_keras(root, 'imdb.npz'), allow_pickle=True) as f:
    x, y = np.concatenate([f['x_train'], f['x_test']]), np.concatenate([f['y_train'],
                                                                       f['y_test']])
  lengths = np.array([len(s) for s in x])
  assert abs(lengths.mean() / m.IMDB_MEAN_LENGTH - 1) < 0.15
  assert np.median(lengths) < lengths.mean() < lengths.max()          # a long right tail
  counts = np.bincount(np.concatenate([np.asarray(s) for s in x]), minlength=m.IMDB_WORDS + 1)
  assert counts[1] > 100 * max(counts[1000], 1) and counts[1000] > 0      # Zipf
  # Learnable: the positive words are more frequent in positive reviews, and the reverse.
  positive, negative = m.sentiment_ranks(m.IMDB_WORDS)
  score = np.array([np.isin(s, positive).sum() - np.isin(s, negative).sum() for s in x])
  assert ((score > 0) == (y == 1))[score != 0].mean() > 0.75
  # Reuters: the two big topics dominate, as the real 3 (earn) and 4 (acq).
  with np.load(_keras(root, 'reuters.npz'), allow_pickle=True) as f:
    topics = np.bincount(f['y'], minlength=46)
  assert set(np.argsort(topics)[-2:]) == {3, 4} and topics[[3, 4]].sum() > 0.45 * topics.sum()
  # MNIST: mostly black, and a nearest-mean classifier already beats chance by far.
  with np.load(_keras(root, 'mnist.npz')) as f:
    xt, yt, xs, ys = (f[k].reshape(len(f[k]), -1).astype(np.float32) if k[0] == 'x' else f[k]
                      for k in ('x_train', 'y_train', 'x_test', 'y_test'))
  assert 0.1 < (xt > 0).mean() < 0.3 and xt.max() == 255
  means = np.stack([xt[yt == c].mean(0) for c in range(10)])
  predicted = np.argmin(((xs[:, None] - means[None]) ** 2).sum(-1), 1)
  assert (predicted == ys).mean() > 0.6


def test_the_configs_default_paths_find_the_files_with_home_at_the_root(home, monkeypatch,
                                                                         load_config):
  root, _, _ = home
  monkeypatch.setenv('HOME', str(root))
  for path, variant, splits in (
      ('configs/mlp/mnist_dense.py', None, ('train', 'test')),
      ('configs/mlp/imdb_holdout.py', None, ('train', 'test')),
      ('configs/mlp/reuters_holdout.py', None, ('train', 'test')),
      ('configs/mlp/boston_kfold.py', None, ('train', 'test')),
      ('configs/recurrent/jena.py', None, ('series',)),
      ('configs/recurrent/imdb_sequences.py', 'folder', ('train', 'test')),
      ('configs/convnets/cats_dogs_small.py', 'smoke', ('train', 'validation', 'test'))):
    config = load_config(path, variant)
    data = sources.load(config.data)
    assert all(len(data[s]['labels']) for s in splits), path
  glove = load_config('configs/recurrent/imdb_glove.py')
  assert os.path.expanduser(glove.data.embedding_file) == os.path.join(root,
                                                                       'glove.6B.100d.txt')
  from projects.generative.text import read_corpus  # pylint: disable=import-outside-toplevel
  corpus, chars = read_corpus(load_config('configs/generative/text_lstm.py').task_config.corpus,
                              True)
  assert len(corpus) == round(600_893 * SCALE) and 30 < len(chars) < 60


def test_a_second_run_skips_what_is_there(home):
  root, _, _ = home
  before = os.path.getmtime(_keras(root, 'mnist.npz'))
  lines = []
  records = m.make(str(root), only=['mnist', 'jena'], scale=SCALE, out=lines.append)
  assert [r['written'] for r in records] == [False, False]
  assert all('exists, skipped' in line for line in lines) and len(lines) == 2
  assert os.path.getmtime(_keras(root, 'mnist.npz')) == before


def test_same_seed_same_bytes_and_another_seed_other_bytes(tmp_path):
  def files(folder, seed):
    m.make(str(tmp_path / folder), only=['boston_housing', 'reuters'], scale=0.002, seed=seed,
           out=lambda _: None)
    return [open(_keras(tmp_path / folder, n), 'rb').read()
            for n in ('boston_housing.npz', 'reuters.npz')]
  assert files('a', 3) == files('b', 3)
  assert all(x != y for x, y in zip(files('a', 3), files('c', 4)))


def test_worker_processes_write_the_same_photos(home, tmp_path, monkeypatch):
  root, _, _ = home
  monkeypatch.setattr(m, 'SERIAL_BELOW', 0)
  m.make(str(tmp_path), only=['cats_dogs'], scale=0.001, workers=2, out=lambda _: None)
  for name in ('train/cats/cat.0.jpg', 'train/dogs/dog.3.jpg'):
    with open(tmp_path / 'cats_and_dogs_small' / name, 'rb') as a, \
        open(root / 'cats_and_dogs_small' / name, 'rb') as b:
      assert a.read() == b.read()


def test_glove_is_opt_in_in_the_format_load_glove_reads_and_covers_the_reviews(home,
                                                                                  tmp_path):
  root, _, _ = home
  assert not os.path.exists(os.path.join(root, 'glove.6B.100d.txt'))
  [record] = m.make(str(tmp_path), only=['glove'], scale=0.01, out=lambda _: None)
  lines = open(record['path'], encoding='utf-8').read().split('\n')
  assert lines[-1] == '' and len(lines) - 1 == 4000
  assert all(len(line.split(' ')) == 101 for line in lines[:-1])
  glove_words = {line.split(' ', 1)[0] for line in lines[:-1]}
  reviews = sources.load_text_folder(os.path.join(root, 'aclImdb'), ('train',),
                                     ('neg', 'pos'))['train']['inputs']
  tokens = [w for r in reviews[:200] for w in text.text_to_word_sequence(r) if w != 'br']
  assert np.mean([w in glove_words for w in tokens]) > 0.6
  word_index = {w: i for i, w in enumerate(m.vocabulary(2000), 1)}
  matrix = text.load_glove(record['path'], word_index, 2000)
  assert matrix.shape == (2000, 100) and (np.abs(matrix[1:]).sum(1) > 0).mean() > 0.99


def test_a_failing_writer_leaves_neither_target_nor_partial(tmp_path, monkeypatch):
  def broken(path, rng, scale):
    with open(path, 'w', encoding='utf-8') as f:
      f.write('half')
    raise RuntimeError('killed midway')
  targets = tuple((d, r, broken if d == 'nietzsche' else w, f) for d, r, w, f in m.TARGETS)
  monkeypatch.setattr(m, 'TARGETS', targets)
  with pytest.raises(RuntimeError):
    m.make(str(tmp_path), only=['nietzsche'], scale=0.01, out=lambda _: None)
  assert os.listdir(tmp_path / '.keras' / 'datasets') == []


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(only=['cifar10']), "--only='cifar10' is not a dataset here; choose from mnist"),
    (dict(only=['mnist,imbd']), "--only='imbd'"),
    (dict(scale=0.0), '--scale=0.0 must be in (0, 1]'),
    (dict(scale=1.5), '--scale=1.5 must be in (0, 1]'),
    (dict(scale=float('nan')), '--scale=nan'),
    (dict(seed=-1), '--seed=-1 must be >= 0'),
])
def test_bad_values_are_one_line_user_errors(tmp_path, kwargs, fragment):
  with pytest.raises(UserError, match=re.escape(fragment)) as error:
    m.make(str(tmp_path / 'out'), **kwargs)
  assert '\n' not in str(error.value)
  assert not os.path.exists(tmp_path / 'out')


def test_the_script_writes_and_refuses_bad_flags_as_one_line(tmp_path):
  def run(*args):
    return subprocess.run([sys.executable, '-m', 'scripts.make_standins', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
  good = run(f'--root={tmp_path}', '--only=boston_housing', '--scale=0.5')
  assert good.returncode == 0, good.stderr
  assert re.fullmatch(r'boston_housing: wrote \S+boston_housing\.npz \(0\.\d MB\) in '
                      r'\d+\.\d s\n', good.stdout)
  bad = run(f'--root={tmp_path}', '--scale=2')
  assert bad.returncode == 2
  assert bad.stderr == 'error: --scale=2.0 must be in (0, 1]: the share of the real counts\n'
