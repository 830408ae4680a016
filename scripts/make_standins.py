"""Writes stand-ins of the book's datasets: their real file formats at their real sizes, with
generated contents, so that every config can be run and timed at full size without network.

  python -m scripts.make_standins --root=/tmp/standins            # everything but GloVe
  python -m scripts.make_standins --root=/tmp/standins --only glove    # 350 MB, opt-in
  HOME=/tmp/standins python -m scripts.train --config=configs/mlp/imdb_final.py --workdir=/tmp/i
  python -m scripts.make_standins --root=/tmp/small --scale=0.01  # the same code, 1% of the rows

--root is laid out as a home directory, each file at the path a config reads by default:
  .keras/datasets/mnist.npz, imdb.npz (+ imdb_word_index.json), reuters.npz (+
  reuters_word_index.json), boston_housing.npz, nietzsche.txt: Keras' own layouts and dtypes;
  jena_climate_2009_2016.csv: the real header and 'dd.mm.yyyy hh:mm:ss' ten-minute rows;
  cats_and_dogs_small/{train,validation,test}/{cats,dogs}/cat.N.jpg: photo-like JPEGs, 300-500
  px a side; aclImdb/{train,test}/{pos,neg}/ID_RATING.txt and aclImdb/imdb.vocab: Stanford's
  layout; glove.6B.100d.txt: GloVe's text format, its words those of the reviews.
The contents are made up but shaped as the real ones: digit-like strokes on black, Zipf-ranked
words in log-normal lengths, the real skew of Reuters' 46 topics, daily and yearly cycles of
physically consistent weather. Every label is learnable (class-dependent words, strokes,
colours and shapes); no accuracy measured on them means anything about the book's data.

A target that exists is skipped (and said so): delete it to write it again. Each file or
folder is written under a temporary name and renamed into place once complete, so a killed run
leaves no half-written target (at most a .NAME.partial-* beside it). The same --seed and
--scale give the same files, byte for byte.
"""
import concurrent.futures
import functools
import json
import multiprocessing
import os
import shutil
import tempfile
import textwrap
import time
import zipfile
import zlib

from absl import flags
import numpy as np

from library import cli
from library.errors import UserError

# The real files' sizes (the book's figures, and Keras' / the publishers' files).
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000        # book 2.1: 60,000 training, 10,000 test digits
MNIST_SIDE = 28                                 # 28 x 28 grey levels, uint8
IMDB_TRAIN, IMDB_TEST = 25_000, 25_000          # book 3.4: 25,000 + 25,000 reviews, 50/50
IMDB_WORDS = 88_584                             # entries of Keras' imdb_word_index.json
IMDB_MEAN_LENGTH, IMDB_MEDIAN_LENGTH = 238.7, 174   # words per review in Keras' imdb.npz
IMDB_MIN_LENGTH, IMDB_MAX_LENGTH = 10, 2_494
REUTERS_NEWSWIRES = 11_228                      # book 3.5: 11,228 newswires in 46 topics,
REUTERS_TRAIN, REUTERS_TEST = 8_982, 2_246      # split 8,982 / 2,246 by load_data (0.2)
REUTERS_TEST_SPLIT = 0.2                        # keras.datasets.reuters.load_data's default
REUTERS_CLASSES = 46
REUTERS_WORDS = 30_979                          # entries of Keras' reuters_word_index.json
REUTERS_MEAN_LENGTH, REUTERS_MEDIAN_LENGTH = 145.5, 95
REUTERS_MIN_LENGTH, REUTERS_MAX_LENGTH = 2, 2_376
# Reuters' training topics as load_data gives them (8,982 newswires): two topics dominate
# (3: earn, 4: acq), then a long tail; the test split follows the same proportions.
REUTERS_TOPIC_COUNTS = (
    55, 432, 74, 3159, 1949, 17, 48, 16, 139, 101, 124, 390, 49, 172, 26, 20, 444, 39, 66,
    549, 269, 100, 15, 41, 62, 92, 24, 15, 48, 19, 45, 39, 32, 11, 50, 10, 49, 19, 19, 24,
    36, 30, 13, 21, 12, 18)
BOSTON_ROWS, BOSTON_FEATURES = 506, 13          # book 3.6: 404 + 102 rows of 13 features
JENA_ROWS = 420_451                             # book 6.3: ten-minute rows, 2009-2016
JENA_FIRST = '2009-01-01T00:10'                 # its first row, 01.01.2009 00:10:00
CATS_DOGS_PER_CLASS = {'train': 1_000, 'validation': 500, 'test': 500}   # book 5.2: 2,000 /
CATS_DOGS_SIDES = (300, 500)                    # 1,000 / 1,000 of Kaggle's photos
CATS_DOGS_QUALITY = 90
NIETZSCHE_CHARS = 600_893                       # book 8.1: "Corpus length: 600893"
ACLIMDB_PER_CLASS = 12_500                      # book 6.1: aclImdb, 12,500 per class per split
ACLIMDB_VOCAB = 89_527                          # lines of aclImdb/imdb.vocab
GLOVE_WORDS, GLOVE_DIM = 400_000, 100           # book 6.1: glove.6B.100d.txt, 400,000 words

DATASETS = ('mnist', 'imdb', 'reuters', 'boston_housing', 'jena', 'cats_dogs', 'nietzsche',
            'aclimdb', 'glove')
DEFAULT = tuple(d for d in DATASETS if d != 'glove')      # GloVe is 350 MB: asked for by name
MINIMUM = 8            # the fewest rows (examples, reviews, images per folder) a scale leaves
SERIAL_BELOW = 100     # fewer photos than this are written in this process, no workers




def _scaled(count: int, scale: float, minimum: int = MINIMUM) -> int:
  return max(minimum, int(round(count * scale)))


def _rng(seed: int, name: str) -> np.random.Generator:
  """One stream per dataset (and part), independent of which others are written."""
  return np.random.default_rng([seed, zlib.crc32(name.encode())])


# ---------------------------------------------------------------------------------------------
# Words: one made-up vocabulary (the same for every seed, so GloVe covers the reviews of any
# run), ranked by frequency, its head real English function words.

