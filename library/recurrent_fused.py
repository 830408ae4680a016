"""Keras' SimpleRNN, LSTM and GRU over time with a hand-written backward pass.

`scan(spec, xs, kernel, recurrent, bias, mask)` is the same function as the plain `lax.scan` of
library/recurrent.py (same cells, Keras weight layout and recurrent-dropout mask), and its
gradients equal autodiff's to float rounding (tests/test_recurrent.py). It is `Recurrent(backward=
'fused')`; the default stays autodiff, because on the 2-core CPU this was not faster
(projects/recurrent/README.md has the measurements and the reason). What it changes:

- Autodiff stores every intermediate of a step as its own stacked residual (13 arrays of
  (T, B, units) for the LSTM, some twice) and accumulates the weight gradients inside the
  backward loop, one small matmul per step for each of kernel, recurrent kernel and bias.
- Here a forward step stores two arrays: the gate activations (one array) and the cell state
  (LSTM) or output (GRU, SimpleRNN). The backward loop carries only dh (and dc) and emits the
  pre-activation gradients; the weight and input gradients are then a few large matmuls over
  all T x B rows. Fewer ops a step also means a shorter trace.
- On the CPU, XLA already runs autodiff's in-loop weight-gradient matmuls on the second core,
  beside the recurrence, so moving them out of the loop saves nothing there. On a GPU, where
  every op of a step is a kernel launch, fewer ops a step may matter; not measured yet.

The input projection stays inside the forward loop (x_t W per step): hoisting it into one
(T, B, gates x units) matmul was measured slower on this CPU. Sigmoid gates are computed as
0.5 tanh(z / 2) + 1/2, so that an LSTM step's four gates are one elementwise pass over
(B, 4 units).
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Spec(NamedTuple):
  cell: str                 # simple_rnn, lstm, gru
  reset_after: bool         # GRU only
  return_sequences: bool


def _lstm_gate_scale(units: int, dtype):
  """(scale, offset) with act(z) = scale * tanh(scale * z) + offset: sigmoid for the i, f
  and o gates (scale 1/2, offset 1/2) and tanh for the candidate (scale 1, offset 0)."""
  scale = jnp.full((4 * units,), 0.5, dtype).at[2 * units:3 * units].set(1.0)
  offset = jnp.full((4 * units,), 0.5, dtype).at[2 * units:3 * units].set(0.0)
  return scale, offset


def _masked(h, mask):
  return h if mask is None else h * mask


def _masked_seq(seq_TxBxU, mask):
  return seq_TxBxU if mask is None else seq_TxBxU * mask[None]


def _previous(seq_TxBxU):
  """The step before each step: zeros (the initial state) for the first."""
  return jnp.concatenate([jnp.zeros_like(seq_TxBxU[:1]), seq_TxBxU[:-1]], axis=0)


def _forward(spec: Spec, xs, kernel, recurrent, bias, mask):
  """-> (output, residuals). output: (T, B, U) sequences or the last (B, U)."""
  units = recurrent.shape[0]
  h0 = jnp.zeros((xs.shape[1], units), xs.dtype)
  if spec.cell == 'lstm':
    scale, offset = _lstm_gate_scale(units, xs.dtype)

    def step(carry, x):
      h, c = carry
      a = (jnp.tanh((x @ kernel + _masked(h, mask) @ recurrent + bias[None]) * scale[None])
           * scale[None] + offset[None])
      c = a[:, units:2 * units] * c + a[:, :units] * a[:, 2 * units:3 * units]
      h = a[:, 3 * units:] * jnp.tanh(c)
      return (h, c), (a, c)

    (h, _), (acts, cs) = jax.lax.scan(step, (h0, h0), xs)
    hs = acts[..., 3 * units:] * jnp.tanh(cs) if spec.return_sequences else None
    return (hs if spec.return_sequences else h), (xs, kernel, recurrent, mask, acts, cs)
  if spec.cell == 'simple_rnn':

    def step(h, x):
      h = jnp.tanh(x @ kernel + _masked(h, mask) @ recurrent + bias[None])
      return h, h

    h, hs = jax.lax.scan(step, h0, xs)
    return (hs if spec.return_sequences else h), (xs, kernel, recurrent, mask, hs, hs)
  if spec.reset_after:   # Keras 3's GRU: r multiplies (h U_h + b_h); bias (2, 3 units)

    def step(h, x):
      xz = x @ kernel + bias[0][None]
      hz = _masked(h, mask) @ recurrent + bias[1][None]
      zr = jax.nn.sigmoid(xz[:, :2 * units] + hz[:, :2 * units])
      r = zr[:, units:]
      h_hat = jnp.tanh(xz[:, 2 * units:] + r * hz[:, 2 * units:])
      z = zr[:, :units]
      h = z * h + (1.0 - z) * h_hat
      return h, (jnp.concatenate([zr, h_hat, hz[:, 2 * units:]], axis=-1), h)
  else:                  # the book's GRU: r multiplies h before U_h

    def step(h, x):
      xz = x @ kernel + bias[None]
      hm = _masked(h, mask)
      zr = jax.nn.sigmoid(xz[:, :2 * units] + hm @ recurrent[:, :2 * units])
      r = zr[:, units:]
      h_hat = jnp.tanh(xz[:, 2 * units:] + (r * hm) @ recurrent[:, 2 * units:])
      z = zr[:, :units]
      h = z * h + (1.0 - z) * h_hat
      return h, (jnp.concatenate([zr, h_hat], axis=-1), h)

  h, (acts, hs) = jax.lax.scan(step, h0, xs)
  return (hs if spec.return_sequences else h), (xs, kernel, recurrent, mask, acts, hs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def scan(spec: Spec, xs, kernel, recurrent, bias, mask):
  """A recurrent layer over time-major inputs xs (T, B, F), starting from zeros.

  kernel (F, gates x units), recurrent (units, gates x units), bias as models.Recurrent's;
  mask: None or the recurrent-dropout mask (B, units), applied to h before the recurrent
  kernel. Returns the outputs (T, B, units) when spec.return_sequences, else the last (B, units).
  """
  return _forward(spec, xs, kernel, recurrent, bias, mask)[0]


def _scan_fwd(spec, xs, kernel, recurrent, bias, mask):
  return _forward(spec, xs, kernel, recurrent, bias, mask)


def _backward_loop(spec: Spec, step, carry0, inputs, d_out):
  """Runs `step` backwards over time. The output cotangent enters through the carry (last
  output only) or as a per-step input (sequences)."""
  if spec.return_sequences:
    return jax.lax.scan(lambda c, i: step(c, i[:-1], i[-1]), carry0, (*inputs, d_out),
                        reverse=True)[1]
  return jax.lax.scan(lambda c, i: step(c, i, None), carry0, inputs, reverse=True)[1]


def _over_rows(a_TxBxM, b_TxBxN):
  """sum over t and b of outer(a[t, b], b[t, b]): one (M, N) matmul over all T x B rows (a 2-D
  matmul; the same contraction as a 3-D einsum ran 3.5x slower on the CPU)."""
  return a_TxBxM.reshape(-1, a_TxBxM.shape[-1]).T @ b_TxBxN.reshape(-1, b_TxBxN.shape[-1])


def _weight_grads(xs, kernel, hm_prev, d_x_TxBxG, d_h_TxBxG):
  """dx, dkernel and drecurrent; the per-step pre-activation gradients are (T, B, gates x
  units) on the input and the recurrent side."""
  return (d_x_TxBxG @ kernel.T, _over_rows(xs, d_x_TxBxG), _over_rows(hm_prev, d_h_TxBxG))


def _lstm_bwd(spec: Spec, residuals, d_last, d_seq):
  """The LSTM's (dxs, d_kernel, d_recurrent, d_bias); its carry holds (dh, dc)."""
  xs, kernel, recurrent, mask, acts, cs = residuals
  units = recurrent.shape[0]

  def step(carry, inputs, dh_out):
    dh, dc = carry
    a, c, c_prev = inputs
    dh = dh if dh_out is None else dh + dh_out
    i, f, g, o = (a[:, k * units:(k + 1) * units] for k in range(4))
    tc = jnp.tanh(c)
    dc = dc + dh * o * (1.0 - tc * tc)
    dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                          dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)], axis=-1)
    return (_masked(dz @ recurrent.T, mask), dc * f), dz

  dzs = _backward_loop(spec, step, d_last, (acts, cs, _previous(cs)), d_seq)
  hm_prev = _masked_seq(_previous(acts[..., 3 * units:] * jnp.tanh(cs)), mask)
  return (*_weight_grads(xs, kernel, hm_prev, dzs, dzs), dzs.sum((0, 1)))


