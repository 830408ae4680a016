"""Chapter 8's generative models (projects/generative): real steps of every config and its
artifacts, the VAE and the text model learning, the GAN's two players each moved by its own
loss only, greedy sampling at temperature 0, exact resume of the GAN, and the scripts."""
import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs.generative import cifar_frogs_gan, mnist_vae, text_lstm
from library import train
from library.errors import UserError
from projects.generative import gan, quality, text
from tests.conftest import run_script
from tests.test_scripts import kill_midway_then_rerun


def _config(module, variant, **overrides):
  config = module.get_config(variant)
  config.compilation_cache_dir = ''
  config.progress_bar = False
  for key, value in overrides.items():
    node = config
    *path, last = key.split('.')
    for name in path:
      node = node[name]
    node[last] = value
  return config


def _records(workdir, split='train'):
  return [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))
          if json.loads(line)['split'] == split]


def test_the_vae_learns_and_draws_its_latent_grid_and_scatter(tmp_path):
  config = _config(mnist_vae, 'embedded,smoke', num_train_steps=150, eval_every_steps=150,
                   log_every_steps=25)
  config.model.kwargs.features = (16, 32, 32, 32)
  config.model.kwargs.hidden = 32
  config.optimizer.learning_rate = 2e-3
  results = train.train_and_evaluate(config, str(tmp_path / 'vae'))
  losses = [r['loss'] for r in _records(tmp_path / 'vae')]
  # Every pixel predicted as the training digits' mean pixel, the loss of a decoder that
  # ignores its code: a VAE that learned anything is below it.
  from projects.generative import vae  # pylint: disable=import-outside-toplevel
  s = vae.load_data(config).splits
  mean = np.clip(np.asarray(s['train']['inputs']).mean(0), 1e-6, 1 - 1e-6)
  x = np.asarray(s['test']['inputs'])
  baseline = float(np.mean(-(x * np.log(mean) + (1 - x) * np.log(1 - mean))))
  assert losses[-1] < losses[0] and results['test']['reconstruction'] < baseline, (
      losses, results['test'], baseline)
  assert results['test']['kl'] > 0
  grid = np.asarray(Image.open(tmp_path / 'vae' / 'artifacts' / 'latent_grid-step150.png'))
  assert grid.shape == (3 * 28, 3 * 28) and grid.std() > 0
  scatter = np.asarray(Image.open(tmp_path / 'vae' / 'artifacts' /
                                  'latent_scatter-step150.png'))
  assert scatter.ndim == 3 and scatter.shape[-1] == 3


def test_the_vae_latent_grid_runs_over_normal_quantiles():
  from projects.generative import vae  # pylint: disable=import-outside-toplevel
  codes = vae.latent_grid_codes(2, 15, (0.05, 0.95))
  assert codes.shape == (225, 2)
  np.testing.assert_allclose(codes[0], [-1.6448536, -1.6448536], rtol=1e-6)
  np.testing.assert_allclose(codes[-1], [1.6448536, 1.6448536], rtol=1e-6)
  np.testing.assert_allclose(codes[:15, 0], -1.6448536, rtol=1e-6)   # a row: one z[0]


def _sgd_gan_config():
  config = _config(cifar_frogs_gan, 'digits,smoke')
  config.optimizer.name = 'sgd'
  config.optimizer.clip_value = None
  config.task_config.generator_learning_rate = 0.5
  config.task_config.discriminator_learning_rate = 0.25
  return config


def test_each_gan_player_moves_by_its_own_loss_only():
  config = _sgd_gan_config()
  s = train.setup(config)
  task, state = s.task, jax.device_get(s.state)
  batch = jax.tree.map(jnp.asarray, s.datasets.example(8))
  new, metrics = jax.jit(task.train_step)(state, batch)
  d_loss, g_loss = gan.player_losses(*gan.players(config), config.task_config)
  keys = gan.step_keys(state)
  g, d = state.generator.params, state.discriminator.params
  d_grad = jax.jit(jax.grad(
      lambda p: d_loss(p, g, batch['inputs'], batch['weights'], keys)[0]))(d)
  expected_d = jax.tree.map(lambda p, dp: p - 0.25 * dp, d, d_grad)
  g_grad = jax.jit(jax.grad(g_loss), static_argnums=2)(g, expected_d, 8, keys)
  expected_g = jax.tree.map(lambda p, dp: p - 0.5 * dp, g, g_grad)
  for got, want in ((new.discriminator.params, expected_d), (new.generator.params, expected_g)):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  # The discriminator's loss does depend on the generator: the step just does not follow it.
  through_g = jax.jit(jax.grad(
      lambda p: d_loss(d, p, batch['inputs'], batch['weights'], keys)[0]))(g)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(through_g)) > 0
  assert np.isfinite(float(metrics['d_loss'])) and np.isfinite(float(metrics['g_loss']))


