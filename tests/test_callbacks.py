"""EarlyStopping and ReduceLROnPlateau: Keras 3's decisions on the same monitored values, and
in the loop: the best weights restored, the learning rate lowered without a recompile, and
both resumed exactly from a checkpoint taken while they were counting."""
import json
import logging
import os

import ml_collections
import numpy as np
import pytest

from library import callbacks, train
from library.errors import UserError

DENSE = 'configs/mlp/mnist_dense.py'
# Validation losses with plateaus, improvements smaller and larger than min_delta, a new best
# after a long wait.
SERIES = [1.0, 0.8, 0.8, 0.79, 0.85, 0.7, 0.7, 0.71, 0.72, 0.65, 0.66, 0.67, 0.68, 0.69,
          0.5, 0.51, 0.52, 0.53, 0.54, 0.55]


def _keras():
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  import keras  # pylint: disable=import-outside-toplevel
  model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
  return keras, model


def _ours(kind, **kwargs):
  c = {'early_stopping': callbacks.EarlyStopping, 'reduce_lr': callbacks.ReduceLROnPlateau}[kind]
  base = {'early_stopping': dict(monitor='validation.loss', min_delta=0.0, patience=0,
                                 mode='auto', baseline=None, restore_best_weights=False,
                                 start_from_epoch=0),
          'reduce_lr': dict(monitor='validation.loss', factor=0.1, patience=10, mode='auto',
                            min_delta=1e-4, cooldown=0, min_lr=0.0)}[kind]
  return c(ml_collections.ConfigDict(dict(base, **kwargs)))


@pytest.mark.parametrize('kwargs', [
    dict(patience=2), dict(patience=3, min_delta=0.02), dict(patience=1, baseline=0.75),
    dict(patience=2, start_from_epoch=4), dict(patience=4, restore_best_weights=True),
    dict(patience=0)])
def test_early_stopping_decides_as_keras(kwargs):
  keras, model = _keras()
  theirs = keras.callbacks.EarlyStopping(monitor='val_loss', **kwargs)
  theirs.set_model(model)
  theirs.on_train_begin()
  ours = _ours('early_stopping', **kwargs)
  keras_stop = ours_stop = None
  for epoch, value in enumerate(SERIES):
    theirs.on_epoch_end(epoch, {'val_loss': value})
    decision = ours.on_evaluation(epoch, (epoch + 1) * 10, {'validation.loss': value})
    if model.stop_training and keras_stop is None:
      keras_stop = epoch
    if decision['stop'] and ours_stop is None:
      ours_stop = epoch
    assert ours.best == theirs.best and ours.wait == theirs.wait, epoch
    if keras_stop is not None:
      break
  assert ours_stop == keras_stop and ours.best_epoch == theirs.best_epoch
  if kwargs.get('restore_best_weights'):
    assert ours.best_step == (theirs.best_epoch + 1) * 10


@pytest.mark.parametrize('kwargs', [
    dict(patience=2), dict(patience=1, cooldown=2), dict(patience=2, min_lr=0.002, factor=0.5),
    dict(patience=1, min_delta=0.05, mode='min')])
def test_reduce_lr_on_plateau_decides_as_keras(kwargs):
  _, model = _keras()
  import keras  # pylint: disable=import-outside-toplevel
  theirs = keras.callbacks.ReduceLROnPlateau(monitor='val_loss', **kwargs)
  theirs.set_model(model)
  theirs.on_train_begin()
  ours = _ours('reduce_lr', **kwargs)
  lr = 0.1
  for epoch, value in enumerate(SERIES):
    theirs.on_epoch_end(epoch, {'val_loss': value})
    new = ours.on_evaluation(epoch, epoch, {'validation.loss': value}, lr)
    lr = new if new is not None else lr
    np.testing.assert_allclose(lr, float(model.optimizer.learning_rate), rtol=1e-6)
    assert (ours.wait, ours.cooldown_counter) == (theirs.wait, theirs.cooldown_counter)
  assert ours.reductions


def _random_case(rng):
  """A series on a 0.05 grid (so that improvements of exactly min_delta occur) and random
  arguments shared by both callbacks."""
  steps = rng.choice([-0.1, -0.05, 0.0, 0.05, 0.1], size=int(rng.integers(8, 25)),
                     p=[0.2, 0.25, 0.15, 0.25, 0.15])
  series = [float(v) for v in np.round(3.0 + np.cumsum(steps), 2)]
  mode = str(rng.choice(['auto', 'min', 'max']))
  common = dict(patience=int(rng.integers(0, 4)), mode=mode,
                min_delta=float(rng.choice([0.0, 0.05, 0.1, 0.01])))
  return series, common