def _scan_bwd(spec: Spec, residuals, d_out):
  xs, kernel, recurrent, mask, acts, seq = residuals
  units = recurrent.shape[0]
  zeros = jnp.zeros((xs.shape[1], units), xs.dtype)
  d_last = zeros if spec.return_sequences else d_out
  d_seq = d_out if spec.return_sequences else None
  d_mask = None if mask is None else jnp.zeros_like(mask)
  if spec.cell == 'lstm':
    return (*_lstm_bwd(spec, residuals, (d_last, zeros), d_seq), d_mask)

  hs = seq
  h_prev = _previous(hs)
  if spec.cell == 'simple_rnn':

    def step(dh, inputs, dh_out):
      (h,) = inputs
      dh = dh if dh_out is None else dh + dh_out
      da = dh * (1.0 - h * h)
      return _masked(da @ recurrent.T, mask), da

    das = _backward_loop(spec, step, d_last, (hs,), d_seq)
    dxs, d_kernel, d_recurrent = _weight_grads(xs, kernel, _masked_seq(h_prev, mask), das, das)
    return dxs, d_kernel, d_recurrent, das.sum((0, 1)), d_mask

  if spec.reset_after:

    def step(dh, inputs, dh_out):
      a, hp = inputs
      dh = dh if dh_out is None else dh + dh_out
      z, r, h_hat, hz_h = (a[:, k * units:(k + 1) * units] for k in range(4))
      da_h = dh * (1.0 - z) * (1.0 - h_hat * h_hat)
      da_z = dh * (hp - h_hat) * z * (1.0 - z)
      da_r = da_h * hz_h * r * (1.0 - r)
      d_hz = jnp.concatenate([da_z, da_r, da_h * r], axis=-1)
      dh_prev = dh * z + _masked(d_hz @ recurrent.T, mask)
      return dh_prev, jnp.concatenate([da_z, da_r, da_h], axis=-1)

    d_xz = _backward_loop(spec, step, d_last, (acts, h_prev), d_seq)
    r = acts[..., units:2 * units]
    d_hz = jnp.concatenate([d_xz[..., :2 * units], d_xz[..., 2 * units:] * r], axis=-1)
    dxs, d_kernel, d_recurrent = _weight_grads(xs, kernel, _masked_seq(h_prev, mask), d_xz, d_hz)
    d_bias = jnp.stack([d_xz.sum((0, 1)), d_hz.sum((0, 1))])
    return dxs, d_kernel, d_recurrent, d_bias, d_mask

  u_zr, u_h = recurrent[:, :2 * units], recurrent[:, 2 * units:]

  def step(dh, inputs, dh_out):
    a, hp = inputs
    dh = dh if dh_out is None else dh + dh_out
    z, r, h_hat = (a[:, k * units:(k + 1) * units] for k in range(3))
    hm = _masked(hp, mask)
    da_h = dh * (1.0 - z) * (1.0 - h_hat * h_hat)
    d_rhm = da_h @ u_h.T
    da_zr = jnp.concatenate([dh * (hp - h_hat) * z * (1.0 - z),
                             d_rhm * hm * r * (1.0 - r)], axis=-1)
    d_hm = d_rhm * r + da_zr @ u_zr.T
    return dh * z + _masked(d_hm, mask), jnp.concatenate([da_zr, da_h], axis=-1)

  d_xz = _backward_loop(spec, step, d_last, (acts, h_prev), d_seq)
  hm_prev = _masked_seq(h_prev, mask)
  r = acts[..., units:2 * units]
  d_recurrent = jnp.concatenate([_over_rows(hm_prev, d_xz[..., :2 * units]),
                                 _over_rows(r * hm_prev, d_xz[..., 2 * units:])], axis=-1)
  return (d_xz @ kernel.T, _over_rows(xs, d_xz), d_recurrent, d_xz.sum((0, 1)), d_mask)


scan.defvjp(_scan_fwd, _scan_bwd)
