"""Preprocessing fitted on the training split only, then applied to every split."""
import numpy as np

from library.errors import UserError


def fit_standardizer(train_inputs: np.ndarray) -> dict[str, np.ndarray]:
  """Feature-wise mean and standard deviation of the training inputs (constant features: 1)."""
  mean = train_inputs.mean(axis=0, dtype=np.float64)
  std = train_inputs.std(axis=0, dtype=np.float64)
  std = np.where(std > 0, std, 1.0)
  return {'mean': mean.astype(np.float32), 'std': std.astype(np.float32)}


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise UserError(f'labels range over [{labels.min()}, {labels.max()}], outside '
                    f'data.num_classes={num_classes}')
  return np.eye(num_classes, dtype=np.float32)[labels]


def transform_inputs(inputs: np.ndarray, data_config, stats: dict[str, np.ndarray] | None):
  """Scale, flatten and standardize one split's inputs (the same for train, test, predict)."""
  if data_config.vectorize or data_config.maxlen:
    return np.asarray(inputs)   # 0/1 uint8 rows or int32 word indices: nothing to scale
  x = np.array(inputs, np.float32)     # one float32 copy, scaled in place (no second one)
  if data_config.scale != 1:
    x *= np.float32(data_config.scale)
  if data_config.flatten:
    x = x.reshape(len(x), -1)
  if stats is not None:
    if stats['mean'].shape != x.shape[1:]:
      raise UserError(f'inputs of shape {x.shape[1:]} do not match the statistics fitted on '
                      f'training inputs of shape {stats["mean"].shape}')
    x = (x - stats['mean']) / stats['std']
  return x


def transform_labels(labels: np.ndarray, data_config) -> np.ndarray:
  labels = np.asarray(labels)
  if data_config.one_hot:
    return one_hot(labels.astype(np.int64), data_config.num_classes)
  if np.issubdtype(labels.dtype, np.integer):
    return labels.astype(np.int32)
  return labels.astype(np.float32)


def scale_inputs(inputs, scale: float | None):
  """Byte inputs as float32 times `scale` (NumPy or traced arrays); others as they are."""
  if scale is None:
    return inputs
  return inputs.astype(np.float32) * np.float32(scale)
