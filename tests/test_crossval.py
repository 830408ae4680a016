"""Validation schemes: the splitters' invariants, and every fold (seed, value) trained as a
member of one vmapped state by the one loop, giving what training each member alone gives."""
import copy
import json
import os
import re

import jax
import ml_collections
import numpy as np
import pytest
import sklearn.metrics

from library import members, train
from library.config import default_config
from library.data import splits
from library.errors import UserError
from tests.conftest import run_script


@pytest.mark.parametrize('scheme,n,k,shuffle', [
    ('kfold', 404, 4, False), ('kfold', 23, 5, True), ('loo', 9, 0, False),
    ('stratified_kfold', 40, 4, True), ('stratified_kfold', 41, 3, False)])
def test_folds_are_disjoint_and_validate_every_example_once(scheme, n, k, shuffle):
  labels = np.random.default_rng(1).integers(0, 3, n)
  folds = splits.fold_indices(scheme, n, k, seed=7, shuffle=shuffle, labels=labels)
  assert len(folds) == (n if scheme == 'loo' else k)
  validated = np.concatenate([va for _, va in folds])
  assert sorted(validated.tolist()) == list(range(n))          # covering, each exactly once
  for tr, va in folds:
    assert not set(tr) & set(va)                              # disjoint
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(n))
  sizes = [len(va) for _, va in folds]
  assert max(sizes) - min(sizes) <= 1
  if scheme == 'kfold' and not shuffle:                        # the book's contiguous folds
    assert folds[1][1].tolist() == list(range(101, 202))
  if scheme == 'stratified_kfold':
    for value in range(3):
      per_fold = [int(np.sum(labels[va] == value)) for _, va in folds]
      assert max(per_fold) - min(per_fold) <= 1, per_fold


def test_bootstrap_trains_on_draws_and_validates_out_of_bag():
  folds = splits.fold_indices('bootstrap', 200, 5, seed=3)
  assert len(folds) == 5
  for tr, oob in folds:
    assert len(tr) == 200 and len(set(tr)) < 200              # with replacement
    assert set(oob) == set(range(200)) - set(tr)              # out-of-bag, exactly
    assert 0.3 < len(oob) / 200 < 0.45                        # about 1/e
  assert not np.array_equal(folds[0][0], folds[1][0])


@pytest.mark.parametrize('scheme,k,labels,fragment', [
    ('kfold', 1, None, 'members.k=1 must be between 2 and the number of examples \\(10\\)'),
    ('kfold', 11, None, 'members.k=11 must be between 2'),
    ('stratified_kfold', 3, np.array([0] * 8 + [1] * 2), 'class 1 has only 2 examples'),
    ('stratified_kfold', 2, np.linspace(0, 1, 10), 'regression targets cannot be stratified'),
    ('holdout', 2, None, 'is not one of kfold'),
])
def test_bad_schemes_are_clear_errors(scheme, k, labels, fragment):
  with pytest.raises(UserError, match=fragment):
    splits.fold_indices(scheme, 10, k, seed=0, labels=labels)


def _regression(n=20, seed=0):
  rng = np.random.default_rng(seed)
  x = (rng.normal(size=(n, 5)) * [1, 10, 100, 0.1, 3] + [0, 5, -50, 1, 0]).astype(np.float32)
  y = (x @ np.array([1.0, 0.1, 0.01, 5.0, -1.0]) + rng.normal(size=n)).astype(np.float32)
  return x, y


def _regression_config(scheme='kfold', k=3, epochs=3, batch_size=13):
  config = default_config()
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs.hidden = (8,)
  config.model.kwargs.num_outputs = 1
  config.model.kwargs.dropout_rate = 0.1       # the per-step dropout keys must match too
  config.task_config.loss = 'mse'
  config.task_config.metrics = ('mae',)
  config.data.source = 'arrays'
  config.data.standardize = True
  config.batch_size = batch_size
  config.eval_batch_size = 4
  config.num_epochs = float(epochs)
  config.optimizer.name = 'adam'                # moments: a masked step must not move them
  config.members.scheme = scheme
  config.members.k = k
  config.progress_bar = False
  config.compilation_cache_dir = ''
  return config


