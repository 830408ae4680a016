"""Cached features (book 5.3's first recipe): inputs replaced once by a frozen model's outputs.

The frozen model (config.data.features: module, name, kwargs, as config.model) starts from
`init` (a converted weight folder, a Keras or safetensors file, or a workdir of ours) and runs
once over every split in batches; training then sees only its outputs, so a dense head trains
in seconds where running the base every step would take hours on a CPU.
"""
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np

from library import weights
from library.errors import UserError


def enabled(features_config) -> bool:
  return bool(features_config.module)


class Extractor:
  """The frozen model with its variables, compiled once; call it on (N, ...) inputs."""

  def __init__(self, features_config, example_inputs: np.ndarray, input_scale=None):
    """input_scale: the inputs are bytes, scaled to float32 by it on the device, batch by
    batch (as Datasets.input_scale): the photos never exist as float32 on the host."""
    from library.data.preprocessing import scale_inputs  # pylint: disable=import-outside-toplevel
    from library.task import make_model  # pylint: disable=import-outside-toplevel
    f = features_config
    if not f.init:
      raise UserError('data.features.init is empty: name the weights of the frozen model '
                      '(a scripts.convert_weights folder, a Keras or safetensors file, a workdir)')
    self.model = make_model(f)
    self.batch_size = f.batch_size
    self.byte_inputs = input_scale is not None
    self.variables = jax.device_put(
        weights.model_variables(self.model, f.init, example_inputs.shape[1:]))
    self._apply = jax.jit(
        lambda v, x: self.model.apply(v, scale_inputs(x, input_scale), train=False))

  def __call__(self, inputs: np.ndarray, done=lambda n: None) -> np.ndarray:
    """The outputs of `inputs`, batch by batch; done(n) after each batch of n examples."""
    out = []
    for i in range(0, len(inputs), self.batch_size):
      batch = inputs[i:i + self.batch_size]
      out.append(np.asarray(self._apply(self.variables, jnp.asarray(
          batch, None if self.byte_inputs else jnp.float32))))
      done(len(batch))
    return np.concatenate(out).astype(np.float32)


def extract(splits: dict[str, dict[str, np.ndarray]], features_config,
            progress: bool = True, input_scale=None) -> None:
  """Replaces every split's inputs by the frozen model's outputs, in place, with a progress bar
  over every example (minutes on a CPU for the book's 4,000 photos through VGG16).
  input_scale: byte inputs, scaled batch by batch on the device (Extractor)."""
  import tqdm  # pylint: disable=import-outside-toplevel
  extractor = Extractor(features_config, splits['train']['inputs'], input_scale)
  total = sum(len(split['inputs']) for split in splits.values())
  with tqdm.tqdm(total=total, unit='example', desc='frozen-model features', mininterval=1.0,
                 dynamic_ncols=True, disable=not progress) as bar:
    for name, split in splits.items():
      start = time.perf_counter()
      split['inputs'] = extractor(split['inputs'], bar.update)
      logging.info('features of %s: %s in %.1f s', name, split['inputs'].shape,
                   time.perf_counter() - start)
