"""Text to integer sequences, with Keras' semantics (book 6.1): what `text_tokenizer`,
`texts_to_sequences`, `hashing_trick` and `pad_sequences` do in the book.

A sequence dataset's inputs are a 1-D object array of int32 arrays (ragged) until they are
padded to (N, maxlen) int32 or vectorized (sequences.vectorize_sequences).
"""
import collections
import hashlib

import numpy as np

from library.data import fetch
from library.errors import UserError

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def _as_str(text) -> str:
  if isinstance(text, (bytes, np.bytes_)):
    return bytes(text).decode('utf-8', errors='replace')
  return str(text)


def text_to_word_sequence(text, filters: str = KERAS_FILTERS, lower: bool = True,
                          split: str = ' ') -> list[str]:
  """Keras': lowercase, filter characters become `split`, split, drop empty words."""
  text = _as_str(text)
  if lower:
    text = text.lower()
  text = text.translate(str.maketrans({c: split for c in filters}))
  return [w for w in text.split(split) if w]


class Tokenizer:
  """Keras' `text_tokenizer(num_words, oov_token, char_level)`.

  Indices start at 1 by decreasing frequency over the fitted texts (ties in first-seen order);
  0 is never a word (padding). texts_to_sequences keeps the words with index < num_words; the
  others are dropped, or become oov_token's index (1) when there is one. char_level=True
  tokenizes characters (lowercased, no filtering), as Keras does.
  """

  def __init__(self, num_words: int | None = None, oov_token: str | None = None,
               lower: bool = True, filters: str = KERAS_FILTERS, char_level: bool = False):
    if num_words is not None and num_words < 1:
      raise UserError(f'num_words={num_words} must be >= 1 (or None for every word)')
    self.num_words = num_words
    self.oov_token = oov_token
    self.lower = lower
    self.filters = filters
    self.char_level = char_level
    self.word_index: dict[str, int] = {}
    self.word_counts: collections.Counter = collections.Counter()

  def tokens(self, text) -> list[str]:
    if self.char_level:
      text = _as_str(text)
      return list(text.lower() if self.lower else text)
    return text_to_word_sequence(text, self.filters, self.lower)

  def fit(self, texts) -> 'Tokenizer':
    for text in texts:
      self.word_counts.update(self.tokens(text))
    if not self.word_counts:
      raise UserError('the texts to fit the tokenizer on hold no word at all')
    ranked = sorted(self.word_counts, key=lambda w: -self.word_counts[w])  # stable
    if self.oov_token is not None:
      ranked = [self.oov_token] + [w for w in ranked if w != self.oov_token]
    self.word_index = {w: i + 1 for i, w in enumerate(ranked)}
    return self

  def texts_to_sequences(self, texts) -> np.ndarray:
    if not self.word_index:
      raise UserError('the tokenizer has not been fitted on any text')
    limit = self.num_words or (len(self.word_index) + 1)
    oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
      seq = []
      for w in self.tokens(text):
        index = self.word_index.get(w)
        if index is not None and index < limit:
          seq.append(index)
        elif oov is not None:
          seq.append(oov)
      out[i] = np.asarray(seq, np.int32)
    return out


def hashing_trick(text, n: int, filters: str = KERAS_FILTERS, lower: bool = True) -> list[int]:
  """Keras' hashing_trick(hash_function='md5'): each word to 1 + md5(word) mod (n - 1).

  md5 and not Python's hash(), which Keras' default uses and which changes between processes.
  """
  if n < 2:
    raise UserError(f'hashing dimension n={n} must be >= 2 (index 0 is reserved)')
  return [int(hashlib.md5(w.encode()).hexdigest(), 16) % (n - 1) + 1
          for w in text_to_word_sequence(text, filters, lower)]


def pad_sequences(sequences, maxlen: int | None = None, dtype=np.int32, padding: str = 'pre',
                  truncating: str = 'pre', value=0) -> np.ndarray:
  """Keras' pad_sequences: (N, maxlen); by default pads and truncates at the front."""
  for name, where in (('padding', padding), ('truncating', truncating)):
    if where not in ('pre', 'post'):
      raise UserError(f'{name}={where!r} is not one of pre, post')
  lengths = [len(s) for s in sequences]
  if maxlen is None:
    maxlen = max(lengths, default=0)
  if maxlen < 1:
    raise UserError(f'maxlen={maxlen} must be >= 1')
  out = np.full((len(sequences), maxlen), value, dtype=dtype)
  for i, seq in enumerate(sequences):
    seq = np.asarray(seq)
    if not len(seq):
      continue
    seq = seq[-maxlen:] if truncating == 'pre' else seq[:maxlen]
    if padding == 'post':
      out[i, :len(seq)] = seq
    else:
      out[i, maxlen - len(seq):] = seq
  return out


def load_glove(path: str, word_index: dict[str, int], num_words: int) -> np.ndarray:
  """An embedding matrix (num_words, dim) from a GloVe text file ("word v1 v2 ..." per line):
  row i is the vector of the word with index i (i < num_words); rows of words the file lacks,
  and row 0 (padding), stay zero, as in the book's 6.1."""
  import os  # pylint: disable=import-outside-toplevel
  path = fetch.on_first_use(path) if path else ''     # GloVe, at its default place
  if not os.path.isfile(path):
    where = fetch.hint(path) or (' (GloVe: glove.6B.100d.txt from '
                                 'https://nlp.stanford.edu/data/glove.6B.zip)')
    raise UserError(f'data.embedding_file={path!r}: no such file{where}')
  wanted = {w: i for w, i in word_index.items() if i < num_words}
  matrix, dim = None, None
  with open(path, encoding='utf-8', errors='replace') as f:
    for line_number, line in enumerate(f, 1):
      word, *values = line.rstrip('\n').split(' ')
      if dim is None:
        dim = len(values)
        if dim < 1:
          raise UserError(f'{path} line 1 has no vector: not a GloVe text file')
        matrix = np.zeros((num_words, dim), np.float32)
      if len(values) != dim:
        raise UserError(f'{path} line {line_number} has {len(values)} values, not {dim}: '
                        'not a GloVe text file')
      if word in wanted:
        try:
          matrix[wanted[word]] = np.asarray(values, np.float32)
        except ValueError:
          raise UserError(f'{path} line {line_number} holds a value that is not a number') \
              from None
  if matrix is None:
    raise UserError(f'{path} is empty')
  return matrix