@pytest.mark.parametrize('seed', range(6))
def test_callbacks_decide_as_keras_on_random_series(seed):
  """Random series and arguments, 10 cases per seed: Keras 3's EarlyStopping and
  ReduceLROnPlateau (JAX backend) and ours decide the same at every epoch, including at
  improvements of exactly min_delta (Keras compares in float32) and at min_lr."""
  keras, model = _keras()
  rng = np.random.default_rng(seed)
  for _ in range(10):
    series, common = _random_case(rng)
    es = dict(common, baseline=rng.choice([None, 3.0]), start_from_epoch=int(rng.integers(0, 3)),
              restore_best_weights=bool(rng.integers(2)))
    theirs, ours = keras.callbacks.EarlyStopping(monitor='val_loss', **es), None
    theirs.set_model(model)
    theirs.on_train_begin()
    model.stop_training = False
    ours = _ours('early_stopping', **es)
    for epoch, value in enumerate(series):
      theirs.on_epoch_end(epoch, {'val_loss': value})
      decision = ours.on_evaluation(epoch, epoch + 1, {'validation.loss': value})
      assert (ours.best, ours.wait, ours.best_epoch) == (
          theirs.best, theirs.wait, theirs.best_epoch), (series, es, epoch)
      assert decision['stop'] == model.stop_training, (series, es, epoch)
      if model.stop_training:
        break
    # The loop's arithmetic: the rate it reads is schedule x scale in float32, one float32
    # step off the rate set; the callback acts on the rate it set, as Keras reads its variable.
    lr0 = float(rng.choice([0.1, 0.05, 0.02, 1e-3]))
    factor = float(rng.choice([0.1, 0.2, 0.3, 0.5]))
    rl = dict(common, factor=factor, cooldown=int(rng.integers(0, 3)),
              min_lr=float(rng.choice([0.0, lr0 * factor ** 2, 1e-4, lr0 * factor / 3])))
    model.optimizer.learning_rate = lr0
    theirs = keras.callbacks.ReduceLROnPlateau(monitor='val_loss', **rl)
    theirs.set_model(model)
    theirs.on_train_begin()
    ours = _ours('reduce_lr', **rl)
    scale = np.float32(1.0)
    for epoch, value in enumerate(series + series[::-1]):
      reading = float(np.float32(np.float32(lr0) * scale))
      before = float(model.optimizer.learning_rate)
      theirs.on_epoch_end(epoch, {'val_loss': value})
      new = ours.on_evaluation(epoch, epoch, {'validation.loss': value}, reading)
      if new is not None:
        scale = np.float32(float(scale) * new / reading)
      after = float(model.optimizer.learning_rate)
      assert (new is not None) == (after != before), (series, rl, epoch)
      assert new is None or np.float32(new) == after, (series, rl, epoch)
      assert (ours.wait, ours.cooldown_counter, ours.best) == (
          theirs.wait, theirs.cooldown_counter, theirs.best), (series, rl, epoch)
    reductions = [r for _, r in ours.reductions]
    assert len(set(reductions)) == len(reductions), reductions  # never "reduced" to the same


def test_an_exact_min_delta_step_is_no_improvement_as_in_keras():
  """The issue's case: mode=max, min_delta=0.05, patience=2 on 3.15, 3.1, 3.2: 3.2 - 0.05 is
  3.1500000000000004 in float64 but 3.15 in float32, so Keras stops at epoch 2."""
  ours = _ours('early_stopping', mode='max', min_delta=0.05, patience=2,
               monitor='validation.accuracy')
  decisions = [ours.on_evaluation(e, e, {'validation.accuracy': v})['stop']
               for e, v in enumerate([3.15, 3.1, 3.2])]
  assert decisions == [False, False, True]


@pytest.mark.parametrize('key,value,fragment', [
    ('early_stopping.monitor', 'val_loss', 'must be train.<metric> or validation.<metric>'),
    ('early_stopping.monitor', 'validation.f1', "set callbacks.early_stopping.mode to 'max'"),
    ('reduce_lr.factor', 1.5, 'must be in (0, 1)'),
    ('early_stopping.mode', 'up', 'is not one of auto, min, max')])