def test_vmapped_folds_equal_training_each_fold_alone(tmp_path):
  """20 rows, 3 folds: 13/13/14 training rows in batches of 13, so the third fold's epochs
  have a second step the others skip (masked); validation in padded batches of 4."""
  x, y = _regression()
  config = _regression_config()
  # Evaluators over each member's own validation rows (padded batches of 4: the padding must
  # not count), as over a fold alone.
  config.evaluators.r2 = 'sklearn.metrics.r2_score'
  config.evaluators.max_error = 'sklearn.metrics.max_error'
  results = train.train_and_evaluate(config, str(tmp_path / 'cv'),
                                     arrays={'train': {'inputs': x, 'labels': y}})
  with open(tmp_path / 'cv' / 'history.json') as f:
    history = json.load(f)
  assert results['devices'] == 3 and len(results['members']) == 3
  labels, predictions, sizes = [], [], []
  for f, (tr, va) in enumerate(splits.fold_indices('kfold', 20, 3, seed=0)):
    alone = copy.deepcopy(config)
    alone.members.scheme = ''
    alone.seed = f
    single, state, s = train.train_and_evaluate(
        alone, str(tmp_path / f'fold{f}'), devices=jax.devices()[:1],
        arrays={'train': {'inputs': x[tr], 'labels': y[tr]},
                'validation': {'inputs': x[va], 'labels': y[va]}}, return_state=True)
    fold = results['members'][f]
    assert fold['train_size'] == len(tr) and fold['val_size'] == len(va)
    for name in ('mae', 'loss', 'r2', 'max_error'):
      np.testing.assert_allclose(fold[f'val_{name}'], single['validation'][name], rtol=1e-5)
    validation = s.datasets.as_float().splits['validation']
    predicted = np.asarray(s.task.predict(state, validation['inputs']))[:, 0]
    np.testing.assert_allclose(single['validation']['r2'], sklearn.metrics.r2_score(
        validation['labels'], predicted), rtol=1e-5)
    np.testing.assert_allclose(single['validation']['max_error'], np.max(np.abs(
        validation['labels'].ravel() - predicted)), rtol=1e-5)
    labels.append(validation['labels'].ravel())
    predictions.append(predicted)
    sizes.append(len(va))
    per_epoch = [r for r in map(json.loads, open(tmp_path / f'fold{f}' / 'metrics.jsonl'))
                 if r['split'] == 'validation']
    for name in ('mae', 'r2'):
      np.testing.assert_allclose(np.asarray(history['validation'][name])[:, f],
                                 [r[name] for r in per_epoch], rtol=1e-5)
  mean = np.mean([fold['val_mae'] for fold in results['members']])
  np.testing.assert_allclose(results['mean']['val_mae'], mean, rtol=1e-6)
  # Out of fold: every row once, from the fold that did not train on it, as one split (the
  # folds' rows weighted by their sizes; R^2 and the largest error over all of them).
  (pooled,) = results['out_of_fold']
  labels, predictions = np.concatenate(labels), np.concatenate(predictions)
  np.testing.assert_allclose(pooled['mae'], np.mean(np.abs(labels - predictions)), rtol=1e-5)
  np.testing.assert_allclose(pooled['mae'], np.average(
      [fold['val_mae'] for fold in results['members']], weights=sizes), rtol=1e-5)
  np.testing.assert_allclose(pooled['r2'], sklearn.metrics.r2_score(labels, predictions),
                             rtol=1e-5)
  np.testing.assert_allclose(pooled['max_error'], np.max(np.abs(labels - predictions)),
                             rtol=1e-5)


