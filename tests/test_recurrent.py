"""Chapter 6 models: Keras' recurrent layers reproduced (same weights, same outputs), the
book's parameter counts, and text tools with Keras' semantics."""
import os

import jax
import numpy as np
import pytest

from library.data import text
from library.errors import UserError
from library.recurrent import Recurrent
from projects.recurrent.models import SequenceNet

os.environ.setdefault('KERAS_BACKEND', 'jax')


def _count(model, x):
  params = model.init(jax.random.PRNGKey(0), x)['params']
  return sum(a.size for a in jax.tree.leaves(params))


@pytest.mark.parametrize('kwargs,inputs,expected', [
    # 6.2: embedding 32 -> SimpleRNN 32 -> 1: 320,000 + 2,080 + 33
    (dict(num_words=10000, embed_dim=32, rnn='simple_rnn', units=(32,)), (2, 500), 322113),
    (dict(num_words=10000, embed_dim=32, rnn='lstm', units=(32,)), (2, 500), 328353),
    # 6.4: the IMDB convnet and the conv1d front end + GRU on 14 Jena features
    (dict(num_words=10000, embed_dim=128, conv=((32, 7), (32, 7)), pool_size=5,
          global_pool=True), (2, 500), 1315937),
    (dict(conv=((32, 5), (32, 5)), pool_size=3, rnn='gru', units=(32,)), (2, 720, 14), 13697),
])
def test_book_parameter_counts(kwargs, inputs, expected):
  dtype = np.int32 if len(inputs) == 2 else np.float32
  assert _count(SequenceNet(**kwargs), np.zeros(inputs, dtype)) == expected


@pytest.mark.parametrize('cell,kwargs', [
    ('simple_rnn', {}), ('lstm', {}), ('gru', {'reset_after': False}),
    ('gru', {'reset_after': True}), ('lstm', {'return_sequences': True, 'go_backwards': True}),
])
def test_recurrent_layers_compute_what_keras_computes(cell, kwargs):
  import keras  # pylint: disable=import-outside-toplevel
  layer_class = {'simple_rnn': keras.layers.SimpleRNN, 'lstm': keras.layers.LSTM,
                 'gru': keras.layers.GRU}[cell]
  keras_kwargs = dict(kwargs)
  if cell != 'gru':
    keras_kwargs.pop('reset_after', None)
  layer = layer_class(6, **keras_kwargs)
  x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32)
  with jax.numpy_rank_promotion('allow'):   # Keras' own initializers broadcast implicitly
    expected = np.asarray(layer(x))
  weights = layer.get_weights()
  ours = Recurrent(cell, 6, **kwargs)
  params = {'kernel': weights[0], 'recurrent_kernel': weights[1], 'bias': weights[2]}
  got = ours.apply({'params': params}, x)
  np.testing.assert_allclose(got, expected, atol=1e-5)
  shapes = jax.tree.map(np.shape, ours.init(jax.random.PRNGKey(0), x)['params'])
  assert shapes == jax.tree.map(np.shape, params)   # Keras' layout, so weights map 1:1


