"""Book 8.1's character-level text generation as a task of the one loop.

  python -m scripts.train --config=configs/generative/text_lstm.py:pydoc --workdir=/tmp/text

The data are windows of `maxlen` characters taken every `step` characters of a corpus, each
with the character that follows it as its label (integer codes; the model one-hot encodes
them, or embeds them). Training is the supervised task's (sparse categorical cross-entropy,
accuracy) on the book's LSTM; what this module adds is the data and the sampling:
- `corpus`: a text file (the book's nietzsche.txt), or 'pydoc' for the English prose of
  Python's own documentation (`pydoc_data.topics`, no network), its runs of spaces and blank
  lines collapsed (its code examples are indented); lowercased as the book does
  (`lowercase`). The characters' codes are the sorted set of the corpus' characters, found
  again from the corpus whenever a workdir is loaded.
- `validation_fraction`: the last windows of the corpus (contiguous, so that no validation
  window overlaps a training one) held out; 0 trains on all, as the book.
- Sampling is one jit-compiled `lax.scan` over `sample_length` characters, for every
  temperature and sample at once: each step feeds the last `maxlen` characters, divides the
  logits by the temperature and draws the next character (temperature 0: the argmax).
- At each evaluation (every epoch by default) the run writes `samples`, one text per
  temperature (`temperatures`, the book's 0.2, 0.5, 1.0 and 1.2) continuing a random window of
  the corpus, into workdir/artifacts, with each sample's share of words found in the corpus'
  vocabulary (the measure of "real words").
"""
import dataclasses
import functools
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from library import config as config_lib, supervised
from library.data import fetch, pipeline
from library.errors import UserError
from library.task import make_model

OWN_KEYS = ('corpus', 'lowercase', 'maxlen', 'step', 'validation_fraction', 'temperatures',
            'sample_length', 'num_samples')


def default_task_config() -> ml_collections.ConfigDict:
  c = supervised.default_task_config()
  c.loss = 'sparse_categorical_crossentropy'
  c.metrics = ('accuracy',)
  c.corpus = 'pydoc'
  c.lowercase = True
  c.maxlen = 60
  c.step = 3
  c.validation_fraction = 0.0
  c.temperatures = (0.2, 0.5, 1.0, 1.2)
  c.sample_length = 400
  c.num_samples = 1               # samples per temperature, each from its own seed window
  return c


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  supervised_part = ml_collections.ConfigDict(
      {k: v for k, v in t.to_dict().items() if k not in OWN_KEYS})
  supervised.validate_task_config(config_lib.with_section(config, 'task_config',
                                                          supervised_part))
  for key in ('maxlen', 'step', 'sample_length', 'num_samples'):
    if t[key] < 1:
      raise UserError(f'task_config.{key}={t[key]} must be >= 1')
  if not 0 <= t.validation_fraction < 1:
    raise UserError(f'task_config.validation_fraction={t.validation_fraction} must be in [0, 1)')
  if not t.temperatures or any(v < 0 for v in t.temperatures):
    raise UserError(f'task_config.temperatures={tuple(t.temperatures)} must be one or more '
                    'values >= 0 (0: the most likely character)')


def read_corpus(corpus: str, lowercase: bool) -> tuple[str, tuple[str, ...]]:
  """(text, its sorted characters) of `corpus`: 'pydoc' or a text file's path. Read once per
  file as it is now: the cache is keyed by the file's full path, size and modification time,
  so another HOME, or a file changed since, is read afresh."""
  if corpus == 'pydoc':
    return _read_corpus('pydoc', None, lowercase)
  path = fetch.on_first_use(corpus)      # nietzsche.txt, at its default place
  if not os.path.isfile(path):
    raise UserError(f'task_config.corpus={corpus!r} is not a file (give a text file, or '
                    f"'pydoc' for Python's documentation){fetch.hint(path)}")
  stat = os.stat(path)
  return _read_corpus(os.path.realpath(path), (stat.st_size, stat.st_mtime_ns), lowercase,
                      corpus)


@functools.lru_cache(maxsize=4)
def _read_corpus(path: str, version, lowercase: bool, given: str = ''):
  """read_corpus's text, cached by (path, version, lowercase); `given`: the config's value,
  for the error (not part of what is read, but of the key: harmless)."""
  del version
  if path == 'pydoc':
    from pydoc_data import topics  # pylint: disable=import-outside-toplevel
    text = '\n'.join(topics.topics[k] for k in sorted(topics.topics))
    # Its code examples are indented: runs of spaces, which a model at low temperature
    # continues forever. One space for a run, as prose has.
    text = re.sub(r'\n{3,}', '\n\n', re.sub(r'[ \t]+', ' ', text))
  else:
    try:
      with open(path, encoding='utf-8') as f:
        text = f.read()
    except UnicodeDecodeError as e:
      raise UserError(f'task_config.corpus={given!r} is not UTF-8 text ({e.reason} at byte '
                      f'{e.start})') from None
  if lowercase:
    text = text.lower()
  return text, tuple(sorted(set(text)))