def test_seeds_leave_one_out_and_bootstrap_run_as_one_program(tmp_path):
  x, y = _regression(n=13)
  arrays = {'train': {'inputs': x, 'labels': y}}
  config = _regression_config('loo', epochs=2, batch_size=4)
  # One row per member: R^2 is an out-of-fold score only (each member's own is undefined).
  config.evaluators.r2 = 'sklearn.metrics.r2_score'
  loo = train.train_and_evaluate(config, str(tmp_path / 'loo'), arrays=arrays)
  # 13 folds on 8 devices: 7 devices with 2 folds each, one of them padding.
  assert len(loo['members']) == 13 and loo['devices'] == 7
  assert all(f['val_size'] == 1 and 'val_r2' not in f for f in loo['members'])
  (pooled,) = loo['out_of_fold']
  np.testing.assert_allclose(pooled['mae'], loo['mean']['val_mae'], rtol=1e-5)
  assert np.isfinite(pooled['r2']) and pooled['r2'] < 1

  config = _regression_config('bootstrap', k=4, epochs=2, batch_size=4)
  boot = train.train_and_evaluate(config, str(tmp_path / 'boot'), arrays=arrays)
  assert sorted({f['val_size'] for f in boot['members']}) != [13]
  assert 'out_of_fold' not in boot      # out-of-bag rows overlap: no pooled score

  config = _regression_config('seeds', k=5, epochs=2, batch_size=4)
  config.data.test = 4
  config.data.pool = 'train'
  seeds = train.train_and_evaluate(config, str(tmp_path / 'seeds'), arrays=arrays)
  tests = [f['test_mae'] for f in seeds['members']]
  assert len(set(tests)) == 5                                  # five different models
  np.testing.assert_allclose(seeds['std']['test_mae'], np.std(tests), rtol=1e-6)
  assert [f['seed'] for f in seeds['members']] == [0, 1, 2, 3, 4]


