"""Model ensembling (book 7.3.3): a weighted average of several trained runs' predictions.

  python -m scripts.ensemble --workdirs=/tmp/a,/tmp/b,/tmp/c --fit_weights

Every workdir is a supervised run on the same data (the same examples in the same splits:
checked). Each model predicts the split as Keras' predict() would (softmax or sigmoid
probabilities, or values), the predictions are averaged with equal weights or with weights
fitted on the validation split (non-negative, summing to 1, minimizing the validation loss:
the book's "weights from validation"), and the ensemble is scored against each member with
the same metrics.
"""
import os

import jax
import numpy as np

from library import inference, members
from library.data import preprocessing, timeseries
from library.errors import UserError


def _split_arrays(s, split: str):
  host = s.feed.data.host
  if split not in host:
    raise UserError(f'split={split!r} is not one of {", ".join(sorted(host))}')
  n = s.datasets.size(split)
  arrays = timeseries.gather(host[split], np.arange(n))
  arrays['inputs'] = preprocessing.scale_inputs(arrays['inputs'], s.datasets.input_scale)
  return arrays


def _predictions(workdir: str, splits: tuple[str, ...]):
  """{split: (predictions, labels)} of one workdir's latest checkpoint, and its config."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = inference.load_config(workdir)
  if config.task != 'library.supervised':
    raise UserError(f'{workdir}: ensembles average supervised models; its task is '
                    f'{config.task!r}')
  if members.enabled(config):
    raise UserError(f'{workdir} holds members, not one model: ensemble runs of one model each')
  if config.task_config.outputs:
    raise UserError(f'{workdir}: models with several outputs are not ensembled yet')
  s = train.setup(config, devices=jax.devices()[:1])
  state, _ = inference.restore(workdir, config, s.state, 'latest', s.hook.size)
  predict = jax.jit(s.task.predict)
  out = {}
  for split in splits:
    arrays = _split_arrays(s, split)
    parts = []
    for start in range(0, len(arrays['labels']), config.eval_batch_size):
      chunk = jax.tree.map(lambda x, start=start: x[start:start + config.eval_batch_size],
                           arrays['inputs'])
      parts.append(np.asarray(predict(state, chunk)))
    out[split] = (np.concatenate(parts).astype(np.float64), np.asarray(arrays['labels']))
  return out, config


def scores(loss_name: str, predictions, labels) -> dict[str, float]:
  """Keras' loss and the natural metric of `predictions` (probabilities or values)."""
  eps = 1e-7
  if loss_name in ('categorical_crossentropy', 'sparse_categorical_crossentropy'):
    target = labels.argmax(-1) if labels.ndim == predictions.ndim else labels.astype(int)
    p = np.clip(predictions[np.arange(len(target)), target], eps, 1.0)
    return {'loss': float(-np.mean(np.log(p))),
            'accuracy': float(np.mean(predictions.argmax(-1) == target))}
  if loss_name == 'binary_crossentropy':
    p = np.clip(predictions.reshape(labels.shape), eps, 1 - eps)
    return {'loss': float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
            'accuracy': float(np.mean((p > 0.5) == (labels > 0.5)))}
  error = predictions.reshape(labels.shape) - labels
  return {'loss': float(np.mean(error ** 2 if loss_name == 'mse' else np.abs(error))),
          'mae': float(np.mean(np.abs(error))), 'mse': float(np.mean(error ** 2))}


def fit_weights(loss_name: str, predictions: list, labels) -> np.ndarray:
  """Non-negative weights summing to 1 that minimize the loss of the weighted average."""
  from scipy import optimize  # pylint: disable=import-outside-toplevel
  stacked = np.stack(predictions)

  def loss(logits):
    w = np.exp(logits - logits.max())
    w /= w.sum()
    return scores(loss_name, np.tensordot(w, stacked, axes=1), labels)['loss']

  best = optimize.minimize(loss, np.zeros(len(predictions)), method='Nelder-Mead',
                           options={'xatol': 1e-4, 'fatol': 1e-8, 'maxiter': 2000})
  w = np.exp(best.x - best.x.max())
  return w / w.sum()


def ensemble(workdirs: list[str], split: str = 'test', weighted: bool = False) -> dict:
  """Scores of each member and of their average on `split`; weights fitted on 'validation'
  when `weighted`."""
  if len(workdirs) < 2:
    raise UserError(f'--workdirs names {len(workdirs)} run(s): an ensemble needs at least 2')
  for workdir in workdirs:
    if not os.path.isdir(workdir):
      raise UserError(f'--workdirs: {workdir!r} is not a directory')
  splits = (split, 'validation') if weighted and split != 'validation' else (split,)
  runs = [_predictions(w, splits) for w in workdirs]
  loss_name = runs[0][1].task_config.loss
  for (preds, config), workdir in zip(runs[1:], workdirs[1:]):
    if config.task_config.loss != loss_name:
      raise UserError(f'{workdir} was trained with loss {config.task_config.loss!r}, '
                      f'{workdirs[0]} with {loss_name!r}: their predictions do not average')
    for name in splits:
      theirs, ours = preds[name][1], runs[0][0][name][1]
      if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
        raise UserError(f'{workdir} and {workdirs[0]} were not evaluated on the same {name} '
                        'examples (another data config or seed): an ensemble needs the same')
  labels = runs[0][0][split][1]
  if weighted:
    weights = fit_weights(loss_name, [r[0]['validation'][0] for r in runs],
                          runs[0][0]['validation'][1])
  else:
    weights = np.full(len(runs), 1.0 / len(runs))
  averaged = np.tensordot(weights, np.stack([r[0][split][0] for r in runs]), axes=1)
  members = [dict(workdir=w, weight=float(wt), **scores(loss_name, r[0][split][0], labels))
             for w, wt, r in zip(workdirs, weights, runs)]
  return {'split': split, 'weights': 'fitted on validation' if weighted else 'equal',
          'members': members, 'ensemble': scores(loss_name, averaged, labels),
          'examples': int(len(labels))}
