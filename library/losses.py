"""Keras' loss and metric names, per example, on logits (models end without an activation).

`output_activation` turns logits into what Keras' model would have output (softmax
probabilities, a sigmoid probability, or the value itself): what `predict` returns.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax


def _per_example(values):
  """The mean over an example's values: Keras' losses and binary accuracy average the last
  axis, so that several sigmoid outputs (multi-label targets, (N, K)) give one value each."""
  return jnp.mean(values.reshape(len(values), -1), axis=-1) if values.ndim > 1 else values


def per_example_loss(name: str, logits, labels):
  """On logits. Where Keras' model ends in a softmax or sigmoid, Keras clips probabilities to
  [1e-7, 1 - 1e-7], capping a row's cross-entropy at 16.12; here a confidently wrong logit
  costs what it is (40 for a logit 40 off): the same values wherever that cap is not reached
  (tested against keras.losses on random logits, tests/test_train.py)."""
  if name == 'categorical_crossentropy':
    return optax.softmax_cross_entropy(logits, labels)
  if name == 'sparse_categorical_crossentropy':
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if name == 'binary_crossentropy':
    return _per_example(optax.sigmoid_binary_cross_entropy(logits.reshape(labels.shape),
                                                           labels))
  if name == 'mse':
    return jnp.mean(jnp.square(logits.reshape(labels.shape) - labels).reshape(len(labels), -1),
                    axis=-1)
  if name == 'mae':
    return jnp.mean(jnp.abs(logits.reshape(labels.shape) - labels).reshape(len(labels), -1),
                    axis=-1)
  raise ValueError(f'unknown loss {name!r}')  # validated in library.config


def per_example_metric(name: str, loss_name: str, logits, labels):
  if name == 'accuracy':
    if loss_name == 'binary_crossentropy':
      return _per_example(
          ((logits.reshape(labels.shape) > 0) == (labels > 0.5)).astype(jnp.float32))
    target = jnp.argmax(labels, -1) if labels.ndim == logits.ndim else labels
    return (jnp.argmax(logits, -1) == target).astype(jnp.float32)
  if name in ('mae', 'mse'):
    return per_example_loss(name, logits, labels)
  raise ValueError(f'unknown metric {name!r}')


# Keras' AUC(): ROC, 200 thresholds (198 evenly spaced in (0, 1), one just below 0 and one just
# above 1), interpolated; not a mean over examples but a function of a split's counts.
AUC_THRESHOLDS = np.array([-1e-7] + [(i + 1) / 199 for i in range(198)] + [1 + 1e-7],
                          np.float32)


def auc_counts(logits, labels, weights):
  """One batch's weighted true positives, false positives, true negatives and false negatives
  at each of AUC_THRESHOLDS, (4, 200), of sigmoid probabilities (a multi-label target's labels
  all count, as Keras' AUC(multi_label=False) counts them; a nonzero label is a positive, as
  Keras casts labels to bool). Sums over batches and over a split; auc_from_counts makes them
  Keras' AUC."""
  labels = labels.reshape(len(labels), -1) != 0
  p = jax.nn.sigmoid(logits.reshape(labels.shape))
  w = jnp.broadcast_to(weights.reshape(-1, 1), labels.shape)[..., None]
  above = p[..., None] > AUC_THRESHOLDS.reshape(1, 1, -1)
  y = labels[..., None]
  count = lambda mask: jnp.sum(jnp.where(mask, w, 0.0), axis=(0, 1))  # noqa: E731
  return jnp.stack([count(y & above), count(~y & above), count(~y & ~above), count(y & ~above)])


def auc_from_counts(counts):
  """Keras' AUC() (ROC, interpolated) from summed auc_counts, (..., 4, 200) -> (...)."""
  tp, fp, tn, fn = np.moveaxis(np.asarray(counts, np.float64), -2, 0)
  ratio = lambda a, b: np.divide(a, b, out=np.zeros_like(a), where=b != 0)  # noqa: E731
  recall, fp_rate = ratio(tp, tp + fn), ratio(fp, fp + tn)
  heights = (recall[..., :-1] + recall[..., 1:]) / 2
  return np.sum((fp_rate[..., :-1] - fp_rate[..., 1:]) * heights, axis=-1)


def output_activation(loss_name: str, logits):
  if loss_name in ('categorical_crossentropy', 'sparse_categorical_crossentropy'):
    return jax.nn.softmax(logits, axis=-1)
  if loss_name == 'binary_crossentropy':
    return jax.nn.sigmoid(logits)
  return logits
