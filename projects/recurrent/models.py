"""Sequence models of book chapter 6 with Keras' semantics. Outputs are logits.

Their recurrent layers are library/recurrent.py's `Recurrent` (Keras' SimpleRNN, LSTM and GRU,
with Keras' weight layout, gate order, initializers and dropout masks), so parameter counts
equal the book's summaries and Keras weights map one to one.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from library.errors import UserError
from library.layers import KERNEL_INIT
from library.recurrent import Recurrent


class SequenceNet(nn.Module):
  """Book 6.1-6.4 in one declarative model:
  [embedding] -> [conv1d (max-pool between)] -> [global max pool] -> [recurrent stack]
  -> [flatten] -> [dense hidden] -> dense output.

  Examples (parameter counts as the book's summaries, tested):
  - 6.2 SimpleRNN: num_words=10000, embed_dim=32, rnn='simple_rnn', units=(32,)
  - 6.2 LSTM: num_words=10000, embed_dim=32, rnn='lstm', units=(32,)
  - 6.3 GRU on Jena: rnn='gru', units=(32,) (no embedding: inputs are features)
  - 6.4 IMDB convnet: num_words=10000, embed_dim=128, conv=((32, 7), (32, 7)), pool_size=5,
    global_pool=True (1,315,937 parameters)
  - 6.4 conv + GRU: conv=((32, 5), (32, 5)), pool_size=3, rnn='gru', units=(32,) (13,697 on 14
    features)
  - 6.1 embedding: num_words=10000, embed_dim=8, flatten=True
  """
  num_words: int = 0                # > 0: integer word indices through an embedding
  embed_dim: int = 32
  conv: Sequence[Sequence[int]] = ()   # (filters, kernel size) per Conv1D, relu, 'valid'
  pool_size: int = 0                # max pooling after every conv but the last
  global_pool: bool = False         # global max pooling after the convs
  rnn: str = ''                     # simple_rnn, lstm, gru, or '' for none
  units: Sequence[int] = ()         # a recurrent layer per entry (all but the last: sequences)
  bidirectional: bool = False       # Keras' Bidirectional (merge_mode='concat')
  go_backwards: bool = False
  dropout: float = 0.0
  recurrent_dropout: float = 0.0
  reset_after: bool = False
  backward: str = 'autodiff'        # Recurrent.backward
  unroll: int = 1
  hoist_input: bool = False
  flatten: bool = False
  hidden: Sequence[int] = ()
  num_outputs: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.num_words:
      x = nn.Embed(self.num_words, self.embed_dim,
                   embedding_init=nn.initializers.uniform(0.1))(x)   # Keras: U(-0.05, 0.05)
    else:
      x = x.astype(jnp.float32)
    for i, (filters, size) in enumerate(self.conv):
      if x.shape[1] < size:
        raise UserError(f'conv1d layer {i} (kernel {size}) gets sequences of length '
                        f'{x.shape[1]}: use longer inputs (data.maxlen) or fewer layers')
      x = nn.relu(nn.Conv(filters, (size,), padding='VALID', kernel_init=KERNEL_INIT)(x))
      if self.pool_size and i < len(self.conv) - 1:
        x = nn.max_pool(x, (self.pool_size,), strides=(self.pool_size,))
    if self.global_pool:
      x = jnp.max(x, axis=1)
    for i, units in enumerate(self.units):
      sequences = i < len(self.units) - 1
      layer = lambda backwards, name: Recurrent(  # noqa: E731
          self.rnn, units, return_sequences=sequences, go_backwards=backwards,
          dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
          reset_after=self.reset_after, backward=self.backward, unroll=self.unroll,
          hoist_input=self.hoist_input, name=name)
      if self.bidirectional:
        forward = layer(False, f'forward_{i}')(x, train)
        backward = layer(True, f'backward_{i}')(x, train)
        if sequences:      # Keras aligns the backward outputs with the forward ones in time
          backward = backward[:, ::-1]
        x = jnp.concatenate([forward, backward], axis=-1)
      else:
        x = layer(self.go_backwards, f'recurrent_{i}')(x, train)
    if self.flatten:
      x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=KERNEL_INIT)(x))
    return nn.Dense(self.num_outputs, kernel_init=KERNEL_INIT)(x)
