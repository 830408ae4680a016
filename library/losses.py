"""Keras' loss and metric names, per example, on logits (models end without an activation).

`output_activation` turns logits into what Keras' model would have output (softmax
probabilities, a sigmoid probability, or the value itself): what `predict` returns.
"""
import jax
import jax.numpy as jnp
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


def output_activation(loss_name: str, logits):
  if loss_name in ('categorical_crossentropy', 'sparse_categorical_crossentropy'):
    return jax.nn.softmax(logits, axis=-1)
  if loss_name == 'binary_crossentropy':
    return jax.nn.sigmoid(logits)
  return logits
