"""The vanilla RNN cell: one time step forward and backward, vectorized over the batch.

The word-RNN tutorial writes the model as::

    s_t = tanh(U x_t + W s_{t-1})        o_t = softmax(V s_t)

Here the same cell is ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``, so (tutorial -> unroll):
``U`` -> ``rnn.weight_ih_l0`` (and ``U x_t`` with a one-hot x_t is a row of ``embedding.weight``
projected by it), ``W`` -> ``rnn.weight_hh_l{k}``, ``V`` -> ``decoder.weight``, and the biases
the tutorial leaves out are ``b = rnn.bias_ih_l{k} + rnn.bias_hh_l{k}`` and ``decoder.bias``.

A cell does not know about the time loop, masks or the weights' gradients: the model
(``unroll.reference.model``) runs the loop, and turns the pre-activation gradients that
:meth:`step_backward` returns, ``dzx`` for the input's share ``x_t W_ih^T + b_ih`` and ``dzh`` for
the recurrent share ``h_{t-1} W_hh^T + b_hh``, into ``dW_ih = sum_t dzx_t^T x_t``, ``db_ih = sum_t
dzx_t``, ``dW_hh = sum_t dzh_t^T h_{t-1}`` and ``db_hh = sum_t dzh_t``, since those are the same for
every cell. Here the two shares are simply added, so ``dzx = dzh = dz`` (the GRU is where they differ).
"""

from __future__ import annotations

import numpy as np

State = tuple[np.ndarray, ...]


class RNNCell:
    """``h_t = f(z_t)`` with ``z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` and ``f`` = tanh or relu.

    Forward, for a batch ``[B, ...]`` (row vectors, so ``W x`` is written ``x @ W.T``)::

        z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          [B, H]
        h_t = tanh(z_t)                 (or max(z_t, 0) for rnn_relu)

    Backward, given ``dh_t`` = dL/dh_t (from the output at t and from step t+1)::

        dz_t     = dh_t * (1 - h_t^2)   (tanh' written with the output)
                 = dh_t * [z_t > 0]     (relu)
        dh_{t-1} = dz_t W_hh                            (the path back in time)
        dx_t     = dz_t W_ih                            (the path down to the input)
    """

    gates = 1
    state_names = ("h",)

    def __init__(self, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def step(self, zx: np.ndarray, state: State, w_hh: np.ndarray, b_hh: np.ndarray) -> tuple[State, tuple]:
        """One step. ``zx = x_t W_ih^T + b_ih`` is precomputed for all steps (it has no recurrence)."""
        (h_prev,) = state
        z = zx + h_prev @ w_hh.T + b_hh
        h = np.tanh(z) if self.nonlinearity == "tanh" else np.maximum(z, 0)
        return (h,), (h,)

    def step_backward(self, d_state: State, cache: tuple, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, State]:
        """Return ``(dz_t, dz_t, (dh_{t-1},))`` from ``(dh_t,)`` and the step's cache."""
        (dh,) = d_state
        (h,) = cache
        dz = dh * (1 - h * h) if self.nonlinearity == "tanh" else dh * (h > 0)
        return dz, dz, (dz @ w_hh,)