def test_the_book_dcgan_has_the_books_parameter_counts_and_trains_on_tfds_frogs(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  config = _config(cifar_frogs_gan, None)
  generator, discriminator = gan.players(config)
  count = lambda model, x: sum(v.size for v in jax.tree.leaves(jax.eval_shape(  # noqa: E731
      lambda: model.init(jax.random.key(0), x))['params']))
  assert count(generator, jnp.zeros((1, 32))) == 6_264_579
  assert count(discriminator, jnp.zeros((1, 32, 32, 3))) == 790_913
  config = _config(cifar_frogs_gan, 'smoke')
  config.data.data_dir = str(tmp_path / 'tfds')
  with tfds.testing.mock_data(num_examples=80):
    results = train.train_and_evaluate(config, str(tmp_path / 'frogs'))
  assert results['steps'] == 6
  picture = np.asarray(Image.open(tmp_path / 'frogs' / 'artifacts' / 'samples-step6.png'))
  assert picture.shape == (2 * 32, 2 * 32, 3)
  records = _records(tmp_path / 'frogs')
  assert {'d_loss', 'g_loss', 'd_on_fake', 'd_on_real'} <= set(records[-1])


def test_the_gan_loss_is_keras_clipped_so_noisy_labels_bound_it():
  # Labels above 1 (the book's label noise): Keras' clipped probabilities bound the loss.
  huge = jnp.array([[40.0], [80.0]])
  values = gan._bce(huge, jnp.array([1.5, 1.5]))   # pylint: disable=protected-access
  p = np.float32(1 - 1e-7)     # the clip's upper end, in float32 as Keras computes it
  bound = -(1.5 * np.log(p) - 0.5 * np.log(np.float32(1) - p))
  np.testing.assert_allclose(values, bound, rtol=1e-5)


def _gan_command(workdir):
  return [sys.executable, '-m', 'scripts.train', '--config=configs/generative/'
          'cifar_frogs_gan.py:digits,smoke', f'--workdir={workdir}',
          '--config.num_train_steps=60', '--config.eval_every_steps=30',
          '--config.checkpoint.every_steps=20', f'--config.compilation_cache_dir={workdir}/../c']


def test_sigkill_midway_then_rerun_is_bitwise_for_the_gan(tmp_path):
  from library import inference  # pylint: disable=import-outside-toplevel
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  killed, straight = kill_midway_then_rerun(_gan_command, tmp_path, at_least=20, env=env)
  a, b = (jax.tree.leaves(inference.load_state(str(w))[0]) for w in (killed, straight))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  same = [(killed / 'artifacts' / 'samples-step60.png').read_bytes(),
          (straight / 'artifacts' / 'samples-step60.png').read_bytes()]
  assert same[0] == same[1]


def test_text_windows_follow_the_corpus_and_hold_out_a_disjoint_tail():
  config = _config(text_lstm, 'pydoc,smoke')
  config.task_config.validation_fraction = 0.1
  data = text.load_data(config)
  corpus, chars = text.read_corpus('pydoc', True)
  t = config.task_config
  train_split, val = data.splits['train'], data.splits['validation']
  decode = lambda codes: ''.join(chars[i] for i in codes)  # noqa: E731
  for i in (0, 1, len(train_split['labels']) - 1):
    start = i * t.step
    assert decode(train_split['inputs'][i]) == corpus[start:start + t.maxlen]
    assert chars[train_split['labels'][i]] == corpus[start + t.maxlen]
  # The last training window's label comes before the first validation window starts.
  last_train_end = (len(train_split['labels']) - 1) * t.step + t.maxlen
  first_val_start = corpus.index(decode(val['inputs'][0]), last_train_end - t.maxlen)
  assert first_val_start > last_train_end


def test_sampling_at_temperature_zero_is_the_argmax_and_tiny_temperatures_agree():
  from library.task import make_model  # pylint: disable=import-outside-toplevel
  model = make_model(ml_collections.ConfigDict({
      'module': 'projects.generative.models', 'name': 'CharLSTM',
      'kwargs': {'vocab_size': 11, 'units': 8}}))
  seeds = jax.random.randint(jax.random.key(1), (3, 6), 0, 11).astype(jnp.uint8)
  params = model.init(jax.random.key(0), seeds)['params']
  sample = text.make_sampler(model, 12)
  greedy = np.asarray(sample(params, seeds, jnp.zeros(3), jax.random.key(5)))
  cold = np.asarray(sample(params, seeds, jnp.full(3, 1e-6), jax.random.key(7)))
  np.testing.assert_array_equal(greedy, cold)
  window = np.asarray(seeds)      # by hand: argmax of the logits of the last 6 characters
  for k in range(12):
    nxt = np.asarray(model.apply({'params': params}, jnp.asarray(window))).argmax(-1)
    np.testing.assert_array_equal(greedy[:, k], nxt)
    window = np.concatenate([window[:, 1:], nxt[:, None].astype(window.dtype)], axis=1)
  hot = np.asarray(sample(params, seeds, jnp.full(3, 5.0), jax.random.key(7)))
  assert (hot != greedy).any()


def test_the_real_word_share_counts_whole_words_only():
  vocabulary = frozenset({'the', 'cat', 'sat'})
  assert text.word_share('the cat sat on', vocabulary) == (1.0, 3)   # 'on' may be cut
  assert text.word_share('e cat xyz.', vocabulary, seed='th') == (0.5, 2)   # 'e' continues


def test_the_text_model_learns_and_writes_samples_at_each_temperature(tmp_path):
  config = _config(text_lstm, 'pydoc,smoke', num_train_steps=150, eval_every_steps=75,
                   log_every_steps=25)
  config.model.kwargs.units = 32
  config.task_config.step = 7
  config.task_config.validation_fraction = 0.05
  config.optimizer.learning_rate = 0.01
  train.train_and_evaluate(config, str(tmp_path / 'text'))
  val = _records(tmp_path / 'text', 'validation')
  losses = [r['loss'] for r in _records(tmp_path / 'text')]
  corpus, _ = text.read_corpus('pydoc', True)
  counts = np.unique(np.array(list(corpus)), return_counts=True)[1] / len(corpus)
  unigram = float(-(counts * np.log(counts)).sum())   # the loss of character frequencies
  # Below it, the model uses the context, not only how often each character occurs.
  assert losses[-1] < losses[0] and val[-1]['loss'] < unigram, (losses, val, unigram)
  samples = (tmp_path / 'text' / 'artifacts' / 'samples-step150.txt').read_text()
  for temperature in ('0.2', '0.5', '1', '1.2'):
    assert f'temperature {temperature}:' in samples


def test_generate_and_sample_quality_scripts_on_trained_workdirs(tmp_path):
  from configs.convnets import mnist_convnet  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  for module, variant, name in ((mnist_vae, 'embedded,smoke', 'vae'),
                                (mnist_convnet, 'embedded,smoke', 'cnn')):
    train.train_and_evaluate(_config(module, variant), str(tmp_path / name))
  before = sorted(p.name for p in (tmp_path / 'vae').iterdir())
  produced, _ = inference.write_samples(str(tmp_path / 'vae'), str(tmp_path / 'out'),
                                        'latest', ['task_config.grid=4'])
  assert set(produced) == {'latent_grid', 'latent_scatter'}
  grid = np.asarray(Image.open(tmp_path / 'out' / 'latent_grid-step6.png'))
  assert grid.shape == (4 * 28, 4 * 28)
  assert sorted(p.name for p in (tmp_path / 'vae').iterdir()) == before
  with pytest.raises(UserError, match='writes no samples'):
    inference.write_samples(str(tmp_path / 'cnn'), '', 'latest', [])
  with pytest.raises(UserError, match='only task_config'):
    inference.write_samples(str(tmp_path / 'vae'), '', 'latest', ['seed=3'])
  proc = run_script('scripts.sample_quality', f'--classifier={tmp_path / "cnn"}',
                    f'--workdir={tmp_path / "vae"}', '--count=64',
                    f'--output={tmp_path / "q.json"}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = json.loads((tmp_path / 'q.json').read_text())
  assert set(rows) == {'real held-out digits', f'{tmp_path / "vae"} (prior)',
                       f'{tmp_path / "vae"} (fitted codes)', 'uniform noise'}
  assert all(np.isfinite(list(row.values())).all() for row in rows.values())
  with pytest.raises(UserError, match='is not a softmax classifier'):
    quality.Classifier(str(tmp_path / 'vae'))


def test_quality_scores_on_hand_made_sets():
  rng = np.random.default_rng(0)
  sure = np.eye(10)[np.arange(1000) % 10] * 0.999 + 0.0001
  one_class = np.tile(np.eye(10)[:1] * 0.999 + 0.0001, (1000, 1))
  features = rng.normal(size=(1000, 8))
  same = quality.scores(sure, features, features)
  assert same['frechet_distance'] == pytest.approx(0.0, abs=1e-6)
  assert same['class_entropy'] == pytest.approx(np.log(10)) and same['confidence'] > 0.99
  assert same['inception_score'] == pytest.approx(10, rel=0.02)
  single = quality.scores(one_class, features + 3.0, features)
  assert single['class_entropy'] == 0.0 and single['inception_score'] == pytest.approx(1.0)
  assert single['frechet_distance'] == pytest.approx(8 * 9.0, rel=0.05)


def test_bad_generative_settings_are_one_line_errors(tmp_path):
  config = _config(text_lstm, 'smoke', **{'task_config.corpus': str(tmp_path / 'none.txt')})
  with pytest.raises(UserError, match='is not a file'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()
  config = _config(text_lstm, 'pydoc,smoke', **{'task_config.temperatures': (0.5, -1.0)})
  with pytest.raises(UserError, match='temperatures'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  config = _config(mnist_vae, 'embedded,smoke', **{'task_config.quantiles': (0.0, 0.95)})
  with pytest.raises(UserError, match='quantiles'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  from configs.generative import deep_dream, style_transfer  # pylint: disable=import-outside-toplevel
  config = _config(style_transfer, 'smoke', **{'task_config.style_image': 'skimage:nope'})
  with pytest.raises(UserError, match="task_config.style_image='skimage:nope'"):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  config = _config(deep_dream, 'smoke', **{'task_config.image': str(tmp_path / 'no.jpg')})
  with pytest.raises(UserError, match='task_config.image=.*no such file'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  config = _config(deep_dream, 'smoke', **{'task_config.height': 80})
  with pytest.raises(UserError, match='InceptionV3 needs 75x75'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  config = _config(cifar_frogs_gan, 'digits,smoke')
  config.task_config.generator.kwargs.size = 32
  with pytest.raises(UserError, match='generator makes images of shape'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


def test_style_transfer_loss_falls_and_each_round_writes_the_image(tmp_path, capsys):
  from configs.generative import style_transfer  # pylint: disable=import-outside-toplevel
  config = _config(style_transfer, 'smoke', num_train_steps=12, eval_every_steps=6,
                   log_every_steps=3)
  config.task_config.restart_every = 6
  train.train_and_evaluate(config, str(tmp_path / 'style'))
  assert 'random weights' in capsys.readouterr().out
  losses = [r['loss'] for r in _records(tmp_path / 'style')]
  assert losses[-1] < 0.5 * losses[0], losses
  picture = np.asarray(Image.open(tmp_path / 'style' / 'artifacts' / 'styled-step12.png'))
  assert picture.shape == (32, 48, 3)    # chelsea's 300x451 at 32 rows


def test_deep_dream_loss_rises_octave_by_octave_with_detail_put_back(tmp_path):
  from configs.generative import deep_dream  # pylint: disable=import-outside-toplevel
  from projects.generative import dream  # pylint: disable=import-outside-toplevel
  config = _config(deep_dream, 'smoke', log_every_steps=1, num_train_steps=4,
                   eval_every_steps=2)
  config.task_config.iterations = 2
  config.task_config.width_divisor = 32
  train.train_and_evaluate(config, str(tmp_path / 'dream'))
  records = _records(tmp_path / 'dream')
  assert [r['octave'] for r in records] == [0, 0, 1, 1]
  for octave in (0, 1):
    losses = [r['loss'] for r in records if r['octave'] == octave]
    assert losses[0] < losses[1], records
  shapes = dream.octave_shapes(106, 159, 2, 1.4)
  assert shapes == [(75, 113), (106, 159)]
  for step, shape in ((2, shapes[0]), (4, shapes[1])):
    picture = np.asarray(Image.open(tmp_path / 'dream' / 'artifacts' / f'dream-step{step}.png'))
    assert picture.shape == (*shape, 3)
  config.num_train_steps = 7
  with pytest.raises(UserError, match='num_octave x iterations = 4 steps'):
    train.train_and_evaluate(config, str(tmp_path / 'other'))


def test_any_text_file_is_a_corpus(tmp_path):
  path = tmp_path / 'book.txt'
  path.write_text('Thus Spoke Zarathustra. ' * 40, encoding='utf-8')
  config = _config(text_lstm, 'smoke', **{'task_config.corpus': str(path)})
  data = text.load_data(config)
  _, chars = text.read_corpus(str(path), True)
  assert ''.join(chars) == ' .aehkoprstuz' and data.splits['train']['inputs'].dtype == np.uint8
  (tmp_path / 'binary.txt').write_bytes(b'\xff\xfe\x00\x01' * 50)
  config.task_config.corpus = str(tmp_path / 'binary.txt')
  with pytest.raises(UserError, match='is not UTF-8 text'):
    text.load_data(config)
