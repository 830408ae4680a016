"""Autoencoders (projects/autoencoders): real steps of every config, denoising, training on the
normal classes only, and the anomaly and clustering scripts end to end on the real data."""
import json

import numpy as np
import pytest

from configs.autoencoders import breast_cancer, digits
from library import train
from library.errors import UserError
from projects.autoencoders import analysis
from tests.conftest import run_script


@pytest.mark.parametrize('variant', ['smoke', 'conv,smoke', 'denoising,smoke',
                                     'anomaly,conv,smoke'])
def test_digit_autoencoders_take_real_steps_and_reconstruct_the_input_shape(tmp_path, variant):
  config = digits.get_config(variant)
  config.compilation_cache_dir = ''
  results = train.train_and_evaluate(config, str(tmp_path / 'ae'))
  assert results['steps'] == 6 and np.isfinite(results['test']['loss'])
  if 'anomaly' in variant:     # the training split keeps digits 0-8 only
    s = train.setup(config)
    assert 9 not in set(np.asarray(s.datasets.splits['train']['labels']).tolist())
    assert 9 in set(np.asarray(s.datasets.splits['test']['labels']).tolist())


def test_a_dense_autoencoder_learns_to_reconstruct_digits(tmp_path):
  config = digits.get_config()
  config.compilation_cache_dir = ''
  config.progress_bar = False
  config.num_epochs = 3.0
  config.eval_every_epochs = 1.0
  results = train.train_and_evaluate(config, str(tmp_path / 'ae'))
  records = [json.loads(line) for line in open(tmp_path / 'ae' / 'metrics.jsonl')]
  val = [r['loss'] for r in records if r['split'] == 'validation']
  # The baseline: every pixel predicted as its mean over the training digits (no code at all).
  s = train.setup(config).datasets.splits
  mean = np.clip(np.asarray(s['train']['inputs']).mean(0), 1e-6, 1 - 1e-6)
  x = np.asarray(s['test']['inputs'])
  baseline = float(np.mean(-(x * np.log(mean) + (1 - x) * np.log(1 - mean))))
  assert val[-1] < val[0] and results['test']['loss'] < 0.8 * baseline, (val, baseline)


def test_the_best_f1_threshold_separates_a_hand_made_example():
  scores = np.array([0.1, 0.2, 0.3, 0.35, 0.9, 1.0])
  anomalous = np.array([0, 0, 0, 1, 1, 1], bool)
  threshold = analysis.best_f1_threshold(scores, anomalous)
  assert 0.3 < threshold < 0.35
  np.testing.assert_array_equal(scores > threshold, anomalous)


def test_anomaly_and_cluster_scripts_on_the_real_tables(tmp_path):
  """Breast cancer (benign = normal), a short run: malignant tumours reconstruct worse."""
  proc = run_script('scripts.anomaly', '--config=configs/autoencoders/breast_cancer.py',
                    f'--workdir={tmp_path / "bc"}', '--config.num_epochs=40',
                    '--config.progress_bar=False', '--config.compilation_cache_dir=')
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads((tmp_path / 'bc' / 'anomaly.json').read_text())
  assert report['test_roc_auc'] > 0.8 and report['test_anomalies'] > 0, report
  assert 0 < report['test_recall'] <= 1 and (tmp_path / 'bc' / 'anomaly.png').exists()
  config = digits.get_config('smoke')
  config.compilation_cache_dir = ''
  report = analysis.clusters(config, str(tmp_path / 'digits'))   # scripts.cluster's work
  assert report['k'] == 10 and report['examples'] == 1000 and report['code_size'] == 4
  assert report['pixels_ari'] > 0.2            # k-means on real digits finds real structure
  assert (tmp_path / 'digits' / 'clusters.png').exists()
  bad = run_script('scripts.anomaly', '--config=configs/autoencoders/digits.py:smoke',
                   f'--workdir={tmp_path / "none"}')
  assert bad.returncode == 2 and 'needs task_config.normal_classes' in bad.stderr


def test_bad_autoencoder_settings_are_one_line_errors(tmp_path):
  config = digits.get_config('smoke')
  config.task_config.normal_classes = (11,)
  with pytest.raises(UserError, match=r'normal_classes=\(11,\): no training example'):
    train.train_and_evaluate(config, str(tmp_path / 'a'))
  config = digits.get_config('smoke')
  config.model.kwargs.out_shape = (28, 28, 3)
  with pytest.raises(UserError, match=r'reconstructs shape \(28, 28, 3\), the inputs are '
                                      r'\(28, 28, 1\)'):
    train.train_and_evaluate(config, str(tmp_path / 'b'))
  config = breast_cancer.get_config('smoke')
  config.data.name = 'titanic'
  with pytest.raises(UserError, match="data.name='titanic' is not a scikit-learn dataset"):
    train.train_and_evaluate(config, str(tmp_path / 'c'))
  assert not any((tmp_path / n).exists() for n in 'abc')


def test_members_start_from_a_pretrained_encoder_each_with_its_own_head(tmp_path):
  from configs.autoencoders import few_labels  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  config = digits.get_config('conv,smoke')
  config.compilation_cache_dir = ''
  train.train_and_evaluate(config, str(tmp_path / 'ae'))
  config = few_labels.get_config('pretrained,smoke')
  config.compilation_cache_dir = ''
  config.model_init.path = str(tmp_path / 'ae')
  s = train.setup(config)
  pretrained, _ = inference.load_state(str(tmp_path / 'ae'))
  params = s.state.params
  for name in ('conv1', 'conv2', 'code'):
    for m in range(5):
      np.testing.assert_array_equal(np.asarray(params[name]['kernel'][m]),
                                    np.asarray(pretrained.params[name]['kernel']))
  heads = np.asarray(params['head']['kernel'])
  assert not np.array_equal(heads[0], heads[1])    # each seed its own fresh head
  results = train.train_and_evaluate(config, str(tmp_path / 'few'))
  assert results['num_members'] == 5 and results['steps'] == 6
