"""The LSTM cell (no peephole connections): one time step forward and backward.

Gate blocks are stacked in PyTorch's order (i, f, g, o) in ``rnn.weight_ih_l{k}`` [4H, in],
``rnn.weight_hh_l{k}`` [4H, H] and the biases, so weights move between the engines unchanged.
As in :mod:`unroll.reference.rnn`, the model turns the returned pre-activation gradient ``dz``
into the weight gradients; the input's and the recurrent share of ``z`` are added, so both
biases get the same gradient.
"""

from __future__ import annotations

import numpy as np

State = tuple[np.ndarray, ...]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, written so that large |x| never overflows ``exp``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class LSTMCell:
    """Forward, for a batch ``[B, ...]`` (row vectors)::

        z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh = [z_i | z_f | z_g | z_o]     [B, 4H]
        i_t = sigmoid(z_i)       input gate: how much of the candidate to write
        f_t = sigmoid(z_f)       forget gate: how much of the old cell to keep
        g_t = tanh(z_g)          candidate cell values
        o_t = sigmoid(z_o)       output gate: how much of the cell to show
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    Backward, given ``dh_t`` and ``dc_t`` (the gradients arriving from step t+1 and from the
    output and the layer above at t)::

        do_t     = dh_t * tanh(c_t)
        dc       = dc_t + dh_t * o_t * (1 - tanh(c_t)^2)      (both paths into c_t)
        di_t     = dc * g_t       df_t = dc * c_{t-1}       dg_t = dc * i_t
        dc_{t-1} = dc * f_t
        dz       = [di_t * i_t(1-i_t) | df_t * f_t(1-f_t) | dg_t * (1-g_t^2) | do_t * o_t(1-o_t)]
        dh_{t-1} = dz W_hh            dx_t = dz W_ih
    """

    gates = 4
    state_names = ("h", "c")

    def step(self, zx: np.ndarray, state: State, w_hh: np.ndarray, b_hh: np.ndarray) -> tuple[State, tuple]:
        """One step. ``zx = x_t W_ih^T + b_ih`` is precomputed for all steps (it has no recurrence)."""
        h_prev, c_prev = state
        z = zx + h_prev @ w_hh.T + b_hh
        n = h_prev.shape[1]
        i = sigmoid(z[:, :n])
        f = sigmoid(z[:, n : 2 * n])
        g = np.tanh(z[:, 2 * n : 3 * n])
        o = sigmoid(z[:, 3 * n :])
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        return (h, c), (i, f, g, o, c_prev, tanh_c)

    def step_backward(self, d_state: State, cache: tuple, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, State]:
        """Return ``(dz_t, dz_t, (dh_{t-1}, dc_{t-1}))`` from ``(dh_t, dc_t)`` and the step's cache
        (``dz`` twice: the input's and the recurrent share of ``z`` get the same gradient)."""
        dh, dc_next = d_state
        i, f, g, o, c_prev, tanh_c = cache
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        dz = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tanh_c * o * (1 - o),
            ],
            axis=1,
        )
        return dz, dz, (dz @ w_hh, dc * f)
