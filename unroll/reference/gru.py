"""The GRU cell (Cho et al. 2014, in PyTorch's formulation): one time step forward and backward.

Gate blocks are stacked in PyTorch's order (r, z, n) in ``rnn.weight_ih_l{k}`` [3H, in],
``rnn.weight_hh_l{k}`` [3H, H] and the biases, so weights move between the engines unchanged.
Unlike the RNN and LSTM cells, the GRU's two biases are not interchangeable: the reset gate
multiplies the recurrent share of the candidate *including* ``b_hn``. So the input's share and
the recurrent share of the pre-activations get gradients of their own (``dzx``, ``dzh``).
"""

from __future__ import annotations

import numpy as np

from unroll.reference.lstm import sigmoid

State = tuple[np.ndarray, ...]


class GRUCell:
    """Forward, for a batch ``[B, ...]`` (row vectors)::

        zx = x_t W_ih^T + b_ih = [zx_r | zx_z | zx_n]               (precomputed for all steps)
        zh = h_{t-1} W_hh^T + b_hh = [zh_r | zh_z | zh_n]           [B, 3H]
        r_t = sigmoid(zx_r + zh_r)       reset gate: how much of the past the candidate sees
        z_t = sigmoid(zx_z + zh_z)       update gate: how much of the old state to keep
        n_t = tanh(zx_n + r_t * zh_n)    candidate state
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Backward, given ``dh_t`` (from the output and the layer above at t, and from step t+1)::

        dn = dh_t * (1 - z_t) * (1 - n_t^2)                         (through tanh)
        dz = dh_t * (h_{t-1} - n_t) * z_t (1 - z_t)
        dr = dn * zh_n * r_t (1 - r_t)
        dzx = [dr | dz | dn]         dzh = [dr | dz | dn * r_t]
        dh_{t-1} = dh_t * z_t + dzh W_hh          dx_t = dzx W_ih
    """

    gates = 3
    state_names = ("h",)

    def step(self, zx: np.ndarray, state: State, w_hh: np.ndarray, b_hh: np.ndarray) -> tuple[State, tuple]:
        """One step. ``zx = x_t W_ih^T + b_ih`` is precomputed for all steps (it has no recurrence)."""
        (h_prev,) = state
        zh = h_prev @ w_hh.T + b_hh
        n = h_prev.shape[1]
        r = sigmoid(zx[:, :n] + zh[:, :n])
        z = sigmoid(zx[:, n : 2 * n] + zh[:, n : 2 * n])
        cand = np.tanh(zx[:, 2 * n :] + r * zh[:, 2 * n :])
        h = (1 - z) * cand + z * h_prev
        return (h,), (r, z, cand, zh[:, 2 * n :], h_prev)

    def step_backward(self, d_state: State, cache: tuple, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, State]:
        """Return ``(dzx_t, dzh_t, (dh_{t-1},))`` from ``(dh_t,)`` and the step's cache."""
        (dh,) = d_state
        r, z, cand, zh_n, h_prev = cache
        d_cand = dh * (1 - z) * (1 - cand * cand)
        d_z = dh * (h_prev - cand) * z * (1 - z)
        d_r = d_cand * zh_n * r * (1 - r)
        dzx = np.concatenate([d_r, d_z, d_cand], axis=1)
        dzh = np.concatenate([d_r, d_z, d_cand * r], axis=1)
        return dzx, dzh, (dh * z + dzh @ w_hh,)
