"""Book chapter 7 in the loop: two inputs, three outputs with their own losses and weights,
separable convolutions with batch norm and residual connections, ensembles of runs."""
import json

import jax
import numpy as np
import pytest

from library import ensemble, supervised, train
from library.errors import UserError
from projects.convnets import models as convnets
from projects.functional import data, models
from tests.conftest import run_script


def test_question_answering_learns_what_neither_input_tells_alone(load_config, tmp_path):
  config = load_config('configs/functional/question_answering.py', 'smoke')
  config.data.generator_kwargs.num_examples = 1600
  config.num_train_steps, config.eval_every_steps = 160, 40
  results = train.train_and_evaluate(config, str(tmp_path / 'qa'))
  baseline = data.best_single_input_accuracy()
  assert results['test']['accuracy'] > baseline + 0.3, results['test']   # both inputs used
  splits = data.question_answering(num_examples=40, text_length=20, question_length=5)
  assert set(splits['train']['inputs']) == {'text', 'question'}


def test_three_outputs_have_their_own_losses_weights_and_metrics(load_config, tmp_path):
  config = load_config('configs/functional/multi_output.py', 'smoke')
  results = train.train_and_evaluate(config, str(tmp_path / 'social'))
  assert set(results['test']) == {'loss', 'age_loss', 'age_mae', 'income_loss',
                                  'income_accuracy', 'gender_loss', 'gender_accuracy'}
  t = results['test']
  weighted = 0.25 * t['age_loss'] + 1.0 * t['income_loss'] + 10.0 * t['gender_loss']
  np.testing.assert_allclose(t['loss'], weighted, rtol=1e-5)   # Keras' weighted total
  record = json.loads((tmp_path / 'social' / 'metrics.jsonl').read_text().splitlines()[0])
  assert {'age_mae', 'income_accuracy', 'gender_accuracy'} <= set(record)
  config.task_config.output_losses = ('mse', 'mse')
  with pytest.raises(UserError, match='output_losses has 2 entries for 3 outputs'):
    supervised.validate_task_config(config)
  config.task_config.output_losses = ('mse', 'mse', 'hinge')
  with pytest.raises(UserError, match="output_losses='hinge' is not one of"):
    supervised.validate_task_config(config)


def test_functional_models_have_the_books_layers():
  qa = models.QuestionAnswering()
  x = {'text': np.zeros((1, 100), np.int32), 'question': np.zeros((1, 10), np.int32)}
  params = jax.eval_shape(qa.init, jax.random.key(0), x)['params']
  count = sum(np.prod(p.shape) for p in jax.tree.leaves(params))
  # Keras: embeddings 640,000 + 320,000, LSTMs 12,416 + 3,136, dense 48 x 500 + 500.
  assert count == 640000 + 320000 + 12416 + 3136 + 24500
  social = models.SocialMedia()
  shapes = jax.eval_shape(social.init, jax.random.key(0), np.zeros((1, 300), np.int32))
  out = jax.eval_shape(lambda v: social.apply(v, np.zeros((2, 300), np.int32)), shapes)
  assert {k: v.shape for k, v in out.items()} == {'age': (2,), 'income': (2, 10),
                                                   'gender': (2,)}
  with pytest.raises(UserError, match='texts are too short'):
    social.init(jax.random.key(0), np.zeros((1, 100), np.int32))


def test_separable_convolutions_count_as_keras_and_batch_norm_is_model_state():
  layer = convnets.SeparableConv(64)
  params = layer.init(jax.random.key(0), np.zeros((1, 8, 8, 32)))['params']
  assert sum(np.prod(p.shape) for p in jax.tree.leaves(params)) == 32 * 9 + 32 * 64 + 64
  net = convnets.SeparableConvnet(residual=True, batch_norm=True)
  variables = net.init(jax.random.key(0), np.zeros((1, 28, 28, 1)))
  assert set(variables) == {'params', 'batch_stats'}
  assert 'shortcut0' in variables['params'] and 'bn2_1' in variables['batch_stats']


def test_separable_residual_bn_config_trains_and_updates_its_statistics(load_config, tmp_path):
  from library import inference  # pylint: disable=import-outside-toplevel
  config = load_config('configs/convnets/digits_separable.py', 'residual_bn,smoke')
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert 0 <= results['test']['accuracy'] <= 1
  state, _ = inference.load_state(str(tmp_path / 'run'))
  mean = np.asarray(state.model_state['batch_stats']['bn0_0']['mean'])
  assert np.abs(mean).max() > 0          # moved from its zero start by training batches


def _dense_run(load_config, workdir, seed):
  config = load_config('configs/mlp/mnist_dense.py', 'embedded,smoke')
  config.seed = seed
  config.data.validation = 200
  config.num_train_steps = 30
  config.eval_every_steps = 30
  config.data.holdout_seed = 0     # the same validation and test examples for every seed
  train.train_and_evaluate(config, str(workdir))
  return str(workdir)


def test_an_ensemble_of_runs_scores_against_each_member(load_config, tmp_path):
  runs = [_dense_run(load_config, tmp_path / f's{seed}', seed) for seed in range(3)]
  equal = ensemble.ensemble(runs)
  assert [m['weight'] for m in equal['members']] == pytest.approx([1 / 3] * 3)
  accuracies = [m['accuracy'] for m in equal['members']]
  assert len(set(accuracies)) > 1 and equal['ensemble']['accuracy'] >= min(accuracies)
  fitted = ensemble.ensemble(runs, weighted=True)
  weights = [m['weight'] for m in fitted['members']]
  assert sum(weights) == pytest.approx(1.0) and min(weights) >= 0
  proc = run_script('scripts.ensemble', f'--workdirs={runs[0]},{runs[1]}', '--fit_weights',
                    f'--output={tmp_path / "ensemble.json"}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads((tmp_path / 'ensemble.json').read_text())['weights'] == (
      'fitted on validation')
  bad = run_script('scripts.ensemble', f'--workdirs={runs[0]},{tmp_path / "nope"}')
  assert bad.returncode == 2 and 'is not a directory' in bad.stderr
