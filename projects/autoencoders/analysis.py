"""What a trained autoencoder says about its data: anomaly scores and clusters.

- anomaly(): each example's reconstruction error is its score. The threshold is the one with the
  best F1 on the validation split (normal and anomalous examples, labels known); the test split
  is then scored once: ROC AUC (scikit-learn), and precision, recall and F1 at that threshold.
  A histogram of the test scores of both kinds, with the threshold, goes to anomaly.png.
- clusters(): k-means (scikit-learn, k = the number of classes) on the test split's raw inputs
  and on the encoder's codes of them; the adjusted Rand index and normalized mutual information
  of each against the labels; the codes projected on their 2 principal axes, coloured by
  cluster and by label, go to clusters.png.
"""
import os

import numpy as np

from library import inference, train
from library.errors import UserError
from projects.autoencoders import task as ae_task


def script_main(flags, script: str, analyse, filename: str) -> None:
  """The body of scripts.anomaly and scripts.cluster: checks the config is an autoencoder's,
  runs `analyse(config, workdir)`, writes its report to WORKDIR/filename and prints it."""
  import json  # pylint: disable=import-outside-toplevel
  from library import parallel, writers  # pylint: disable=import-outside-toplevel
  flags.start()
  if flags.config.task != 'projects.autoencoders.task':
    raise UserError(f'--config is a run of task={flags.config.task!r}; scripts.{script} needs '
                    'an autoencoder (task=projects.autoencoders.task)')
  if flags.start_over:
    raise UserError(f'scripts.{script} reuses a finished run; to retrain, use another --workdir')
  report = analyse(flags.config, flags.workdir)
  if parallel.is_main_process():
    writers.write_json_atomic(os.path.join(flags.workdir, filename), report)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}))


def trained(config, workdir: str) -> tuple:
  """(params, datasets) of the run in `workdir`, trained first unless it has finished."""
  if not os.path.exists(os.path.join(workdir, 'results.json')):
    train.train_and_evaluate(config, workdir)
  datasets = train.setup(config).datasets
  state, _ = inference.load_state(workdir)
  return state.params, datasets


def best_f1_threshold(scores: np.ndarray, anomalous: np.ndarray) -> float:
  """The score threshold (anomalous when score > it) with the highest F1."""
  from sklearn.metrics import precision_recall_curve  # pylint: disable=import-outside-toplevel
  precision, recall, thresholds = precision_recall_curve(anomalous, scores)
  f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
  # precision_recall_curve flags score >= threshold; the midpoint below it flags the same set.
  best = int(np.argmax(f1[:-1]))
  below = scores[scores < thresholds[best]]
  return float((thresholds[best] + below.max()) / 2) if below.size else float(
      thresholds[best] - 1e-12)


def anomaly(config, workdir: str) -> dict:
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  normal = tuple(config.task_config.normal_classes)
  if not normal:
    raise UserError('scripts.anomaly needs task_config.normal_classes (the labels of normal '
                    'examples; the others are the anomalies)')
  params, datasets = trained(config, workdir)
  out = {'normal_classes': list(normal)}
  scored = {}
  for split in ('validation', 'test'):
    if split not in datasets.splits:
      raise UserError(f'scripts.anomaly needs a {split} split: set data.{split}')
    data = datasets.splits[split]
    scores = ae_task.reconstruction_errors(config, params, np.asarray(datasets.inputs(split)))
    anomalous = ~np.isin(np.asarray(data['labels']), normal)
    if anomalous.all() or not anomalous.any():
      raise UserError(f'the {split} split needs normal and anomalous examples; it has '
                      f'{int(anomalous.sum())} anomalies of {len(anomalous)}')
    scored[split] = (scores, anomalous)
    out[f'{split}_roc_auc'] = float(metrics.roc_auc_score(anomalous, scores))
    out[f'{split}_anomalies'] = int(anomalous.sum())
    out[f'{split}_size'] = int(len(anomalous))
  threshold = best_f1_threshold(*scored['validation'])
  scores, anomalous = scored['test']
  flagged = scores > threshold
  out.update(threshold=threshold,
             test_precision=float(metrics.precision_score(anomalous, flagged, zero_division=0)),
             test_recall=float(metrics.recall_score(anomalous, flagged)),
             test_f1=float(metrics.f1_score(anomalous, flagged)))
  _histogram(scores, anomalous, threshold, os.path.join(workdir, 'anomaly.png'))
  return out


def _histogram(scores, anomalous, threshold, path):
  from library import plots  # pylint: disable=import-outside-toplevel
  fig, ax = plots.figure(figsize=(7, 4))
  bins = np.geomspace(max(scores.min(), 1e-6), scores.max(), 40)
  ax.hist(scores[~anomalous], bins=bins, alpha=0.6, label=f'normal ({(~anomalous).sum()})')
  ax.hist(scores[anomalous], bins=bins, alpha=0.6, label=f'anomalies ({anomalous.sum()})')
  ax.axvline(threshold, color='k', linestyle='--', label='threshold (best validation F1)')
  ax.set_xscale('log')
  ax.set_xlabel('reconstruction error (test)')
  ax.set_ylabel('examples')
  ax.legend()
  fig.tight_layout()
  plots.save(fig, path, 100)


def clusters(config, workdir: str, seed: int = 0) -> dict:
  from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel
  from sklearn.decomposition import PCA  # pylint: disable=import-outside-toplevel
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  params, datasets = trained(config, workdir)
  split = 'test' if 'test' in datasets.splits else 'validation'
  inputs = np.asarray(datasets.inputs(split))
  labels = np.asarray(datasets.splits[split]['labels'])
  if labels.ndim != 1:
    raise UserError('scripts.cluster needs integer labels (set data.one_hot=False)')
  k = len(np.unique(labels))
  codes = ae_task.codes(config, params, inputs)
  out = {'split': split, 'examples': int(len(labels)), 'k': k, 'code_size': int(codes.shape[1])}
  assigned = {}
  for name, features in (('pixels', inputs.reshape(len(inputs), -1)), ('codes', codes)):
    assigned[name] = KMeans(k, n_init=10, random_state=seed).fit_predict(features)
    out[f'{name}_ari'] = float(metrics.adjusted_rand_score(labels, assigned[name]))
    out[f'{name}_nmi'] = float(metrics.normalized_mutual_info_score(labels, assigned[name]))
  plane = PCA(2, random_state=seed).fit_transform(codes)
  from library import plots  # pylint: disable=import-outside-toplevel
  fig, axes = plots.figure(1, 2, figsize=(11, 5))
  for ax, colour, title in ((axes[0], assigned['codes'], 'k-means cluster (codes)'),
                            (axes[1], labels, 'label')):
    points = ax.scatter(plane[:, 0], plane[:, 1], c=colour, cmap='tab10', s=6)
    ax.set_title(f'codes on their 2 principal axes, coloured by {title}')
    fig.colorbar(points, ax=ax)
  fig.tight_layout()
  plots.save(fig, os.path.join(workdir, 'clusters.png'), 100)
  return out
