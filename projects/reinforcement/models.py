"""Q-networks for frames: the Nature DQN's (Mnih et al. 2015), for Atari's 84x84x4 stacks."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class NatureQNetwork(nn.Module):
  """conv 32 8x8/4 - conv 64 4x4/2 - conv 64 3x3/1 ('valid', ReLU) - dense 512 - one Q-value
  per action: 1,686,180 parameters for Breakout's 4 actions on 84x84x4. Frames are uint8
  values in [0, 255], scaled to [0, 1] here. `features`/`dense` make smaller variants."""
  num_outputs: int = 4
  features: Sequence[int] = (32, 64, 64)
  dense: int = 512

  @nn.compact
  def __call__(self, frames_BxHxWxC, train: bool = False):
    del train
    x = frames_BxHxWxC.astype(jnp.float32) / 255.0
    for width, (kernel, stride) in zip(self.features, ((8, 4), (4, 2), (3, 1)), strict=True):
      x = nn.relu(nn.Conv(width, (kernel, kernel), strides=(stride, stride),
                          padding='VALID')(x))
    x = nn.relu(nn.Dense(self.dense)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_outputs)(x)