def test_bad_callback_settings_are_one_line_errors(load_config, tmp_path, key, value, fragment):
  config = load_config(DENSE, 'embedded,smoke')
  section, name = key.split('.')
  config.callbacks[section].monitor = 'validation.loss'
  config.callbacks[section][name] = value
  with pytest.raises(UserError, match=fragment.replace('(', r'\(').replace(')', r'\)')):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_a_monitor_on_a_split_the_run_lacks_is_refused(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.callbacks.early_stopping.monitor = 'validation.loss'
  with pytest.raises(UserError, match="names split 'validation'.*data.validation"):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def _records(workdir, split):
  return [r for r in map(json.loads, open(os.path.join(workdir, 'metrics.jsonl')))
          if r['split'] == split]


def _stopping_config(load_config):
  config = load_config(DENSE, 'embedded,smoke')
  config.data.validation = 300
  config.num_train_steps = 40
  config.eval_every_steps = 2
  config.optimizer.learning_rate = 0.02        # too high: validation loss soon wanders
  es = config.callbacks.early_stopping
  es.monitor, es.patience, es.restore_best_weights = 'validation.loss', 3, True
  return config


def test_early_stopping_restores_the_best_weights_and_says_so(load_config, tmp_path):
  config = _stopping_config(load_config)
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  val = {r['step']: r for r in _records(tmp_path / 'run', 'validation')}
  best = min(val, key=lambda s: val[s]['loss'])
  assert results['stopped']['reason'] == 'early_stopping' and results['steps'] < 40
  assert results['stopped']['step'] == max(val) == best + 2 * 3
  assert results['weights_from_step'] == best == results['stopped']['best_step']
  np.testing.assert_allclose(results['validation']['loss'], val[best]['loss'], rtol=1e-6)
  test = _records(tmp_path / 'run', 'test')          # test metrics reach metrics.jsonl
  assert [r['step'] for r in test] == [best] and test[0]['loss'] == results['test']['loss']
  # Killed while counting patience (the checkpoint at step best + 2), resumed: the same stop.
  config.checkpoint.every_steps = 2
  config.num_train_steps = best + 2
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 40
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert resumed['resumed_from_step'] == best + 2
  for key in ('stopped', 'weights_from_step', 'validation', 'test'):
    assert resumed[key] == results[key], key
  # A rerun of the stopped run trains no further.
  again = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert again['stopped'] == results['stopped'] and again['test'] == results['test']


def test_reduce_lr_lowers_the_rate_in_the_state_without_recompiling(load_config, tmp_path,
                                                                     caplog):
  import jax  # pylint: disable=import-outside-toplevel
  config = _stopping_config(load_config)
  config.callbacks.early_stopping.monitor = ''
  rl = config.callbacks.reduce_lr
  rl.monitor, rl.patience, rl.factor, rl.min_delta = 'validation.loss', 1, 0.5, 0.0
  # 0.02 -> 0.01 -> 0.0078, and no further: reading the rate back as 0.02 x scale in float32
  # (one step above float32(0.0078)) used to "reduce" it again at every plateau.
  rl.min_lr = 0.0078
  config.num_train_steps = 30
  jax.config.update('jax_log_compiles', True)
  try:
    with caplog.at_level(logging.DEBUG, logger='jax'):
      results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  finally:
    jax.config.update('jax_log_compiles', False)
  compiles = sum('train_chunk' in r.getMessage() and 'Compiling' in r.getMessage()
                 for r in caplog.records)
  assert compiles == 1
  reductions = results['learning_rate_reductions']
  np.testing.assert_allclose([r['learning_rate'] for r in reductions], [0.01, 0.0078],
                             rtol=1e-6)
  rates = {r['step']: r['learning_rate'] for r in _records(tmp_path / 'run', 'train')}
  first = reductions[0]['step']
  np.testing.assert_allclose(rates[first], 0.02, rtol=1e-6)       # logged before the change
  np.testing.assert_allclose(rates[first + 2], 0.01, rtol=1e-6)   # in effect after it
  config.checkpoint.every_steps = 2
  config.num_train_steps = first + 2
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 30
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert resumed['learning_rate_reductions'] == reductions
  assert resumed['validation'] == results['validation']