def test_crossval_script_on_the_real_boston_rows(tmp_path):
  workdir = str(tmp_path / 'kfold')
  args = ('--config=configs/mlp/boston_kfold.py:embedded,smoke', f'--workdir={workdir}')
  proc = run_script('scripts.crossval', *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert [fold['val_size'] for fold in results['members']] == [101] * 4
  assert set(results['mean']) >= {'val_mae', 'val_loss', 'test_mae'}
  assert results['train_seconds'] > 0 and results['epochs'] == 2
  for name in ('curves.png', 'mean_validation.png', 'history.json', 'summary.txt',
               'metrics.jsonl'):
    assert os.path.exists(os.path.join(workdir, name)), name
  none = run_script('scripts.crossval', *args, '--config.members.scheme=',
                    f'--workdir={tmp_path / "none"}')
  assert none.returncode == 2 and 'members.scheme is empty' in none.stderr
  assert not os.path.exists(tmp_path / 'none')
  over = run_script('scripts.crossval', *args, '--start_over')
  assert over.returncode == 0, over.stderr[-3000:]
  assert any(n.startswith('previous-') for n in os.listdir(workdir))
  for k in ('1', '1000'):
    bad = run_script('scripts.crossval', '--config=configs/mlp/boston_kfold.py:embedded,smoke',
                     f'--config.members.k={k}', f'--workdir={tmp_path / ("bad" + k)}')
    assert bad.returncode == 2 and f'members.k={k} must be between 2' in bad.stderr
    assert not os.path.exists(tmp_path / ('bad' + k))


def test_sweep_draws_variants_together_and_the_capacity_curve(tmp_path):
  from tests.test_sequences import write_keras_imdb  # pylint: disable=import-outside-toplevel
  path = write_keras_imdb(tmp_path / 'imdb.npz')
  workdir = tmp_path / 'overfit'
  proc = run_script('scripts.sweep', '--config=configs/mlp/imdb_overfit.py',
                    '--runs=smaller,dropout', '--common=smoke', f'--workdir={workdir}',
                    f'--set=data.path={path}', '--set=progress_bar=false')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((workdir / 'sweep.json').read_text())
  assert [r['run'] for r in rows] == ['smaller', 'dropout']
  assert rows[0]['params'] < rows[1]['params']
  assert (workdir / 'curves.png').exists()
  workdir = tmp_path / 'capacity'
  proc = run_script('scripts.sweep', '--config=configs/mlp/boston_capacity.py',
                    '--runs=width=2,width=16', '--common=embedded,smoke', '--capacity',
                    '--metric=mae', f'--workdir={workdir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'capacity.png').exists() and (workdir / 'width=16' / 'history.json').exists()
  bad = run_script('scripts.sweep', '--config=configs/mlp/imdb_overfit.py', '--runs=huge',
                   f'--workdir={tmp_path / "bad"}')
  assert bad.returncode == 2 and "unknown config variant 'huge'" in bad.stderr
  assert not (tmp_path / 'bad').exists()


def test_learning_rate_values_are_members_equal_to_runs_alone(tmp_path):
  """2 folds x 3 learning rates = 6 members of one state; each equals its own run."""
  x, y = _regression()
  config = _regression_config(k=2, epochs=2)
  config.members.learning_rate = (1e-3, 3e-3, 1e-2)
  results = train.train_and_evaluate(config, str(tmp_path / 'sweep'),
                                     arrays={'train': {'inputs': x, 'labels': y}})
  rows = results['members']
  assert [(r['fold'], r['learning_rate']) for r in rows] == [
      (f, lr) for f in (0, 1) for lr in (1e-3, 3e-3, 1e-2)]
  assert len({r['val_mae'] for r in rows}) == 6
  for row in rows[1::2]:
    tr, va = splits.fold_indices('kfold', 20, 2, seed=0)[row['fold']]
    alone = copy.deepcopy(config)
    alone.members.scheme, alone.members.learning_rate = '', ()
    alone.seed, alone.optimizer.learning_rate = row['fold'], row['learning_rate']
    single = train.train_and_evaluate(
        alone, str(tmp_path / f'm{row["member"]}'), devices=jax.devices()[:1],
        arrays={'train': {'inputs': x[tr], 'labels': y[tr]},
                'validation': {'inputs': x[va], 'labels': y[va]}})
    np.testing.assert_allclose(row['val_mae'], single['validation']['mae'], rtol=1e-5)


@pytest.mark.parametrize('optimizer', ['adam', 'adamw'])
def test_weight_decay_dropout_and_penalty_values_are_members_equal_to_runs_alone(tmp_path,
                                                                                 optimizer):
  """2 folds x 2 weight decays x 2 dropout rates x 2 L2 factors = 16 members of one program;
  each equals its own run with those values as constants (adam: decay added to the gradient;
  adamw: decoupled)."""
  x, y = _regression()
  config = _regression_config(k=2, epochs=2)
  config.optimizer.name = optimizer
  config.optimizer.learning_rate = 1e-2
  config.members.weight_decay = (0.0, 0.5)
  config.members.dropout_rate = (0.0, 0.5)
  config.members.l2 = (0.0, 0.1)
  results = train.train_and_evaluate(config, str(tmp_path / 'grid'),
                                     arrays={'train': {'inputs': x, 'labels': y}})
  rows = results['members']
  assert len(rows) == 16 and len({r['val_loss'] for r in rows}) == 16
  assert [(r['fold'], r['weight_decay'], r['dropout_rate'], r['l2']) for r in rows[:3]] == [
      (0, 0.0, 0.0, 0.0), (0, 0.0, 0.0, 0.1), (0, 0.0, 0.5, 0.0)]
  for row in (rows[5], rows[10], rows[15]):
    tr, va = splits.fold_indices('kfold', 20, 2, seed=0)[row['fold']]
    alone = copy.deepcopy(config)
    alone.members.scheme = ''
    alone.members.weight_decay = alone.members.dropout_rate = alone.members.l2 = ()
    alone.seed, alone.optimizer.weight_decay = row['fold'], row['weight_decay']
    alone.model.kwargs.dropout_rate = row['dropout_rate']
    alone.task_config.regularization.l2 = row['l2']
    single = train.train_and_evaluate(
        alone, str(tmp_path / f'm{row["member"]}'), devices=jax.devices()[:1],
        arrays={'train': {'inputs': x[tr], 'labels': y[tr]},
                'validation': {'inputs': x[va], 'labels': y[va]}})
    np.testing.assert_allclose(row['val_loss'], single['validation']['loss'], rtol=1e-5)
    np.testing.assert_allclose(row['val_mae'], single['validation']['mae'], rtol=1e-5)


def test_member_values_out_of_range_or_not_held_by_the_task_are_one_line_errors(tmp_path):
  x, y = _regression()
  arrays = {'train': {'inputs': x, 'labels': y}}
  for key, values, fragment in [
      ('dropout_rate', (0.2, 1.0), 'members.dropout_rate=(0.2, 1.0): every value must be a '
                                   'finite number in [0, 1)'),
      ('l1', (-1.0,), 'members.l1=(-1.0,): every value must be a finite number >= 0'),
      ('learning_rate', (0.0,), 'must be a finite number > 0'),
      ('learning_rate', (1e-3, float('nan')), 'must be a finite number > 0'),
      ('l2', (float('inf'),), 'members.l2=(inf,): every value must be a finite number >= 0')]:
    config = _regression_config()
    config.members[key] = values
    with pytest.raises(UserError, match=re.escape(fragment)):
      train.train_and_evaluate(config, str(tmp_path / key), arrays=arrays)
    assert not (tmp_path / key).exists()
  # An evaluator named as a member's field, or watched per member where members have none.
  config = _regression_config()
  config.members.learning_rate = (1e-3, 1e-2)
  config.evaluators.learning_rate = 'sklearn.metrics.r2_score'
  with pytest.raises(UserError, match="evaluators.learning_rate: the name of a member's field"):
    train.train_and_evaluate(config, str(tmp_path / 'named'), arrays=arrays)
  config = _regression_config('loo')
  config.evaluators.r2 = 'sklearn.metrics.r2_score'
  config.members.keep_best, config.checkpoint.best_metric = True, 'validation.r2'
  with pytest.raises(UserError, match='members.scheme=loo validates one row'):
    train.train_and_evaluate(config, str(tmp_path / 'loo'), arrays=arrays)
  assert not (tmp_path / 'named').exists() and not (tmp_path / 'loo').exists()
  config = _regression_config()
  config.model.module, config.model.name = 'projects.recurrent.models', 'SequenceNet'
  config.model.kwargs = ml_collections.ConfigDict({'rnn': 'gru', 'units': (4,), 'dropout': 0.1})
  config.members.dropout_rate = (0.1, 0.2)
  with pytest.raises(UserError, match='members.dropout_rate: model SequenceNet has no '
                                      'dropout_rate'):
    train.train_and_evaluate(config, str(tmp_path / 'rnn'), arrays=arrays)


def test_keep_best_ends_each_member_at_its_own_best_evaluation(tmp_path):
  """A rate high enough that validation loss goes up and down: each member's final numbers
  are those of its own best evaluation, and its row names that step."""
  x, y = _regression(n=40)
  config = _regression_config(k=2, epochs=8)
  config.optimizer.learning_rate = 0.3
  config.members.learning_rate = (0.3, 0.03)
  config.members.keep_best = True
  config.checkpoint.best_metric, config.checkpoint.best_mode = 'validation.loss', 'min'
  results = train.train_and_evaluate(config, str(tmp_path / 'best'),
                                     arrays={'train': {'inputs': x, 'labels': y}})
  with open(tmp_path / 'best' / 'history.json') as f:
    history = json.load(f)
  curves = np.asarray(history['validation']['loss'])          # (evaluations, members)
  steps = history['steps']
  assert results['weights_from_step'] is None
  moved = 0
  for m, row in enumerate(results['members']):
    best = int(np.argmin(curves[:, m]))
    assert row['best_step'] == steps[best]
    np.testing.assert_allclose(row['val_loss'], curves[best, m], rtol=1e-5)
    moved += best != len(steps) - 1
  assert moved >= 1, curves          # some member's best is not its last evaluation
  bad = _regression_config()
  bad.members.keep_best = True
  with pytest.raises(UserError, match='members.keep_best needs checkpoint.best_metric='):
    train.train_and_evaluate(bad, str(tmp_path / 'bad'),
                             arrays={'train': {'inputs': x, 'labels': y}})


def test_a_killed_cross_validation_resumes_to_bitwise_the_same_folds(tmp_path):
  import sys  # pylint: disable=import-outside-toplevel
  from tests.test_scripts import kill_midway_then_rerun  # pylint: disable=import-outside-toplevel

  def command(workdir):
    return [sys.executable, '-m', 'scripts.crossval',
            '--config=configs/mlp/boston_kfold.py:embedded,smoke', f'--workdir={workdir}',
            '--config.num_epochs=12', '--config.checkpoint.every_epochs=1',
            '--config.steps_per_dispatch.cpu=1', '--config.compilation_cache_dir=']

  killed, straight = kill_midway_then_rerun(command, tmp_path, at_least=2 * 303)
  resumed = json.loads((killed / 'results.json').read_text())
  uninterrupted = json.loads((straight / 'results.json').read_text())
  assert resumed['members'] == uninterrupted['members']
  assert json.loads((killed / 'history.json').read_text()) == json.loads(
      (straight / 'history.json').read_text())


def test_sigterm_on_members_with_values_saves_and_resumes_to_the_uninterrupted_folds(tmp_path):
  """4 folds x 2 dropout rates x 2 weight decays: SIGTERM mid-run, then a rerun; the state's
  per-member values come back from the checkpoint."""
  import signal  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.test_scripts import kill_midway_then_rerun  # pylint: disable=import-outside-toplevel

  def command(workdir):
    return [sys.executable, '-m', 'scripts.crossval',
            '--config=configs/mlp/boston_kfold.py:embedded,smoke', f'--workdir={workdir}',
            '--config.num_epochs=5', '--config.checkpoint.every_epochs=1',
            '--config.members.dropout_rate=0.0,0.3', '--config.members.weight_decay=0.0,0.01',
            '--config.steps_per_dispatch.cpu=1',
            f'--config.compilation_cache_dir={tmp_path / "cache"}']

  killed, straight = kill_midway_then_rerun(command, tmp_path, at_least=2 * 303,
                                            sig=signal.SIGTERM)
  resumed = json.loads((killed / 'results.json').read_text())
  uninterrupted = json.loads((straight / 'results.json').read_text())
  assert resumed['num_members'] == 16
  assert resumed['members'] == uninterrupted['members']
  assert json.loads((killed / 'history.json').read_text()) == json.loads(
      (straight / 'history.json').read_text())


def test_a_rerun_of_members_from_the_compilation_cache_gives_the_same_numbers(tmp_path):
  """A second run of the same members (a fresh workdir), its programs from JAX's persistent
  compilation cache, gives exactly the first one's numbers."""
  x, y = _regression()
  arrays = {'train': {'inputs': x, 'labels': y}}
  config = _regression_config(epochs=2)
  config.compilation_cache_dir = str(tmp_path / 'cache')
  first = train.train_and_evaluate(config, str(tmp_path / 'a'), arrays=arrays)
  second = train.train_and_evaluate(config, str(tmp_path / 'b'), arrays=arrays)
  assert first['members'] == second['members']


def test_a_learning_rate_grid_is_one_program_with_a_ranked_table(tmp_path):
  workdir = tmp_path / 'lr'
  proc = run_script('scripts.sweep', '--config=configs/mlp/boston_kfold.py',
                    '--common=embedded,smoke', '--grid=optimizer.learning_rate=1e-3,1e-2',
                    '--metric=mae', f'--workdir={workdir}', '--set=compilation_cache_dir=')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((workdir / 'sweep.json').read_text())
  assert sorted(r['learning_rate'] for r in rows) == [1e-3, 1e-2]
  assert rows[0]['best_val_mae'] <= rows[1]['best_val_mae']        # ranked, best first
  results = json.loads((workdir / 'run' / 'results.json').read_text())
  assert results['num_members'] == 8                                # 4 folds x 2 rates, one run
  # The out-of-fold score of each rate: its 4 folds' rows together.
  for pooled in results['out_of_fold']:
    group = [m for m in results['members'] if m['learning_rate'] == pooled['learning_rate']]
    assert len(group) == 4 and {m['fold'] for m in group} == {0, 1, 2, 3}
    np.testing.assert_allclose(pooled['mae'], np.average(
        [m['val_mae'] for m in group], weights=[m['val_size'] for m in group]), rtol=1e-5)
  assert sorted(p['learning_rate'] for p in results['out_of_fold']) == [1e-3, 1e-2]
  assert (workdir / 'sweep.md').read_text().startswith('| rank |')
  assert (workdir / 'values.png').exists() and (workdir / 'curves.png').exists()
  evaluated = run_script('scripts.evaluate', f'--workdir={workdir / "run"}', '--split=test')
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  test = json.loads(evaluated.stdout.strip().splitlines()[-1])
  assert len(test['mae']['members']) == 8
  np.testing.assert_allclose(test['mae']['mean'], results['test']['mae'], rtol=1e-5)
  predicted = run_script('scripts.predict', f'--workdir={workdir / "run"}', '--input=x.npy')
  assert predicted.returncode == 2 and 'not one model' in predicted.stderr
  bad = run_script('scripts.sweep', '--config=configs/mlp/boston_kfold.py', '--common=embedded',
                   '--random=optimizer.learning_rate=loguniform:0:1', f'--workdir={tmp_path / "b"}')
  assert bad.returncode == 2 and 'LO > 0 for loguniform' in bad.stderr
  assert not (tmp_path / 'b').exists()


def test_members_restore_and_resume_on_another_device_count(tmp_path):
  """5 folds padded to a multiple of the devices: written on 1 device (5 members), resumed on
  2 (padded to 6), restored on 8 (5 devices of 1 member each). Each fold comes back whole and
  ends where an uninterrupted run on one device count ends."""
  from library import inference  # pylint: disable=import-outside-toplevel
  x, y = _regression(n=30)
  arrays = {'train': {'inputs': x, 'labels': y}}
  config = _regression_config(k=5, epochs=2, batch_size=8)
  workdir = str(tmp_path / 'moved')
  train.train_and_evaluate(config, workdir, arrays=arrays, devices=jax.devices()[:1])
  longer = copy.deepcopy(config)
  longer.num_epochs = 4.0
  moved = train.train_and_evaluate(longer, workdir, arrays=arrays, devices=jax.devices()[:2])
  assert moved['resumed_from_step'] == moved['steps'] // 2 and moved['devices'] == 2
  alone = train.train_and_evaluate(longer, str(tmp_path / 'alone'), arrays=arrays,
                                   devices=jax.devices()[:1])
  for a, b in zip(moved['members'], alone['members']):
    np.testing.assert_allclose(a['val_mae'], b['val_mae'], rtol=1e-5)
  s = train.setup(longer, arrays)                 # every device: 5 of them take a member each
  assert s.feed.padded == 5 and s.mesh.size == 5
  state, meta = inference.restore(workdir, longer, s.state, 'latest', s.hook.size)
  assert meta['step'] == moved['steps']
  np.testing.assert_allclose(s.feed.evaluate(state, 'validation')['mae'],
                             [m['val_mae'] for m in moved['members']], rtol=1e-5)


def test_best_epochs_are_epochs_whatever_the_evaluation_cadence(tmp_path):
  """Evaluations every 2 epochs: best_epoch, best_epoch_of_mean and history.json count in
  epochs (2, 4, 6), not in evaluations (1, 2, 3)."""
  x, y = _regression(n=39)
  config = _regression_config(epochs=6)
  config.eval_every_epochs = 2.0
  results = train.train_and_evaluate(config, str(tmp_path), arrays={
      'train': {'inputs': x, 'labels': y}})
  history = json.loads((tmp_path / 'history.json').read_text())
  assert history['epochs'] == [2.0, 4.0, 6.0]
  losses = np.asarray(history['validation']['loss'])          # (evaluations, folds)
  for m, row in enumerate(results['members']):
    assert row['best_epoch'] == history['epochs'][int(np.argmin(losses[:, m]))]
  assert results['best_epoch_of_mean']['loss'] == history['epochs'][
      int(np.argmin(losses.mean(1)))]
  assert {row['best_epoch'] for row in results['members']} <= {2, 4, 6}


def test_the_best_epoch_of_the_mean_follows_each_metrics_direction():
  """best_epoch_of_mean: the lowest mean loss or mae, the highest accuracy or AUC (of an
  output's too), as callbacks' mode='auto' reads the names."""
  import types  # pylint: disable=import-outside-toplevel
  lay = types.SimpleNamespace(names=[{'fold': 0}, {'fold': 1}], data={}, train_rows=[[0], [1]],
                              eval_rows={'validation': [[1], [0]]})
  curves = {'loss': [[3, 3], [1, 1], [2, 2]], 'mae': [[3, 2], [2, 2], [1, 1]],
            'auc': [[.5, .6], [.7, .8], [.9, .9]], 'out_accuracy': [[.1, .1], [.9, .9], [.5, .5]]}
  history = {'train': {}, 'validation': curves, 'steps': {'validation': [2, 4, 6]}}
  final = {'validation': {n: np.asarray(v[-1]) for n, v in curves.items()}}
  out = members.results(lay, history, final, 'kfold', steps_per_epoch=2)
  assert out['best_epoch_of_mean'] == {'loss': 2, 'mae': 3, 'auc': 3, 'out_accuracy': 2}


def test_convolutional_members_loop_or_batch_to_the_same_numbers(tmp_path):
  """members.vectorize: each member's step written out one after another ('loop', what
  'auto' picks for a convnet on a CPU) or batched by vmap train the same folds."""
  import importlib  # pylint: disable=import-outside-toplevel
  convnet = importlib.import_module('configs.convnets.mnist_convnet')
  out = {}
  for mode in ('loop', 'vmap'):
    config = convnet.get_config('embedded,smoke')
    config.compilation_cache_dir, config.progress_bar = '', False
    config.members.scheme, config.members.k, config.members.vectorize = 'kfold', 2, mode
    config.data.max_train = 256
    config.model.kwargs.features, config.model.kwargs.dense = (4, 8, 8), (8,)
    out[mode] = train.train_and_evaluate(config, str(tmp_path / mode))
  for a, b in zip(out['loop']['members'], out['vmap']['members']):
    np.testing.assert_allclose(a['val_loss'], b['val_loss'], rtol=2e-5)
    np.testing.assert_allclose(a['test_accuracy'], b['test_accuracy'], atol=1e-6)
  # 'auto' (on one CPU device): one member at a time for a convolution's kernel (5 axes with
  # the member axis), batched for dense layers (3).
  from library import members  # pylint: disable=import-outside-toplevel
  for kernel, calls in (((3, 3, 3, 1, 4), 3), ((3, 5, 4), 1)):
    seen = []
    members.over_members('auto', lambda w: seen.append(w.shape) or w.sum(),
                         np.ones(kernel, np.float32))
    assert len(seen) == calls and seen[0] == kernel[1:], seen      # (vmap: traced once)
  with pytest.raises(UserError, match="members.vectorize='map' is not one of auto, vmap, loop"):
    config.members.vectorize = 'map'
    train.train_and_evaluate(config, str(tmp_path / 'bad'))