def load_data(config, arrays=None) -> pipeline.Datasets:
  if arrays is not None:
    raise UserError('text generation reads task_config.corpus; it takes no arrays')
  t = config.task_config
  text, chars = read_corpus(t.corpus, t.lowercase)
  if len(text) <= t.maxlen:
    raise UserError(f'task_config.corpus has {len(text)} characters, not more than '
                    f'task_config.maxlen={t.maxlen}')
  dtype = np.uint8 if len(chars) <= 256 else np.int32
  lookup = {c: i for i, c in enumerate(chars)}
  codes = np.fromiter((lookup[c] for c in text), dtype, len(text))
  starts = np.arange(0, len(text) - t.maxlen, t.step)
  windows = np.lib.stride_tricks.sliding_window_view(codes, t.maxlen)[starts]
  labels = codes[starts + t.maxlen].astype(np.int32)
  held = int(round(len(starts) * t.validation_fraction))
  # Validation windows start after the last training window's label: no shared characters.
  first_val = len(starts) - held
  last_train = first_val - -(-t.maxlen // t.step) if held else first_val
  splits = {'train': {'inputs': np.ascontiguousarray(windows[:last_train]),
                      'labels': labels[:last_train]}}
  if held:
    splits['validation'] = {'inputs': np.ascontiguousarray(windows[first_val:]),
                            'labels': labels[first_val:]}
  if last_train < 1:
    raise UserError(f'task_config.validation_fraction={t.validation_fraction} leaves no '
                    'training window')
  return pipeline.Datasets(splits, None, (t.maxlen,))


def word_share(sample: str, vocabulary: frozenset, seed: str = '') -> tuple[float, int]:
  """(share of the sample's words found in `vocabulary`, number of words). A first word that
  continues the seed's last one, and a last word the sample's end may cut, are not counted."""
  words = re.findall(r'[a-z]+', sample.lower())
  if words and seed[-1:].isalpha() and sample[:1].isalpha():
    words = words[1:]
  if words and sample[-1:].isalpha():
    words = words[:-1]
  if not words:
    return 0.0, 0
  return sum(w in vocabulary for w in words) / len(words), len(words)


@functools.lru_cache(maxsize=4)
def corpus_vocabulary(corpus: str, lowercase: bool) -> frozenset:
  return frozenset(re.findall(r'[a-z]+', read_corpus(corpus, lowercase)[0].lower()))


def make_sampler(model, length: int):
  """jit (params, seeds (N, maxlen) codes, temperatures (N,), key) -> (N, length) codes."""

  @jax.jit
  def sample(params, seeds_NxT, temperatures_N, key):
    def step(window_NxT, key_t):
      logits = model.apply({'params': params}, window_NxT, train=False).astype(jnp.float32)
      hot = temperatures_N > 0
      scaled = logits / jnp.where(hot, temperatures_N, 1.0)[:, None]
      drawn = jax.random.categorical(key_t, scaled, axis=-1)
      chosen = jnp.where(hot, drawn, jnp.argmax(logits, axis=-1)).astype(window_NxT.dtype)
      return jnp.concatenate([window_NxT[:, 1:], chosen[:, None]], axis=1), chosen

    _, codes_LxN = jax.lax.scan(step, seeds_NxT, jax.random.split(key, length))
    return codes_LxN.T

  return sample


def make_task(config, data: pipeline.Datasets, total_steps: int):
  t = config.task_config
  text, chars = read_corpus(t.corpus, t.lowercase)
  vocab_size = config.model.kwargs.get('vocab_size')
  if vocab_size not in (None, len(chars)):
    raise UserError(f'model.kwargs.vocab_size={vocab_size}, but the corpus has {len(chars)} '
                    'characters: leave it unset')
  config = config_lib.with_section(config, 'model', ml_collections.ConfigDict(dict(
      config.model.to_dict(), kwargs=dict(config.model.kwargs.to_dict(),
                                          vocab_size=len(chars)))))
  task = supervised.make_task(config, data, total_steps)
  sample = make_sampler(make_model(config.model), t.sample_length)
  vocabulary = corpus_vocabulary(t.corpus, t.lowercase)
  dtype = np.uint8 if len(chars) <= 256 else np.int32
  lookup = {c: i for i, c in enumerate(chars)}

  def artifacts(state, step):
    rng = np.random.default_rng([config.seed, step])
    temps = np.repeat(np.asarray(t.temperatures, np.float32), t.num_samples)
    starts = rng.integers(0, len(text) - t.maxlen, len(temps))
    seeds = np.stack([np.fromiter((lookup[c] for c in text[s:s + t.maxlen]), dtype, t.maxlen)
                      for s in starts])
    codes = np.asarray(sample(state.params, jnp.asarray(seeds), jnp.asarray(temps),
                              jax.random.fold_in(jax.random.key(config.seed), step)))
    return {'samples': samples_text(
        [text[s:s + t.maxlen] for s in starts], [''.join(chars[i] for i in row) for row in codes],
        temps, vocabulary)}

  return dataclasses.replace(task, artifacts=artifacts)


def samples_text(seeds, samples, temperatures, vocabulary) -> str:
  """The samples with their seeds, and per temperature the share of real words."""
  lines, shares = [], {}
  for seed, sample, temperature in zip(seeds, samples, temperatures):
    share, n = word_share(sample, vocabulary, seed)
    shares.setdefault(float(temperature), []).append((share, n))
    lines += [f'--- temperature {temperature:g}, seed "{seed}"',
              f'--- {100 * share:.1f}% of its {n} words are in the corpus', sample, '']
  head = ['real words (share of generated words found in the corpus vocabulary):']
  for temperature, values in shares.items():
    total = sum(n for _, n in values)
    mean = sum(s * n for s, n in values) / total if total else 0.0
    head.append(f'  temperature {temperature:g}: {100 * mean:.1f}% of {total} words')
  return '\n'.join(head + [''] + lines)
