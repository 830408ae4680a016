"""Book 7.1's functional-API models: several inputs, several outputs. Outputs are logits.

The layers are the book's (Keras' initializers and weight layout, through projects/recurrent),
and inputs and outputs are dicts of named arrays, as the loop's batches are.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from library.errors import UserError
from library.layers import KERNEL_INIT
from library.recurrent import Recurrent

EMBED_INIT = nn.initializers.uniform(0.1)   # Keras' embedding: U(-0.05, 0.05), shifted below


def _embed(vocabulary: int, dim: int, name: str):
  return nn.Embed(vocabulary, dim, embedding_init=lambda k, s, d=jnp.float32: EMBED_INIT(
      k, s, d) - 0.05, name=name)


class QuestionAnswering(nn.Module):
  """7.1.2: text -> embedding 64 -> LSTM 32; question -> embedding 32 -> LSTM 16;
  concatenated -> dense softmax over the answers. Inputs {'text', 'question'}."""
  text_vocabulary: int = 10000
  question_vocabulary: int = 10000
  text_embed: int = 64
  question_embed: int = 32
  text_units: int = 32
  question_units: int = 16
  answers: int = 500

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    text = _embed(self.text_vocabulary, self.text_embed, 'text_embedding')(inputs['text'])
    text = Recurrent('lstm', self.text_units, name='text_lstm')(text, train)
    question = _embed(self.question_vocabulary, self.question_embed,
                      'question_embedding')(inputs['question'])
    question = Recurrent('lstm', self.question_units, name='question_lstm')(question, train)
    merged = jnp.concatenate([text, question], axis=-1)
    return nn.Dense(self.answers, kernel_init=KERNEL_INIT, name='answer')(merged)


class SocialMedia(nn.Module):
  """7.1.3: one text -> embedding 256 -> conv1d 128 k5 -> max pool 5 -> conv1d 256 k5 x2 ->
  max pool 5 -> conv1d 256 k5 x2 -> global max pool -> dense 128, then three heads:
  {'age': 1 (regression), 'income': 10 groups, 'gender': 1 (binary)}."""
  vocabulary: int = 50000
  embed_dim: int = 256
  blocks: Sequence[Sequence[int]] = ((128,), (256, 256), (256, 256))
  kernel_size: int = 5
  pool_size: int = 5
  hidden: int = 128
  income_groups: int = 10

  @nn.compact
  def __call__(self, tokens_BxL, train: bool = False):
    x = _embed(self.vocabulary, self.embed_dim, 'embedding')(tokens_BxL)
    for b, block in enumerate(self.blocks):
      for j, filters in enumerate(block):
        if x.shape[1] < self.kernel_size:
          raise UserError(f'conv{b}_{j} (kernel {self.kernel_size}) gets sequences of length '
                          f'{x.shape[1]}: the texts are too short for these blocks (the '
                          "book's need about 270 words)")
        x = nn.relu(nn.Conv(filters, (self.kernel_size,), padding='VALID', kernel_init=KERNEL_INIT,
                            name=f'conv{b}_{j}')(x))
      if b < len(self.blocks) - 1:
        x = nn.max_pool(x, (self.pool_size,), strides=(self.pool_size,))
    x = jnp.max(x, axis=1)
    x = nn.relu(nn.Dense(self.hidden, kernel_init=KERNEL_INIT, name='dense')(x))
    return {'age': nn.Dense(1, kernel_init=KERNEL_INIT, name='age')(x)[:, 0],
            'income': nn.Dense(self.income_groups, kernel_init=KERNEL_INIT, name='income')(x),
            'gender': nn.Dense(1, kernel_init=KERNEL_INIT, name='gender')(x)[:, 0]}