_HEAD = (
    'the and a of to is in it i this that was as for with movie but film on not you are his '
    'have he be one all at by an they who so from like her or just about if has out what some '
    'there good more when very up no time she even my would which only story really see their '
    'had can were me we than much well been get will also into people other do great first '
    'bad most him how because made then them make way could too any after think characters '
    'character watch two films many seen being acting never plot little where best love life '
    'did know over off ever man does here your end still these say scene why while scenes go '
    'such something through should back real those now though years director thing old '
    'actors another work new nothing before funny makes same lot going look few part every '
    'again world cast down things want quite pretty horror young around however take fact '
    'enough thought both big long got may gets between give own right series original action '
    'without must always almost come whole saw feel role point bit interesting music done '
    'might least far since guy script anything minutes probably am far each comedy last '
    'believe kind performance worst tv times anyone far away yet found making our especially '
    'sure day rather trying hard played looking although course woman fun set wonderful '
    'excellent boring awful waste terrible poor beautiful perfect stupid brilliant amazing '
    'horrible dull worse lame mess annoying ridiculous favorite superb enjoyed masterpiece '
    'touching loved fantastic recommend pointless weak avoid disappointing highly').split()
_POSITIVE_REAL = ('great', 'best', 'love', 'wonderful', 'excellent', 'beautiful', 'perfect',
                  'brilliant', 'amazing', 'favorite', 'superb', 'enjoyed', 'masterpiece',
                  'touching', 'loved', 'fantastic', 'recommend', 'highly', 'fun')
_NEGATIVE_REAL = ('bad', 'worst', 'boring', 'awful', 'waste', 'terrible', 'poor', 'stupid',
                  'horrible', 'dull', 'worse', 'lame', 'mess', 'annoying', 'ridiculous',
                  'pointless', 'weak', 'avoid', 'disappointing')
_SENTIMENT_MADE_UP = 260       # more class-dependent words, among ranks 300-6,000
_ONSETS = ('b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gl gr pl pr sc sh '
           'sk sl sm sn sp st str sw th tr wh').split() + ['', '', '']
_VOWELS = 'a e i o u a e i o ea ee oo ou ai ie oa'.split()
_CODAS = ['', '', '', ''] + 'n r s t l m d nd nt st ng ck rt ll ss th sh rd ft'.split()
_VOCABULARY_SEED = 20_240_601


@functools.lru_cache(maxsize=4)
def vocabulary(count: int) -> tuple[str, ...]:
  """The first `count` words by rank (rank r is index r - 1): the same prefix for any count."""
  rng = np.random.default_rng(_VOCABULARY_SEED)
  words = dict.fromkeys(_HEAD)
  batch = 0
  while len(words) < count:
    n = 20_000
    # Frequent words are short: one or two syllables first, up to four in the tail.
    probs = [(0.45, 0.45, 0.1, 0.0), (0.1, 0.55, 0.3, 0.05)][min(batch, 1)]
    syllables = rng.choice(4, n, p=probs) + 1
    onset = rng.integers(0, len(_ONSETS), (n, 4))
    vowel = rng.integers(0, len(_VOWELS), (n, 4))
    coda = rng.integers(0, len(_CODAS), (n, 4))
    for i in range(n):
      word = ''.join(_ONSETS[onset[i, j]] + _VOWELS[vowel[i, j]] + _CODAS[coda[i, j]]
                     for j in range(syllables[i]))
      if len(word) > 1:
        words.setdefault(word)
    batch += 1
  return tuple(words)[:count]


@functools.lru_cache(maxsize=4)
def sentiment_ranks(vocabulary_size: int) -> tuple[np.ndarray, np.ndarray]:
  """(positive, negative) word ranks: real sentiment words plus made-up ones."""
  index = {w: r for r, w in enumerate(vocabulary(len(_HEAD)), 1)}
  rng = np.random.default_rng(_VOCABULARY_SEED + 1)
  made_up = rng.choice(np.arange(300, min(6000, vocabulary_size)), _SENTIMENT_MADE_UP,
                       replace=False)
  half = _SENTIMENT_MADE_UP // 2
  positive = np.concatenate([[index[w] for w in _POSITIVE_REAL], made_up[:half]])
  negative = np.concatenate([[index[w] for w in _NEGATIVE_REAL], made_up[half:]])
  return positive.astype(np.int64), negative.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _zipf_cdf(vocabulary_size: int, exponent: float, offset: float) -> np.ndarray:
  ranks = np.arange(1, vocabulary_size + 1, dtype=np.float64)
  weights = 1.0 / (ranks + offset) ** exponent           # Zipf-Mandelbrot
  cdf = np.cumsum(weights)
  return cdf / cdf[-1]


def zipf_ranks(rng, size: int, vocabulary_size: int, exponent: float = 1.0,
               offset: float = 0.5) -> np.ndarray:
  """`size` word ranks in 1..vocabulary_size, P(rank r) proportional to 1 / (r + offset)^s."""
  cdf = _zipf_cdf(vocabulary_size, exponent, offset)
  ranks = np.searchsorted(cdf, rng.random(size), side='right') + 1
  return np.minimum(ranks, vocabulary_size).astype(np.int64)


def lognormal_lengths(rng, size: int, mean: float, median: float, low: int,
                      high: int) -> np.ndarray:
  sigma = np.sqrt(2 * np.log(mean / median))
  lengths = rng.lognormal(np.log(median), sigma, size)
  return np.clip(np.rint(lengths), low, high).astype(np.int64)


def labelled_documents(rng, labels: np.ndarray, lengths: np.ndarray, vocabulary_size: int,
                       class_words: list[np.ndarray], share: float, aligned: float):
  """Every document's word ranks, concatenated, and the offsets splitting them: Zipf words,
  `share` of them replaced by a class-dependent word (of the document's own class with
  probability `aligned`, else of another class)."""
  total = int(lengths.sum())
  ranks = zipf_ranks(rng, total, vocabulary_size)
  owner = np.repeat(labels, lengths)
  chosen = np.flatnonzero(rng.random(total) < share)
  classes = owner[chosen]
  others = rng.integers(0, len(class_words) - 1, len(chosen))
  classes = np.where(rng.random(len(chosen)) < aligned, classes,
                     others + (others >= classes))            # any class but its own
  for c, words in enumerate(class_words):
    mine = classes == c
    ranks[chosen[mine]] = words[rng.integers(0, len(words), int(mine.sum()))]
  return ranks, np.cumsum(lengths)[:-1]


