"""Evaluators declared in the config, as big_vision declares its `evals`: metrics over a whole
split, computed from the model's predictions, beside the weighted sums of every eval_step (the
default evaluation).

  config.evaluators.roc_auc = 'sklearn.metrics.roc_auc_score'
  config.evaluators.top5 = ml_collections.ConfigDict(
      {'fn': 'sklearn.metrics.top_k_accuracy_score', 'k': 5})

An evaluator is a function `fn(y_true, y_pred, **kwargs) -> float`, found by import path
(scikit-learn's metrics are such functions); the other keys of a section are its keyword
arguments. Wherever the loop evaluates a split (validation at its cadence, test at the end), it
also keeps what the task's `predict` returns for each batch (as Keras' predict(): probabilities
of a softmax or sigmoid) and the batch's labels as the dataset holds them; the evaluator sees
every example of the split once, padding left out, a last axis of size one dropped (Keras'
(N, 1) sigmoid column becomes (N,)), and `sample_weight` only when the examples' weights are
not all one. Its value is the split's metric `<name>` (`validation.roc_auc`): logged, in the
history and the checkpoints, watched by callbacks and checkpoint.best_metric like any metric;
with members, each member's own over its own rows. It costs a second forward pass over the
split (predict beside eval_step), and the split's predictions on the host.
"""
import importlib
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from library.errors import UserError

# Only a task with a dataset (and a predict) has evaluators.
NEEDS_DATASET = True
# Evaluators change no trained value, but a metric watched by callbacks would appear or vanish
# in the middle of a run: none may change on resume.
RESUME_SAFE = frozenset()
# The key the rows travel under, beside the sums of an evaluation.
ROWS = 'evaluator_rows'
# Names a metric cannot take: a metrics record's own fields, and the sums' count.
RESERVED = ('loss', 'count', 'step', 'split', 'epoch')


def default_config() -> ml_collections.ConfigDict:
  """config.evaluators: name -> 'package.module.function', or a section with `fn` and the
  function's keyword arguments. Empty: the default evaluation only."""
  return ml_collections.ConfigDict()


def _function(name: str, path):
  module, _, attr = str(path).rpartition('.')
  try:
    fn = getattr(importlib.import_module(module), attr)
  except (ImportError, AttributeError, ValueError) as e:
    raise UserError(f'evaluators.{name}={path!r} cannot be imported ({e}); give '
                    'package.module.function, e.g. sklearn.metrics.roc_auc_score') from None
  if not callable(fn):
    raise UserError(f'evaluators.{name}={path!r} is not a function')
  return fn


def specs(config) -> dict:
  """name -> (function, keyword arguments), imported."""
  out = {}
  for name, spec in config.get('evaluators', {}).items():
    if isinstance(spec, str):
      path, kwargs = spec, {}
    elif isinstance(spec, (dict, ml_collections.ConfigDict)) and 'fn' in spec:
      path, kwargs = spec['fn'], {k: v for k, v in spec.items() if k != 'fn'}
    else:
      raise UserError(f'evaluators.{name}={spec!r} must be package.module.function or a '
                      'section with fn and its keyword arguments')
    if not re.fullmatch(r'[A-Za-z_]\w*', name) or name in RESERVED:
      raise UserError(f'evaluators.{name}: a metric name is letters, digits and _, and none of '
                      f'{", ".join(RESERVED)} (the fields of a metrics record)')
    out[name] = (_function(name, path), dict(kwargs))
  return out


def validate(config) -> None:
  """Raises UserError for an evaluator that is not an importable function."""
  specs(config)


def _host(x) -> np.ndarray:
  if jax.process_count() > 1:    # the rows of every process, in order
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def _squeezed(x: np.ndarray) -> np.ndarray:
  return x[..., 0] if x.ndim > 1 and x.shape[-1] == 1 else x


def _value(name: str, fn, kwargs: dict, rows: dict) -> float:
  keep = rows['weights'] > 0
  y_true, y_pred = (jax.tree.map(lambda x: _squeezed(x[keep]), rows[k])
                    for k in ('y_true', 'y_pred'))
  weights = rows['weights'][keep]
  if not np.all(weights == 1):
    kwargs = {**kwargs, 'sample_weight': weights}
  try:
    return float(fn(y_true, y_pred, **kwargs))
  except (ValueError, TypeError) as e:
    raise UserError(f'evaluators.{name} failed on a split of {int(keep.sum())} examples: '
                    f'{type(e).__name__}: {e}') from None


def _rows(batches: list, axis: int) -> dict:
  """The batches' rows joined on the device, then brought to the host once per leaf."""
  return jax.tree.map(lambda *xs: _host(jnp.concatenate(xs, axis=axis)), *batches)


def evaluate(evaluators: dict, batches: list, num_members: int | None = None) -> dict:
  """Each evaluator's value over the rows of one evaluation's batches: a float, or with members
  an array of each member's own (the rows carry a leading member axis)."""
  rows = _rows(batches, 0 if num_members is None else 1)
  if num_members is None:
    return {name: _value(name, fn, kwargs, rows)
            for name, (fn, kwargs) in evaluators.items()}
  return {name: np.array([_value(name, fn, kwargs, jax.tree.map(lambda x, m=m: x[m], rows))
                          for m in range(num_members)])
          for name, (fn, kwargs) in evaluators.items()}


def pooled(evaluators: dict, batches: list, members: list[int]) -> dict:
  """Each evaluator's one value over the rows of several members together (their out-of-fold
  rows: every example of the pool once, each from the member that did not train on it)."""
  rows = jax.tree.map(lambda x: np.concatenate([x[m] for m in members]), _rows(batches, 1))
  return {name: _value(name, fn, kwargs, rows) for name, (fn, kwargs) in evaluators.items()}


def rows_of(task, state, batch) -> dict:
  """What an evaluator sees of one batch (inside the jitted evaluation)."""
  return {'y_true': batch['labels'], 'y_pred': task.predict(state, batch['inputs']),
          'weights': batch['weights']}
