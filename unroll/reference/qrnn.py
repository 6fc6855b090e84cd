"""The QRNN cell (Bradbury et al. 2017, "fo-pooling"): one time step forward and backward.

Gate blocks are stacked as in the PyTorch engine (z, f, o) in ``rnn.weight_ih_l{k}`` [3H, in]
and ``rnn.bias_ih_l{k}``; there is no ``weight_hh``: the previous output never enters a step,
only the previous cell state does, through an elementwise product. That is why the PyTorch
engine can take every matrix product out of the time loop. The state carries ``h`` as well,
as the layer's output, so the model's loop reads it like the LSTM's.

A first-layer window (``qrnn_window``) only changes what ``x_t`` is (the inputs of several steps
side by side); the model builds that input, the cell is the same.
"""

from __future__ import annotations

import numpy as np

from unroll.reference.lstm import sigmoid

State = tuple[np.ndarray, ...]


class QRNNCell:
    """Forward, for a batch ``[B, ...]`` (row vectors)::

        zx = x_t W_ih^T + b_ih = [zx_z | zx_f | zx_o]     (precomputed for all steps) [B, 3H]
        z_t = tanh(zx_z)          candidate
        f_t = sigmoid(zx_f)       forget gate: how much of the old cell to keep
        o_t = sigmoid(zx_o)       output gate
        c_t = f_t * c_{t-1} + (1 - f_t) * z_t
        h_t = o_t * c_t

    Backward, given ``dh_t`` and ``dc_t`` (from the output and the layer above at t, and from
    step t+1)::

        dc       = dc_t + dh_t * o_t                                (both paths into c_t)
        dzx      = [dc (1 - f_t)(1 - z_t^2) | dc (c_{t-1} - z_t) f_t(1 - f_t) | dh_t c_t o_t(1 - o_t)]
        dc_{t-1} = dc * f_t        dh_{t-1} = 0 (h_{t-1} is not an input of step t)
        dx_t     = dzx W_ih
    """

    gates = 3
    state_names = ("h", "c")

    def step(self, zx: np.ndarray, state: State, w_hh: None = None, b_hh: None = None) -> tuple[State, tuple]:
        """One step; ``w_hh`` and ``b_hh`` are None (the interface of the other cells)."""
        _, c_prev = state
        n = c_prev.shape[1]
        z = np.tanh(zx[:, :n])
        f = sigmoid(zx[:, n : 2 * n])
        o = sigmoid(zx[:, 2 * n :])
        c = f * c_prev + (1 - f) * z
        return (o * c, c), (z, f, o, c_prev, c)

    def step_backward(self, d_state: State, cache: tuple, w_hh: None = None) -> tuple[np.ndarray, np.ndarray, State]:
        """Return ``(dzx_t, dzh_t, (dh_{t-1}, dc_{t-1}))``; ``dzh_t`` is zero: there is no recurrent share."""
        dh, dc_next = d_state
        z, f, o, c_prev, c = cache
        dc = dc_next + dh * o
        dzx = np.concatenate([dc * (1 - f) * (1 - z * z), dc * (c_prev - z) * f * (1 - f), dh * c * o * (1 - o)], axis=1)
        return dzx, np.zeros_like(dzx), (np.zeros_like(dh), dc * f)