def _ragged(ranks: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """A 1-D object array of lists of ints: how Keras' imdb.npz / reuters.npz store sequences."""
  pieces = np.split(ranks, offsets)
  out = np.empty(len(pieces), dtype=object)
  for i, piece in enumerate(pieces):
    out[i] = piece.tolist()
  return out


def _write_npz(path: str, arrays) -> None:
  """np.savez_compressed's format, array by array (each made only when written: the ragged
  ones are large as Python lists)."""
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
    for name, make in arrays:
      array = make() if callable(make) else make
      with archive.open(f'{name}.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=True)
      del array


def _write_word_index(path: str, words) -> None:
  with open(path, 'w', encoding='utf-8') as f:
    json.dump({w: r for r, w in enumerate(words, 1)}, f)


# ---------------------------------------------------------------------------------------------
# MNIST: each digit a jittered, affinely distorted stroke skeleton, rendered anti-aliased into
# the 20 x 20 centre of 28 x 28 as the real digits are (black background, white strokes).

_DIGIT_STROKES = (
    [(0.5, 0.04), (0.76, 0.14), (0.88, 0.4), (0.84, 0.7), (0.66, 0.93), (0.42, 0.96),
     (0.2, 0.8), (0.13, 0.5), (0.2, 0.22), (0.36, 0.07), (0.5, 0.04)],
    [(0.36, 0.22), (0.56, 0.04), (0.52, 0.5), (0.47, 0.96)],
    [(0.18, 0.28), (0.3, 0.09), (0.55, 0.03), (0.78, 0.18), (0.74, 0.44), (0.45, 0.7),
     (0.14, 0.95), (0.52, 0.93), (0.88, 0.95)],
    [(0.18, 0.1), (0.58, 0.04), (0.8, 0.2), (0.7, 0.4), (0.42, 0.48), (0.74, 0.58),
     (0.84, 0.8), (0.6, 0.96), (0.18, 0.9)],
    [(0.66, 0.96), (0.66, 0.5), (0.66, 0.04), (0.14, 0.64), (0.5, 0.64), (0.88, 0.64)],
    [(0.82, 0.05), (0.3, 0.05), (0.24, 0.45), (0.55, 0.38), (0.8, 0.55), (0.78, 0.82),
     (0.52, 0.96), (0.18, 0.86)],
    [(0.72, 0.04), (0.42, 0.24), (0.24, 0.6), (0.3, 0.88), (0.55, 0.96), (0.76, 0.78),
     (0.68, 0.55), (0.44, 0.5), (0.26, 0.64)],
    [(0.14, 0.08), (0.5, 0.08), (0.86, 0.08), (0.64, 0.5), (0.4, 0.96)],
    [(0.5, 0.48), (0.26, 0.3), (0.3, 0.1), (0.5, 0.04), (0.7, 0.1), (0.74, 0.3), (0.5, 0.48),
     (0.22, 0.68), (0.3, 0.92), (0.5, 0.97), (0.72, 0.9), (0.78, 0.68), (0.5, 0.48)],
    [(0.74, 0.34), (0.55, 0.48), (0.3, 0.42), (0.25, 0.2), (0.45, 0.04), (0.7, 0.12),
     (0.74, 0.34), (0.7, 0.65), (0.64, 0.96)],
)


def _skeletons() -> tuple[np.ndarray, np.ndarray]:
  """(10, points, 2) skeletons, the shorter padded with their last point, and (10, points):
  which point each padded place copies (its jitter too: padding adds no stroke)."""
  longest = max(len(s) for s in _DIGIT_STROKES)
  points = np.array([s + [s[-1]] * (longest - len(s)) for s in _DIGIT_STROKES], np.float32)
  copies = np.array([np.minimum(np.arange(longest), len(s) - 1) for s in _DIGIT_STROKES])
  return points, copies


def mnist_digits(rng, labels: np.ndarray, chunk: int = 250) -> np.ndarray:
  """uint8 (N, 28, 28) digit-like images of `labels`."""
  skeletons, copies = _skeletons()
  grid = np.stack(np.meshgrid(np.arange(MNIST_SIDE), np.arange(MNIST_SIDE)), -1)
  pixels = grid.reshape(-1, 2).astype(np.float32) + 0.5          # (784, 2) as (x, y)
  out = np.empty((len(labels), MNIST_SIDE, MNIST_SIDE), np.uint8)
  for start in range(0, len(labels), chunk):
    y = labels[start:start + chunk]
    n = len(y)
    jitter = rng.normal(0, 0.03, (n,) + skeletons.shape[1:]).astype(np.float32)
    points = skeletons[y] + jitter[np.arange(n)[:, None], copies[y]]
    points -= 0.5
    angle = rng.normal(0, 0.18, n)
    shear = rng.normal(0, 0.15, n)
    sx, sy = rng.uniform(0.7, 1.05, n), rng.uniform(0.85, 1.08, n)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.stack([np.stack([c * sx, (c * shear - s) * sy], -1),
                       np.stack([s * sx, (s * shear + c) * sy], -1)], -2)   # (n, 2, 2)
    points = np.einsum('nij,npj->npi', matrix.astype(np.float32), points) * 20
    points += (14 + rng.normal(0, 0.8, (n, 1, 2))).astype(np.float32)
    # Squared distance of every pixel to every segment a-b, x and y apart (in place: the
    # (n, 784, segments) temporaries are what this costs).
    ax, ay = points[:, None, :-1, 0], points[:, None, :-1, 1]        # (n, 1, segments)
    abx, aby = points[:, None, 1:, 0] - ax, points[:, None, 1:, 1] - ay
    inverse = 1 / np.maximum(abx * abx + aby * aby, 1e-6)
    dx = pixels[None, :, None, 0] - ax                                # (n, 784, segments)
    dy = pixels[None, :, None, 1] - ay
    t = dx * abx
    t += dy * aby
    t *= inverse
    np.clip(t, 0, 1, out=t)
    dx -= t * abx
    dy -= t * aby
    dx *= dx
    dy *= dy
    dx += dy
    distance = np.sqrt(dx.min(-1))                                    # (n, 784)
    half_width = rng.uniform(0.9, 1.8, (n, 1)).astype(np.float32)
    ink = np.clip(half_width + 0.5 - distance, 0, 1) * rng.uniform(0.85, 1.0, (n, 1))
    out[start:start + n] = np.rint(ink * 255).astype(np.uint8).reshape(n, MNIST_SIDE,
                                                                       MNIST_SIDE)
  return out


def write_mnist(path: str, rng, scale: float) -> None:
  splits = {}
  for split, count in (('train', MNIST_TRAIN), ('test', MNIST_TEST)):
    labels = rng.integers(0, 10, _scaled(count, scale, 10)).astype(np.uint8)
    labels[:10] = np.arange(10)                   # every digit in every split
    labels = rng.permutation(labels)
    splits[split] = (mnist_digits(rng, labels), labels)
  _write_npz(path, [('x_test', splits['test'][0]), ('x_train', splits['train'][0]),
                    ('y_train', splits['train'][1]), ('y_test', splits['test'][1])])


# ---------------------------------------------------------------------------------------------
# IMDB and Reuters as Keras stores them: word ranks (1 = the most frequent word; load_data adds
# start_char and index_from), ragged lists in object arrays, int64 labels.

def write_imdb(path: str, rng, scale: float) -> None:
  positive, negative = sentiment_ranks(IMDB_WORDS)

  def split(count):
    n = _scaled(count, scale)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)     # 50/50
    lengths = lognormal_lengths(rng, n, IMDB_MEAN_LENGTH, IMDB_MEDIAN_LENGTH,
                                IMDB_MIN_LENGTH, IMDB_MAX_LENGTH)
    ranks, offsets = labelled_documents(rng, labels, lengths, IMDB_WORDS,
                                        [negative, positive], share=0.03, aligned=0.7)
    return labels, ranks, offsets

  train, test = split(IMDB_TRAIN), split(IMDB_TEST)
  _write_npz(path, [('x_test', lambda: _ragged(test[1], test[2])),
                    ('x_train', lambda: _ragged(train[1], train[2])),
                    ('y_train', train[0]), ('y_test', test[0])])


def write_imdb_word_index(path: str, rng, scale: float) -> None:
  del rng, scale                     # the index is whole at any scale
  _write_word_index(path, vocabulary(IMDB_WORDS))


def reuters_topics(rng, count: int) -> np.ndarray:
  p = np.asarray(REUTERS_TOPIC_COUNTS, np.float64)
  return rng.choice(REUTERS_CLASSES, count, p=p / p.sum()).astype(np.int64)


def write_reuters(path: str, rng, scale: float) -> None:
  n = _scaled(REUTERS_NEWSWIRES, scale)
  labels = reuters_topics(rng, n)
  lengths = lognormal_lengths(rng, n, REUTERS_MEAN_LENGTH, REUTERS_MEDIAN_LENGTH,
                              REUTERS_MIN_LENGTH, REUTERS_MAX_LENGTH)
  topic_words = [rng.choice(np.arange(20, 3000), 25, replace=False)
                 for _ in range(REUTERS_CLASSES)]
  ranks, offsets = labelled_documents(rng, labels, lengths, REUTERS_WORDS, topic_words,
                                      share=0.06, aligned=0.8)
  _write_npz(path, [('x', lambda: _ragged(ranks, offsets)), ('y', labels)])


def write_reuters_word_index(path: str, rng, scale: float) -> None:
  del rng, scale
  _write_word_index(path, vocabulary(REUTERS_WORDS))


# ---------------------------------------------------------------------------------------------
# Boston housing: 13 features in the real columns' ranges (CRIM ... LSTAT), the price in k$
# (5 to 50, capped at 50 as the real one) rising with rooms and falling with LSTAT.

def write_boston(path: str, rng, scale: float) -> None:
  n = _scaled(BOSTON_ROWS, scale, 10)
  rooms = np.clip(rng.normal(6.28, 0.7, n), 3.56, 8.78)
  lstat = np.clip(rng.lognormal(np.log(11.4), 0.55, n) - 0.9 * (rooms - 6.28), 1.73, 37.97)
  x = np.stack([
      np.clip(rng.lognormal(np.log(0.26), 1.7, n), 0.00632, 88.98),          # CRIM
      np.where(rng.random(n) < 0.74, 0.0, rng.choice([12.5, 20, 25, 40, 80, 95], n)),  # ZN
      np.clip(rng.normal(11.1, 6.9, n), 0.46, 27.74),                       # INDUS
      (rng.random(n) < 0.07).astype(np.float64),                            # CHAS
      np.clip(rng.normal(0.555, 0.116, n), 0.385, 0.871),                   # NOX
      rooms,                                                                # RM
      np.clip(100 - rng.exponential(31, n), 2.9, 100.0),                    # AGE
      np.clip(rng.lognormal(np.log(3.2), 0.5, n), 1.13, 12.13),             # DIS
      rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 24], n,
                 p=[.04, .05, .08, .22, .23, .05, .03, .04, .26]).astype(np.float64),  # RAD
      np.clip(rng.normal(408, 168, n), 187, 711).round(),                   # TAX
      np.clip(rng.normal(18.46, 2.16, n), 12.6, 22.0),                      # PTRATIO
      np.where(rng.random(n) < 0.7, 396.9, np.clip(rng.normal(340, 90, n), 0.32, 396.9)),
      lstat,                                                                # LSTAT
  ], 1).round(4)
  price = 22.5 + 6.5 * (rooms - 6.28) - 0.55 * (lstat - 12.65) - 4 * (x[:, 4] - 0.555) \
      + rng.normal(0, 3.2, n)
  y = np.clip(price, 5.0, 50.0).round(1)
  _write_npz(path, [('x', x.astype(np.float64)), ('y', y.astype(np.float64))])