@pytest.mark.parametrize('cell,kwargs', [
    ('simple_rnn', {}), ('lstm', {}), ('lstm', {'return_sequences': True, 'go_backwards': True}),
    ('gru', {'reset_after': False}), ('gru', {'reset_after': True, 'return_sequences': True}),
])
def test_fused_backward_gives_autodiffs_outputs_and_gradients(cell, kwargs):
  """backward='fused' (hand-written VJP) against jax.grad of the plain scan, with input and
  recurrent dropout on (the same masks: both draw them from the same key)."""
  x = np.random.default_rng(1).normal(size=(3, 9, 5)).astype(np.float32)
  models = {b: Recurrent(cell, 4, dropout=0.3, recurrent_dropout=0.4, backward=b, **kwargs)
            for b in ('autodiff', 'fused')}
  params = models['autodiff'].init(jax.random.PRNGKey(0), x)
  if cell == 'lstm':   # not the near-zero start, so that every gate's gradient is exercised
    params = jax.tree.map(lambda p: p + 0.3, params)
  weights = np.random.default_rng(2).normal(
      size=(3, 9, 4) if kwargs.get('return_sequences') else (3, 4)).astype(np.float32)

  def loss(model):
    def f(params, x):
      out = model.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(3)})
      return (out * weights).sum()
    return jax.value_and_grad(f, argnums=(0, 1))

  (value, grads), (value_f, grads_f) = (loss(models[b])(params, x) for b in ('autodiff', 'fused'))
  np.testing.assert_allclose(value_f, value, rtol=1e-5)
  for got, expected in zip(jax.tree.leaves(grads_f), jax.tree.leaves(grads)):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_fused_backward_refuses_the_autodiff_options():
  x = np.zeros((2, 5, 3), np.float32)
  with pytest.raises(UserError, match='unroll=2'):
    Recurrent('lstm', 4, backward='fused', unroll=2).init(jax.random.PRNGKey(0), x)
  with pytest.raises(UserError, match="backward='manual'"):
    Recurrent('lstm', 4, backward='manual').init(jax.random.PRNGKey(0), x)


def test_bidirectional_concatenates_as_keras():
  import keras  # pylint: disable=import-outside-toplevel
  layer = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True,
                                                      reset_after=False))
  x = np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32)
  with jax.numpy_rank_promotion('allow'):
    expected = np.asarray(layer(x))
  fw, bw = layer.forward_layer.get_weights(), layer.backward_layer.get_weights()
  model = SequenceNet(rnn='gru', units=(4, 1), bidirectional=True)
  params = model.init(jax.random.PRNGKey(0), x)['params']
  params['forward_0'] = dict(zip(('kernel', 'recurrent_kernel', 'bias'), fw))
  params['backward_0'] = dict(zip(('kernel', 'recurrent_kernel', 'bias'), bw))
  _, state = model.apply({'params': params}, x, capture_intermediates=True, mutable=True)
  forward = state['intermediates']['forward_0']['__call__'][0]
  backward = state['intermediates']['backward_0']['__call__'][0][:, ::-1]
  np.testing.assert_allclose(np.concatenate([forward, backward], -1), expected, atol=1e-5)


def test_a_conv_stack_longer_than_the_sequence_is_a_clear_error():
  model = SequenceNet(num_words=50, embed_dim=4, conv=((8, 7), (8, 7)), pool_size=5)
  with pytest.raises(UserError, match='conv1d layer 1 \\(kernel 7\\) gets sequences of length 6'):
    model.init(jax.random.PRNGKey(0), np.zeros((2, 40), np.int32))


def test_recurrent_dropout_masks_are_per_sequence_and_off_in_evaluation():
  model = Recurrent('lstm', 8, return_sequences=True, dropout=0.5, recurrent_dropout=0.5)
  x = np.ones((2, 5, 3), np.float32)
  params = model.init(jax.random.PRNGKey(0), x)
  a = model.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  b = model.apply(params, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x, train=False))


def test_tokenizers_match_keras_on_the_same_texts():
  from keras.src.legacy.preprocessing import (  # pylint: disable=import-outside-toplevel
      text as keras_text)
  texts = ['The cat sat on the mat.', 'The dog ate my homework!', 'Cat? CAT, cat...\r\nend',
           "It's 6.1's toy example:\ttabs and  double  spaces"]
  for kwargs in ({}, {'num_words': 5}, {'num_words': 5, 'oov_token': '<unk>'},
                 {'char_level': True}, {'char_level': True, 'num_words': 8}):
    keras_tok = keras_text.Tokenizer(**kwargs)
    keras_tok.fit_on_texts(texts)
    ours = text.Tokenizer(**kwargs).fit(texts)
    assert ours.word_index == keras_tok.word_index, kwargs
    queries = texts + ['unseen words only', 'the CAT sat, on a mat']
    assert [s.tolist() for s in ours.texts_to_sequences(queries)] == \
        keras_tok.texts_to_sequences(queries), kwargs
  for t in texts:
    assert text.hashing_trick(t, 1000) == keras_text.hashing_trick(t, 1000, hash_function='md5')


