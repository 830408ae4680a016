"""Book 6.1's one-hot encoding examples, runnable: words, characters, a tokenizer, hashing.

  python -m scripts.text_toys
  python -m scripts.text_toys --samples="The cat sat on the mat." --samples="A dog ate it."

Prints what the book prints ("Found 9 unique tokens.") and the shapes of the one-hot tensors.
"""
from absl import flags

from library import cli

_SAMPLES = flags.DEFINE_multi_string(
    'samples', ['The cat sat on the mat.', 'The dog ate my homework.'], 'the texts')
_MAX_LENGTH = flags.DEFINE_integer('max_length', 10, 'words (or 50 characters) kept per text')
_HASH_DIM = flags.DEFINE_integer('hash_dimension', 1000, 'buckets of the hashing trick')


def main(_):
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library.data import text  # pylint: disable=import-outside-toplevel
  samples, max_length = _SAMPLES.value, _MAX_LENGTH.value

  # Word-level one-hot, by hand (the book's first listing): indices from 1, 0 unused.
  index = {}
  for sample in samples:
    for word in text.text_to_word_sequence(sample):
      index.setdefault(word, len(index) + 1)
  words = np.zeros((len(samples), max_length, len(index) + 1), np.float32)
  for i, sample in enumerate(samples):
    for j, word in enumerate(text.text_to_word_sequence(sample)[:max_length]):
      words[i, j, index[word]] = 1.0
  print(f'word-level one-hot: {words.shape} (samples, words, vocabulary + 1)')

  # Character-level one-hot: the printable characters.
  import string  # pylint: disable=import-outside-toplevel
  characters = {c: i + 1 for i, c in enumerate(string.printable)}
  chars = np.zeros((len(samples), 5 * max_length, len(characters) + 1), np.float32)
  for i, sample in enumerate(samples):
    for j, c in enumerate(sample[:5 * max_length]):
      chars[i, j, characters.get(c, 0)] = 1.0
  print(f'character-level one-hot: {chars.shape}')

  # Keras' text_tokenizer(num_words = 1000) and its binary matrix.
  tokenizer = text.Tokenizer(num_words=1000).fit(samples)
  sequences = tokenizer.texts_to_sequences(samples)
  print('sequences:', [s.tolist() for s in sequences])
  from library.data import sequences as seq_lib  # pylint: disable=import-outside-toplevel
  print(f'binary matrix: {seq_lib.vectorize_sequences(sequences, 1000).shape}')
  print(f'Found {len(tokenizer.word_index)} unique tokens.')

  # The hashing trick: no index to keep, collisions possible.
  print(f'hashed into {_HASH_DIM.value} buckets:',
        [text.hashing_trick(s, _HASH_DIM.value) for s in samples])


if __name__ == '__main__':
  cli.run(main)