# ---------------------------------------------------------------------------------------------
# Text numbers written without a Python loop per value: every value a fixed-width field of
# bytes, the unused places 0, dropped at the end (420,451 x 14 values in about a second).

def number_bytes(values: np.ndarray, decimals: int, int_digits: int,
                 strip_zeros: bool = False) -> np.ndarray:
  """uint8 (..., 2 + int_digits + decimals): '-', digits, '.', decimals, padding as 0."""
  scaled = np.minimum(np.rint(np.abs(values) * 10.0 ** decimals).astype(np.int64),
                      10 ** (int_digits + decimals) - 1)
  powers = 10 ** np.arange(int_digits + decimals - 1, -1, -1, dtype=np.int64)
  digits = (scaled[..., None] // powers) % 10
  chars = (digits + ord('0')).astype(np.uint8)
  leading = np.cumsum(digits[..., :int_digits], -1) == 0
  leading[..., -1] = False                       # 0.5, not .5
  chars[..., :int_digits][leading] = 0
  dot = np.full(values.shape + (1,), ord('.'), np.uint8)
  if strip_zeros:                                # 0.3344, not 0.334400; 2, not 2.000000
    trailing = np.cumsum(digits[..., int_digits:][..., ::-1], -1)[..., ::-1] == 0
    chars[..., int_digits:][trailing] = 0
    dot[trailing[..., :1]] = 0
  sign = np.where((values < 0) & (scaled > 0), ord('-'), 0).astype(np.uint8)[..., None]
  return np.concatenate([sign, chars[..., :int_digits], dot, chars[..., int_digits:]], -1)


def _joined(fields: np.ndarray, separator: str) -> np.ndarray:
  """(rows, values, width) fields -> (rows, values * (width + 1)), separated, lines ended."""
  sep = np.full(fields.shape[:-1] + (1,), ord(separator), np.uint8)
  sep[:, -1] = ord('\n')
  return np.concatenate([fields, sep], -1).reshape(len(fields), -1)


def _packed(*columns: np.ndarray) -> bytes:
  table = np.concatenate(columns, 1).ravel()
  return table[table != 0].tobytes()


# ---------------------------------------------------------------------------------------------
# Jena: yearly and daily temperature cycles with days-long weather swings, the 13 other
# measures derived as the station's instruments relate them (saturation pressure, dew point,
# potential temperature, density...), two decimals as the real file.

def _red_noise(rng, rows: int, std: float, steps: float) -> np.ndarray:
  """AR(1) noise of standard deviation `std`, correlated over about `steps` rows."""
  from scipy.signal import lfilter  # pylint: disable=import-outside-toplevel
  a = np.exp(-1.0 / steps)
  noise = rng.standard_normal(rows) * std * np.sqrt(1 - a * a)
  return lfilter([1.0], [1.0, -a], noise, zi=[a * rng.normal(0, std)])[0]


def jena_table(rng, rows: int) -> np.ndarray:
  """(rows, 14) float64 in the order of JENA_COLUMNS."""
  days = (np.arange(rows) + 1) / 144.0                  # since 01.01.2009 00:00
  season = np.cos(2 * np.pi * (days - 20) / 365.25)     # 1 in late January
  summer = 0.5 - 0.5 * season
  daily = np.cos(2 * np.pi * ((days % 1) * 24 - 15) / 24)  # 1 at 3 pm
  t = (9.45 - 9.0 * season + (2.5 + 2.5 * summer) * daily + _red_noise(rng, rows, 3.6, 430)
       + _red_noise(rng, rows, 0.7, 12))
  t = np.clip(t, -23.0, 37.3)
  p = 989.2 + _red_noise(rng, rows, 7.8, 400) + 0.4 * np.cos(4 * np.pi * days)
  rh = np.clip(76 + 7 * season - (7 + 10 * summer) * daily + _red_noise(rng, rows, 10, 150),
               12.95, 100.0)
  vp_max = 6.1078 * np.exp(17.27 * t / (t + 237.3))
  vp_act = np.minimum(vp_max * rh / 100, 28.3)          # dew points stay below 23 degC
  rh = 100 * vp_act / vp_max
  g = np.log(vp_act / 6.1078)
  wv = np.clip(2.1 * np.exp(_red_noise(rng, rows, 0.55, 36) - 0.15), 0.0, 14.6)
  table = np.stack([
      p,                                                  # p (mbar)
      t,                                                  # T (degC)
      (t + 273.15) * (1000 / p) ** 0.2857,                # Tpot (K)
      237.3 * g / (17.27 - g),                            # Tdew (degC)
      rh,                                                 # rh (%)
      vp_max,                                             # VPmax (mbar)
      vp_act,                                             # VPact (mbar)
      vp_max - vp_act,                                    # VPdef (mbar)
      622 * vp_act / (p - 0.378 * vp_act),                # sh (g/kg)
      1000 * vp_act / p,                                  # H2OC (mmol/mol)
      p * 100 / (287.05 * (t + 273.15)) * 1000,           # rho (g/m**3)
      wv,                                                 # wv (m/s)
      np.clip(wv * (1.45 + 0.3 * np.abs(rng.standard_normal(rows))) + 0.1, 0, 23.5),
      (205 + _red_noise(rng, rows, 85, 72)) % 360,        # wd (deg)
  ], 1)
  return table


def jena_timestamps(rows: int) -> np.ndarray:
  """uint8 (rows, 19): 'dd.mm.yyyy hh:mm:ss', ten minutes apart from 01.01.2009 00:10:00."""
  stamps = np.datetime64(JENA_FIRST, 'm') + 10 * np.arange(rows).astype('timedelta64[m]')
  years = stamps.astype('datetime64[Y]')
  months = stamps.astype('datetime64[M]')
  days = stamps.astype('datetime64[D]')
  minutes = (stamps - days).astype(np.int64)
  fields = (((days - months).astype(np.int64) + 1, 2, '.'),
            ((months - years).astype(np.int64) + 1, 2, '.'),
            (years.astype(np.int64) + 1970, 4, ' '),
            (minutes // 60, 2, ':'), (minutes % 60, 2, ':'), (np.zeros(rows, np.int64), 2, ''))
  out = []
  for value, width, after in fields:
    powers = 10 ** np.arange(width - 1, -1, -1)
    out.append(((value[:, None] // powers) % 10 + ord('0')).astype(np.uint8))
    if after:
      out.append(np.full((rows, 1), ord(after), np.uint8))
  return np.concatenate(out, 1)


def write_jena(path: str, rng, scale: float) -> None:
  from library.data.timeseries import JENA_COLUMNS  # pylint: disable=import-outside-toplevel
  rows = _scaled(JENA_ROWS, scale, 1000)
  table = jena_table(rng, rows)
  stamps = jena_timestamps(rows)
  with open(path, 'wb') as f:
    f.write((','.join(('Date Time',) + JENA_COLUMNS) + '\n').encode())
    for start in range(0, rows, 50_000):
      part = slice(start, start + 50_000)
      comma = np.full((len(stamps[part]), 1), ord(','), np.uint8)
      f.write(_packed(stamps[part], comma,
                      _joined(number_bytes(table[part], 2, 4), ',')))


# ---------------------------------------------------------------------------------------------
# Cats and dogs: a blurred room (gradient, furniture) behind an animal drawn from ellipses and
# triangles: cats with pointed ears, slit eyes and their coat colours, dogs with hanging ears,
# a snout and theirs; lighting, coat texture and sensor noise; JPEG at quality 90.

_COATS = {
    'cat': ((222, 138, 62), (130, 128, 124), (40, 38, 38), (236, 232, 222), (190, 160, 120),
            (95, 82, 70)),
    'dog': ((150, 98, 52), (212, 170, 96), (60, 45, 35), (225, 215, 195), (110, 70, 40),
            (175, 120, 70)),
}


def _photo(rng, animal: str):
  """A PIL RGB image of random size, CATS_DOGS_SIDES px a side."""
  from PIL import Image, ImageDraw, ImageFilter  # pylint: disable=import-outside-toplevel
  width, height = (int(v) for v in rng.integers(CATS_DOGS_SIDES[0], CATS_DOGS_SIDES[1] + 1, 2))
  # The room: a gradient between two muted colours and furniture, out of focus (drawn at a
  # quarter of the size, blurred, enlarged: the same look, a sixteenth of the pixels).
  small = (width // 4, height // 4)
  c1, c2 = rng.uniform(35, 225, (2, 3)).astype(np.float32)
  c1, c2 = (c1 + c1.mean()) / 2, (c2 + c2.mean()) / 2
  angle = rng.uniform(0, 2 * np.pi)
  ramp = (np.cos(angle) * np.arange(small[0], dtype=np.float32)[None] / small[0]
          + np.sin(angle) * np.arange(small[1], dtype=np.float32)[:, None] / small[1])
  ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
  image = Image.fromarray((c1 + (c2 - c1) * ramp[..., None]).astype(np.uint8))
  draw = ImageDraw.Draw(image)
  for _ in range(int(rng.integers(2, 6))):
    x0, y0 = rng.uniform(-0.2, 1.0, 2) * small
    x1, y1 = (x0, y0) + rng.uniform(0.15, 0.7, 2) * small
    colour = rng.uniform(30, 230, 3)
    colour = tuple(int(v) for v in (colour + colour.mean()) / 2)
    (draw.rectangle if rng.random() < 0.6 else draw.ellipse)([x0, y0, x1, y1], fill=colour)
  image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.5))))
  image = image.resize((width, height), Image.BILINEAR)
  # The animal, on its own layer.
  coat = np.asarray(_COATS[animal][int(rng.integers(len(_COATS[animal])))], np.float32)
  coat = tuple(int(v) for v in np.clip(coat + rng.normal(0, 12, 3), 0, 255)) + (255,)
  dark = tuple(int(v * 0.6) for v in coat[:3]) + (255,)
  layer = Image.new('RGBA', (width, height), coat[:3] + (0,))   # no dark fringe
  d = ImageDraw.Draw(layer)
  size = float(rng.uniform(0.5, 0.85)) * min(width, height)
  cx = float(rng.uniform(0.35, 0.65)) * width
  cy = float(rng.uniform(0.4, 0.6)) * height
  facing = 1 if rng.random() < 0.5 else -1
  head_r = size * (0.22 if animal == 'cat' else 0.26)
  body_w, body_h = (size * 0.55, size * 0.3) if animal == 'cat' else (size * 0.6, size * 0.36)
  bx, by = cx - facing * size * 0.15, cy + size * 0.2
  d.ellipse([bx - body_w, by - body_h, bx + body_w, by + body_h], fill=coat)
  tail = [(bx - facing * body_w * 0.9, by), (bx - facing * body_w * 1.3, by - body_h * 1.4)]
  d.line(tail, fill=coat, width=max(2, int(size * (0.05 if animal == 'cat' else 0.08))))
  hx, hy = cx + facing * size * 0.25, cy - size * 0.12
  if animal == 'cat':               # pointed ears above the head
    for side in (-1, 1):
      base = hx + side * head_r * 0.55
      d.polygon([(base - head_r * 0.4, hy - head_r * 0.6), (base + head_r * 0.4,
                 hy - head_r * 0.6), (base + side * head_r * 0.15, hy - head_r * 1.45)],
                fill=coat)
  d.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=coat)
  if animal == 'dog':               # hanging ears beside the head, a snout, a black nose
    for side in (-1, 1):
      ex = hx + side * head_r * 0.95
      d.ellipse([ex - head_r * 0.3, hy - head_r * 0.5, ex + head_r * 0.3, hy + head_r * 0.9],
                fill=dark)
    sx, sy = hx + facing * head_r * 0.35, hy + head_r * 0.4
    light = tuple(min(255, int(v * 1.2) + 20) for v in coat[:3]) + (255,)
    d.ellipse([sx - head_r * 0.5, sy - head_r * 0.35, sx + head_r * 0.5, sy + head_r * 0.4],
              fill=light)
    d.ellipse([sx + facing * head_r * 0.1 - head_r * 0.17, sy - head_r * 0.3,
               sx + facing * head_r * 0.1 + head_r * 0.17, sy], fill=(20, 18, 18, 255))
    for side in (-1, 1):
      ex, ey = hx + side * head_r * 0.4, hy - head_r * 0.25
      d.ellipse([ex - head_r * 0.11, ey - head_r * 0.11, ex + head_r * 0.11,
                 ey + head_r * 0.11], fill=(45, 30, 20, 255))
  else:                             # slit eyes, a small pink nose
    iris = (150, 190, 60, 255) if rng.random() < 0.5 else (215, 180, 50, 255)
    for side in (-1, 1):
      ex, ey = hx + side * head_r * 0.42, hy - head_r * 0.1
      d.ellipse([ex - head_r * 0.17, ey - head_r * 0.12, ex + head_r * 0.17,
                 ey + head_r * 0.12], fill=iris)
      d.ellipse([ex - head_r * 0.04, ey - head_r * 0.11, ex + head_r * 0.04,
                 ey + head_r * 0.11], fill=(15, 15, 15, 255))
    d.polygon([(hx - head_r * 0.1, hy + head_r * 0.22), (hx + head_r * 0.1, hy + head_r * 0.22),
               (hx, hy + head_r * 0.34)], fill=(210, 130, 140, 255))
  layer = layer.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.4))))
  image = Image.alpha_composite(image.convert('RGBA'), layer).convert('RGB')
  # Light falling across the scene, coat and wall texture, sensor noise (in luminance).
  pixels = np.asarray(image, np.float32)
  light = rng.normal(0, 1, (height // 40 + 2, width // 40 + 2)).astype(np.float32)
  light = np.asarray(Image.fromarray(light, 'F').resize((width, height), Image.BICUBIC))
  texture = rng.normal(0, 1, (height // 4 + 2, width // 4 + 2)).astype(np.float32)
  texture = np.asarray(Image.fromarray(texture, 'F').resize((width, height), Image.BILINEAR))
  gain = 1 + 0.07 * light + 0.03 * texture
  grain = rng.standard_normal((height, width), dtype=np.float32) * 2.5
  pixels *= gain[..., None]
  pixels += grain[..., None]
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_photos(jobs) -> None:
  """[(path, 'cat' or 'dog', seed sequence)]: what one worker process writes."""
  for path, animal, seed in jobs:
    _photo(np.random.default_rng(seed), animal).save(path, 'JPEG', quality=CATS_DOGS_QUALITY)


def write_cats_dogs(folder: str, rng, scale: float, workers: int = 0) -> None:
  base = int(rng.integers(2 ** 32))
  jobs = []
  for animal in ('cat', 'dog'):
    first = 0
    for split, count in CATS_DOGS_PER_CLASS.items():
      n = _scaled(count, scale, 4)
      os.makedirs(os.path.join(folder, split, f'{animal}s'))
      for i in range(first, first + n):        # Kaggle's numbering, as make_cats_dogs_subset
        jobs.append((os.path.join(folder, split, f'{animal}s', f'{animal}.{i}.jpg'), animal,
                     (base, int(animal == 'dog'), i)))
      first += n
  workers = workers or len(os.sched_getaffinity(0))
  if workers == 1 or len(jobs) < SERIAL_BELOW:
    write_photos(jobs)
    return
  # spawn: a forked copy of a process that imported JAX (tests, notebooks) may deadlock.
  chunks = [jobs[i:i + 25] for i in range(0, len(jobs), 25)]
  with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context('spawn')) as pool:
    for future in concurrent.futures.as_completed([pool.submit(write_photos, c)
                                                   for c in chunks]):
      future.result()


# ---------------------------------------------------------------------------------------------
# Text: Nietzsche-like prose, IMDB-like reviews, GloVe vectors of the same words.

def _display(words) -> tuple[np.ndarray, np.ndarray]:
  """Object arrays of the words as written mid-sentence and at a sentence's start."""
  plain = np.array(['I' if w == 'i' else w for w in words], dtype=object)
  capital = np.array([w.capitalize() for w in words], dtype=object)
  return plain, capital


def _sentences(rng, ranks: np.ndarray, starts: np.ndarray, words, mean_sentence: float,
               endings, break_mark: str = '', break_share: float = 0.0,
               wraps=()) -> np.ndarray:
  """Each word (rank) as written, with what follows it: capitals after a sentence's end,
  commas, end marks, paragraph breaks; `starts` marks the first word of each document;
  `wraps`: (before, after, share): that share of the words written as before + word + after."""
  plain, capital = _display(words)
  n = len(ranks)
  last = np.roll(starts, -1)
  last[-1] = True
  end = (rng.random(n) < 1 / mean_sentence) | last
  begin = np.roll(end, 1) | starts
  begin[0] = True
  text = np.where(begin, capital[ranks - 1], plain[ranks - 1])
  for before, after, share in wraps:
    chosen = np.flatnonzero(rng.random(n) < share)
    text[chosen] = before + text[chosen] + after
  marks = np.array(endings, dtype=object)[rng.integers(0, len(endings), n)]
  suffix = np.where(end, marks, np.where(rng.random(n) < 0.07, ',', ''))
  gap = np.where(end & ~last & (rng.random(n) < break_share), break_mark, ' ')
  gap = np.where(last, '', gap)
  return text + suffix + gap


# Nietzsche's translation quotes, italicises (_word_), adds notes ([1]) and foreign words.
_NIETZSCHE_WRAPS = (('"', '"', 0.01), ('(', ')', 0.005), ('_', '_', 0.004), ('', "'s", 0.003),
                    ('', ' [1]', 0.0005), ('', ' = ', 0.0002))
_NIETZSCHE_FOREIGN = ('später', 'cæsar', 'élan', 'noël', 'rené')


def write_nietzsche(path: str, rng, scale: float) -> None:
  """English-like aphorisms, numbered, wrapped at about 70 columns: exactly the scaled number
  of characters (and its 57 distinct ones, once lowercased, as the book's corpus)."""
  target = _scaled(NIETZSCHE_CHARS, scale, 1000)
  words = vocabulary(12_000)
  count = target // 4 + 200                     # more words than the characters need
  ranks = zipf_ranks(rng, count, len(words), exponent=1.1, offset=1.5)
  sizes = np.clip(rng.lognormal(np.log(120), 0.7, count // 12 + 1), 12, 1500).astype(int)
  firsts = np.cumsum(sizes)
  firsts = np.concatenate([[0], firsts[firsts < count]])
  starts = np.zeros(count, bool)
  starts[firsts] = True
  pieces = _sentences(rng, ranks, starts, words, 22,
                      ('.', '.', '.', '.', '?', '!', ';--', '.--', ':'), wraps=_NIETZSCHE_WRAPS)
  foreign = np.flatnonzero(rng.random(count) < 0.0004)
  pieces[foreign] = np.array(_NIETZSCHE_FOREIGN, dtype=object)[
      rng.integers(0, len(_NIETZSCHE_FOREIGN), len(foreign))] + ' '
  parts, length = ['PREFACE\n\n\n'], len('PREFACE\n\n\n')
  for number, piece in enumerate(np.split(pieces, firsts[1:]), 1):
    if length >= target:
      break
    paragraph = textwrap.fill(f'{number}. ' + ''.join(piece.tolist()),
                              width=int(rng.integers(66, 74)))
    parts.append(paragraph + '\n\n')
    length += len(paragraph) + 2
  if length < target:
    raise AssertionError('too few words drawn for the corpus')   # never: 4 characters a word
  with open(path, 'w', encoding='utf-8', newline='\n') as f:
    f.write(''.join(parts)[:target])


def _reviews(rng, labels: np.ndarray, words) -> list[str]:
  """One IMDB-like review per label (0 negative, 1 positive), lengths and words as imdb.npz."""
  positive, negative = sentiment_ranks(len(words))
  lengths = lognormal_lengths(rng, len(labels), IMDB_MEAN_LENGTH, IMDB_MEDIAN_LENGTH,
                              IMDB_MIN_LENGTH, IMDB_MAX_LENGTH)
  ranks, offsets = labelled_documents(rng, labels, lengths, len(words), [negative, positive],
                                      share=0.03, aligned=0.7)
  starts = np.zeros(len(ranks), bool)
  starts[np.concatenate([[0], offsets])] = True
  pieces = _sentences(rng, ranks, starts, words, 17, ('.', '.', '.', '.', '!', '?', '...'),
                      '<br /><br />', 0.2)
  return [''.join(p) for p in np.split(pieces, offsets)]


def write_aclimdb(folder: str, rng, scale: float) -> None:
  words = vocabulary(ACLIMDB_VOCAB)
  per_class = _scaled(ACLIMDB_PER_CLASS, scale)
  for split in ('train', 'test'):
    for label, name, ratings in ((0, 'neg', (1, 2, 3, 4)), (1, 'pos', (7, 8, 9, 10))):
      os.makedirs(os.path.join(folder, split, name))
      texts = _reviews(rng, np.full(per_class, label, np.int64), words)
      stars = rng.choice(ratings, per_class, p=(0.4, 0.2, 0.2, 0.2) if label == 0
                         else (0.2, 0.2, 0.2, 0.4))
      for i, (text, star) in enumerate(zip(texts, stars)):
        with open(os.path.join(folder, split, name, f'{i}_{star}.txt'), 'w',
                  encoding='utf-8') as f:
          f.write(text)
  with open(os.path.join(folder, 'imdb.vocab'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(words) + '\n')


def write_glove(path: str, rng, scale: float) -> None:
  count = _scaled(GLOVE_WORDS, scale, 100)
  words = list(vocabulary(count))
  for i, mark in zip((1, 2, 8, 9, 10, 14), (',', '.', '"', "'s", '(', ')')):   # as GloVe's
    words.insert(i, mark)                                                    # head
  words = words[:count]
  positive, negative = sentiment_ranks(ACLIMDB_VOCAB)
  direction = rng.normal(0, 1, GLOVE_DIM)
  direction /= np.linalg.norm(direction)
  polarity = {}
  vocab = vocabulary(ACLIMDB_VOCAB)
  for ranks, sign in ((positive, 1.0), (negative, -1.0)):
    polarity.update({vocab[r - 1]: sign for r in ranks})
  with open(path, 'wb') as f:
    for start in range(0, count, 10_000):
      chunk = words[start:start + 10_000]
      vectors = rng.normal(0, 0.4, (len(chunk), GLOVE_DIM))
      vectors += np.array([polarity.get(w, 0.0) for w in chunk])[:, None] * 2.5 * direction
      magnitude = np.abs(vectors)            # five significant digits, as GloVe's text file
      vectors = np.where(magnitude >= 1, np.round(vectors, 4),
                         np.where(magnitude >= 0.1, np.round(vectors, 5), np.round(vectors, 6)))
      names = np.array([w.encode() for w in chunk])
      names = np.frombuffer(names.tobytes(), np.uint8).reshape(len(chunk), -1)
      space = np.full((len(chunk), 1), ord(' '), np.uint8)
      f.write(_packed(names, space, _joined(number_bytes(vectors, 6, 1, strip_zeros=True),
                                            ' ')))


# ---------------------------------------------------------------------------------------------
# The targets: (dataset, path under the root, writer, folder?).

TARGETS = (
    ('mnist', '.keras/datasets/mnist.npz', write_mnist, False),
    ('imdb', '.keras/datasets/imdb.npz', write_imdb, False),
    ('imdb', '.keras/datasets/imdb_word_index.json', write_imdb_word_index, False),
    ('reuters', '.keras/datasets/reuters.npz', write_reuters, False),
    ('reuters', '.keras/datasets/reuters_word_index.json', write_reuters_word_index, False),
    ('boston_housing', '.keras/datasets/boston_housing.npz', write_boston, False),
    ('jena', 'jena_climate_2009_2016.csv', write_jena, False),
    ('cats_dogs', 'cats_and_dogs_small', write_cats_dogs, True),
    ('nietzsche', '.keras/datasets/nietzsche.txt', write_nietzsche, False),
    ('aclimdb', 'aclImdb', write_aclimdb, True),
    ('glove', 'glove.6B.100d.txt', write_glove, False),
)


def _size(path: str) -> int:
  if not os.path.isdir(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def check(root: str, only, scale: float, seed: int) -> tuple[str, tuple[str, ...]]:
  """The root (~ expanded) and the datasets to write, or a one-line UserError."""
  if not root:
    raise UserError('--root is required: the folder to write the stand-ins into')
  root = os.path.abspath(os.path.expanduser(root))
  if os.path.exists(root) and not os.path.isdir(root):
    raise UserError(f'--root={root} is a file, not a folder')
  names = []
  for value in only or DEFAULT:
    for name in str(value).split(','):
      name = name.strip()
      if name not in DATASETS:
        raise UserError(f'--only={name!r} is not a dataset here; choose from '
                        f'{", ".join(DATASETS)}')
      if name not in names:
        names.append(name)
  if not 0 < scale <= 1:           # NaN fails too
    raise UserError(f'--scale={scale} must be in (0, 1]: the share of the real counts')
  if seed < 0:
    raise UserError(f'--seed={seed} must be >= 0')
  return root, tuple(n for n in DATASETS if n in names)


def make(root: str, only=(), scale: float = 1.0, seed: int = 0, workers: int = 0,
         out=print) -> list[dict]:
  """Writes the stand-ins of `only` (default: all but glove) under `root`; one record per
  target: {'dataset', 'path', 'written' (False: it existed), 'mb', 'seconds'}."""
  root, names = check(root, only, scale, seed)
  records = []
  for dataset, relative, writer, is_folder in TARGETS:
    if dataset not in names:
      continue
    path = os.path.join(root, relative)
    if os.path.exists(path):
      out(f'{dataset}: {path} exists, skipped (delete it to write it again)')
      records.append(dict(dataset=dataset, path=path, written=False, mb=_size(path) / 1e6,
                          seconds=0.0))
      continue
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    rng = _rng(seed, relative)
    if is_folder:
      partial = tempfile.mkdtemp(prefix=f'.{name}.partial-', dir=folder)
      os.rmdir(partial)                    # the writer makes it, with its sub-folders
    else:
      handle, partial = tempfile.mkstemp(prefix=f'.{name}.partial-', dir=folder)
      os.close(handle)
    try:
      if writer is write_cats_dogs:
        writer(partial, rng, scale, workers)
      else:
        writer(partial, rng, scale)
      if not is_folder:
        os.chmod(partial, 0o644)           # mkstemp's file is 0600
      os.replace(partial, path)
    except BaseException:
      if os.path.isdir(partial):
        shutil.rmtree(partial, ignore_errors=True)
      elif os.path.exists(partial):
        os.remove(partial)
      raise
    seconds = time.perf_counter() - start
    mb = _size(path) / 1e6
    out(f'{dataset}: wrote {path} ({mb:.1f} MB) in {seconds:.1f} s')
    records.append(dict(dataset=dataset, path=path, written=True, mb=mb, seconds=seconds))
  return records


def _define_flags() -> None:
  """Defined only when run as a script: importing this module (tests, worker processes)
  leaves absl's global flags alone (other scripts define --only and --seed too)."""
  flags.DEFINE_string('root', None, 'the folder to write into, laid out as a home directory '
                      '(HOME=ROOT makes the configs read the stand-ins)')
  flags.DEFINE_multi_string('only', [], f'a dataset to write (repeatable): '
                            f'{", ".join(DATASETS)}; default: all but glove')
  flags.DEFINE_float('scale', 1.0, 'every count (rows, reviews, images, characters) times '
                     f'this, in (0, 1]; at least {MINIMUM} of each')
  flags.DEFINE_integer('seed', 0, 'the seed of every generated value (>= 0)')
  flags.mark_flags_as_required(['root'])


def main(_):
  f = flags.FLAGS
  make(f.root, f.only, f.scale, f.seed, out=lambda line: print(line, flush=True))


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