def test_pad_sequences_matches_keras():
  import keras  # pylint: disable=import-outside-toplevel
  seqs = [[1, 2, 3, 4, 5], [6], [], [7, 8]]
  for kwargs in ({}, {'maxlen': 3}, {'maxlen': 3, 'padding': 'post'},
                 {'maxlen': 3, 'truncating': 'post'}, {'maxlen': 6, 'value': -1}):
    np.testing.assert_array_equal(text.pad_sequences(seqs, **kwargs),
                                  keras.utils.pad_sequences(seqs, **kwargs), err_msg=str(kwargs))
  with pytest.raises(UserError, match="padding='middle' is not one of pre, post"):
    text.pad_sequences(seqs, 3, padding='middle')


def test_empty_texts_are_a_clear_error():
  with pytest.raises(UserError, match='hold no word at all'):
    text.Tokenizer().fit(['', '  ...  '])
  tok = text.Tokenizer(num_words=3).fit(['a b c d'])
  assert [s.tolist() for s in tok.texts_to_sequences(['zebra', ''])] == [[], []]


def _write_aclimdb(root, per_class=24, seed=0):
  rng = np.random.default_rng(seed)
  words = ['good', 'bad', 'movie', 'plot', 'great', 'awful', 'actor', 'the', 'a', 'film']
  for split in ('train', 'test'):
    for label in ('neg', 'pos', 'unsup'):
      folder = root / split / label
      folder.mkdir(parents=True)
      for i in range(per_class):
        review = ' '.join(rng.choice(words, rng.integers(3, 60))) + '. <br />The End!'
        (folder / f'{i}_{rng.integers(1, 10)}.txt').write_text(review)
  return str(root)


@pytest.mark.parametrize('variant', ['lstm', 'simple_rnn', 'embedding', 'bidirectional_lstm',
                                     'conv1d'])
def test_imdb_sequence_models_end_to_end_on_a_keras_format_file(load_config, tmp_path, variant):
  from library import train  # pylint: disable=import-outside-toplevel
  from tests.test_sequences import write_keras_imdb  # pylint: disable=import-outside-toplevel
  config = load_config('configs/recurrent/imdb_sequences.py', f'{variant},smoke')
  config.data.path = write_keras_imdb(tmp_path / 'imdb.npz')
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(results['test']['loss']) and 'accuracy' in results['validation']


@pytest.mark.parametrize('data_format', ['tfds', 'folder'])
def test_imdb_sequences_from_raw_text_end_to_end(load_config, tmp_path, data_format):
  from library import train  # pylint: disable=import-outside-toplevel
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  config = load_config('configs/recurrent/imdb_sequences.py', f'conv1d,{data_format},smoke')
  if data_format == 'folder':
    config.data.path = _write_aclimdb(tmp_path / 'aclImdb')
    data = pipeline.prepare(config)
    assert data.splits['train']['inputs'].shape == (40, 60)     # neg + pos, 8 held out
    assert sorted(set(data.splits['test']['labels'].tolist())) == [0, 1]   # no 'unsup'
    # The folders are sorted by class: the validation reviews are drawn from both.
    assert sorted(set(data.splits['validation']['labels'].tolist())) == [0, 1]
    results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  else:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    config.data.data_dir = str(tmp_path / 'tfds')
    with tfds.testing.mock_data(num_examples=48):
      results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(results['test']['loss'])


