"""Keras' loss and metric names, per example, on logits (models end without an activation).

`output_activation` turns logits into what Keras' model would have output (softmax
probabilities, a sigmoid probability, or the value itself): what `predict` returns.
"""
import jax
import jax.numpy as jnp
import optax


def per_example_loss(name: str, logits, labels):
  if name == 'categorical_crossentropy':
    return optax.softmax_cross_entropy(logits, labels)
  if name == 'sparse_categorical_crossentropy':
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if name == 'binary_crossentropy':
    return optax.sigmoid_binary_cross_entropy(logits.reshape(labels.shape), labels)
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
      return ((logits.reshape(labels.shape) > 0) == (labels > 0.5)).astype(jnp.float32)
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
