"""Keras' recurrent layers (SimpleRNN, LSTM, GRU) as one linen module, shared by the families
whose models read sequences (recurrent/, functional/'s question answering, generative/'s text
model), as Keras' own layers are shared.

`Recurrent` is a `lax.scan` over time of Keras' cells, with Keras' weight layout (`kernel`
(in, gates*units), `recurrent_kernel` (units, gates*units), `bias`), gate order and initializers
(Glorot-uniform, orthogonal, zeros; the LSTM's forget-gate bias starts at 1), so parameter
counts equal the book's summaries and Keras weights map one to one:
- SimpleRNN: h = tanh(x W + h U + b).
- LSTM, gates [i, f, c, o]: c = f c + i tanh(.), h = o tanh(c), sigmoid recurrent activation.
- GRU, gates [z, r, h]: reset_after=False is the book's Keras (3 x units biases);
  reset_after=True is Keras 3's default (r multiplies h U + b_h; 2 x 3 x units biases).
Dropout as Keras: one input mask and one recurrent mask per sequence, the same at every step.
Its backward pass is autodiff's, or the hand-written one of library/recurrent_fused.py.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from library import recurrent_fused as fused
from library.errors import UserError
from library.layers import KERNEL_INIT


def ORTHOGONAL(key, shape, dtype=jnp.float32):  # pylint: disable=invalid-name
  """Keras' Orthogonal initializer for a (units, gates * units) recurrent kernel: orthonormal
  rows (columns when taller), from the QR decomposition of a normal matrix."""
  rows, cols = shape
  a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
  q, r = jnp.linalg.qr(a)
  q = q * jnp.sign(jnp.diagonal(r))[None, :]
  q = q.T if rows < cols else q
  return q[:rows, :cols].astype(dtype)
_GATES = {'simple_rnn': 1, 'lstm': 4, 'gru': 3}


def _keras_bias(cell: str, units: int, reset_after: bool):
  def init(key, shape, dtype=jnp.float32):
    del key
    bias = jnp.zeros(shape, dtype)
    if cell == 'lstm':   # unit_forget_bias=True
      bias = bias.at[units:2 * units].set(1.0)
    return bias
  return init


class Recurrent(nn.Module):
  """One Keras recurrent layer over (batch, time, features)."""
  cell: str                         # simple_rnn, lstm, gru
  units: int
  return_sequences: bool = False
  go_backwards: bool = False        # Keras' go_backwards: read the sequence last step first
  dropout: float = 0.0
  recurrent_dropout: float = 0.0
  reset_after: bool = False         # GRU only
  # The backward pass: 'autodiff' (jax.grad of the scan below, with the two measured options
  # unroll and hoist_input) or 'fused' (library/recurrent_fused.py, hand-written; not faster
  # on CPU).
  backward: str = 'autodiff'
  unroll: int = 1                   # time steps per scan iteration (lax.scan's unroll)
  hoist_input: bool = False         # x W for all steps as one matmul before the scan

  @nn.compact
  def __call__(self, x_BxTxF, train: bool = False):
    gates = _GATES[self.cell]
    u = self.units
    kernel = self.param('kernel', KERNEL_INIT, (x_BxTxF.shape[-1], gates * u))
    recurrent = self.param('recurrent_kernel', ORTHOGONAL, (u, gates * u))
    bias_shape = (2, gates * u) if self.cell == 'gru' and self.reset_after else (gates * u,)
    bias = self.param('bias', _keras_bias(self.cell, u, self.reset_after), bias_shape)
    batch = x_BxTxF.shape[0]
    input_mask = recurrent_mask = None
    if train and self.dropout:
      keep = 1.0 - self.dropout
      input_mask = jax.random.bernoulli(self.make_rng('dropout'), keep,
                                        (batch, x_BxTxF.shape[-1])) / keep
    if train and self.recurrent_dropout:
      keep = 1.0 - self.recurrent_dropout
      recurrent_mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (batch, u)) / keep
    if self.backward not in ('autodiff', 'fused'):
      raise UserError(f"model backward={self.backward!r}; choose 'autodiff' or 'fused'")
    if self.backward == 'fused':
      return self._fused(x_BxTxF, kernel, recurrent, bias, input_mask, recurrent_mask)
    hoist = self.hoist_input
    if hoist:   # the input projection does not depend on the carry: one big matmul
      if input_mask is not None:
        x_BxTxF = x_BxTxF * input_mask[:, None]
      x_BxTxF = x_BxTxF @ kernel
    xs_TxBxF = jnp.swapaxes(x_BxTxF, 0, 1)
    if self.go_backwards:
      xs_TxBxF = xs_TxBxF[::-1]
    h0 = jnp.zeros((batch, u), x_BxTxF.dtype if jnp.issubdtype(x_BxTxF.dtype, jnp.floating)
                   else jnp.float32)
    carry0 = (h0, h0) if self.cell == 'lstm' else h0
    cell, reset_after = self.cell, self.reset_after
    bias_1xG = bias[:, None] if bias.ndim == 2 else bias[None]   # ([2,] 1, gates*units)

    def project(x_BxF):
      if hoist:
        return x_BxF
      if input_mask is not None:
        x_BxF = x_BxF * input_mask
      return x_BxF @ kernel

    def step(carry, x_BxF):
      h = carry[0] if cell == 'lstm' else carry
      h_in = h * recurrent_mask if recurrent_mask is not None else h
      if cell == 'simple_rnn':
        h = jnp.tanh(project(x_BxF) + h_in @ recurrent + bias_1xG)
        return h, h
      if cell == 'lstm':
        z = project(x_BxF) + h_in @ recurrent + bias_1xG
        i, f, c_hat, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * carry[1] + jax.nn.sigmoid(i) * jnp.tanh(c_hat)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h
      if reset_after:
        x_z, x_r, x_h = jnp.split(project(x_BxF) + bias_1xG[0], 3, axis=-1)
        h_z, h_r, h_h = jnp.split(h_in @ recurrent + bias_1xG[1], 3, axis=-1)
        z, r = jax.nn.sigmoid(x_z + h_z), jax.nn.sigmoid(x_r + h_r)
        h_hat = jnp.tanh(x_h + r * h_h)
      else:
        x_z, x_r, x_h = jnp.split(project(x_BxF) + bias_1xG, 3, axis=-1)
        u_z, u_r, u_h = jnp.split(recurrent, 3, axis=-1)
        z = jax.nn.sigmoid(x_z + h_in @ u_z)
        r = jax.nn.sigmoid(x_r + h_in @ u_r)
        h_hat = jnp.tanh(x_h + (r * h_in) @ u_h)
      h = z * h + (1.0 - z) * h_hat
      return h, h

    carry, ys_TxBxU = jax.lax.scan(step, carry0, xs_TxBxF, unroll=self.unroll)
    if self.return_sequences:
      return jnp.swapaxes(ys_TxBxU, 0, 1)
    return carry[0] if cell == 'lstm' else carry

  def _fused(self, x_BxTxF, kernel, recurrent, bias, input_mask, recurrent_mask):
    """The same layer through library/recurrent_fused.py's scan (its own backward pass)."""
    if self.unroll != 1 or self.hoist_input:
      raise UserError(f'unroll={self.unroll} and hoist_input={self.hoist_input} are options '
                      "of backward='autodiff'; the fused scan has neither")
    if input_mask is not None:
      x_BxTxF = x_BxTxF * input_mask[:, None]
    xs_TxBxF = jnp.swapaxes(x_BxTxF.astype(kernel.dtype), 0, 1)
    if self.go_backwards:
      xs_TxBxF = xs_TxBxF[::-1]
    spec = fused.Spec(self.cell, self.reset_after, self.return_sequences)
    out = fused.scan(spec, xs_TxBxF, kernel, recurrent, bias, recurrent_mask)
    return jnp.swapaxes(out, 0, 1) if self.return_sequences else out