def test_a_one_class_holdout_from_an_ordered_source_is_warned(load_config, tmp_path, capsys):
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  config = load_config('configs/recurrent/imdb_sequences.py', 'conv1d,folder,smoke')
  config.data.path = _write_aclimdb(tmp_path / 'aclImdb')
  config.data.shuffle_holdout = False           # the first 8 of 48 sorted reviews: negative
  data = pipeline.prepare(config)
  assert set(data.splits['validation']['labels'].tolist()) == {0}
  err = capsys.readouterr().err
  assert 'holds class 0 only' in err and 'data.shuffle_holdout=True' in err


def test_text_folder_errors_are_one_line(load_config, tmp_path):
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  config = load_config('configs/recurrent/imdb_sequences.py', 'lstm,folder,smoke')
  config.data.path = str(tmp_path / 'nowhere')
  with pytest.raises(UserError, match='no such folder'):
    pipeline.prepare(config)
  root = tmp_path / 'acl'
  (root / 'train' / 'neg').mkdir(parents=True)
  (root / 'train' / 'pos').mkdir(parents=True)
  (root / 'train' / 'neg' / '1.txt').write_text('fine')
  config.data.path = str(root)
  with pytest.raises(UserError, match='holds no .txt file'):
    pipeline.prepare(config)


def test_the_book_one_hot_toys_run():
  from tests.conftest import run_script  # pylint: disable=import-outside-toplevel
  proc = run_script('scripts.text_toys')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'Found 9 unique tokens.' in proc.stdout
  assert 'word-level one-hot: (2, 10, 10)' in proc.stdout


def _write_glove(path, words, dim=100, seed=0):
  rng = np.random.default_rng(seed)
  with open(path, 'w') as f:
    for w in words:
      f.write(w + ' ' + ' '.join(f'{v:.4f}' for v in rng.normal(size=dim)) + '\n')
  return str(path)


def test_glove_file_fills_the_rows_of_the_tokenizer_words(tmp_path):
  path = _write_glove(tmp_path / 'glove.txt', ['the', 'cat', 'zebra'], dim=4)
  matrix = text.load_glove(str(path), {'cat': 1, 'the': 2, 'dog': 3, 'rare': 9}, num_words=5)
  lines = {l.split()[0]: np.array(l.split()[1:], np.float32) for l in open(path)}
  assert matrix.shape == (5, 4)
  np.testing.assert_array_equal(matrix[1], lines['cat'])
  np.testing.assert_array_equal(matrix[2], lines['the'])
  assert not matrix[0].any() and not matrix[3].any()   # padding, and a word GloVe lacks
  (tmp_path / 'bad.txt').write_text('the 1 2 3\ncat 1 2\n')
  with pytest.raises(UserError, match='line 2 has 2 values, not 3'):
    text.load_glove(str(tmp_path / 'bad.txt'), {'cat': 1}, 5)
  with pytest.raises(UserError, match='no such file'):
    text.load_glove(str(tmp_path / 'absent.txt'), {'cat': 1}, 5)


def test_glove_config_starts_from_the_file_and_keeps_the_embedding_frozen(load_config, tmp_path):
  from library import inference, train  # pylint: disable=import-outside-toplevel
  config = load_config('configs/recurrent/imdb_glove.py', 'smoke')
  config.data.path = _write_aclimdb(tmp_path / 'aclImdb')
  words = ['good', 'bad', 'movie', 'plot', 'great', 'awful', 'actor', 'the', 'film', 'br', 'end']
  config.data.embedding_file = _write_glove(tmp_path / 'glove.txt', words)
  config.checkpoint.keep = 1
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  state = inference.load_state(str(tmp_path / 'run'))[0]
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  expected = pipeline.prepare(config).param_init['params/Embed_0/embedding']
  np.testing.assert_array_equal(np.asarray(state.params['Embed_0']['embedding']), expected)
  assert expected[1:].any()
  config.task_config.freeze = 'no_such_layer'
  with pytest.raises(UserError, match="freeze='no_such_layer' matches no parameter"):
    train.train_and_evaluate(config, str(tmp_path / 'other'))
