"""A quasi-recurrent layer stack (QRNN, Bradbury et al. 2017, "fo-pooling").

    x [T, B, in] ──one GEMM over all T*B rows──► z, f, o [T, B, H] each
                                                 │  z = tanh, f = sigmoid, o = sigmoid
      c_t = f_t * c_{t-1} + (1 - f_t) * z_t  ◄───┘  (elementwise: the only loop over time)
      h_t = o_t * c_t

Why: an LSTM multiplies by ``weight_hh`` at every time step, a [B, H] x [H, 4H] product too small
to keep a CPU's matrix units busy. Here every matrix product leaves the time loop and becomes one
big GEMM over ``T * B`` rows (the shape AMX bf16 likes), and what stays in the loop is one fused
multiply-add per step on ``[B, H]``. AWD-QRNN matched AWD-LSTM on PTB (58.3 vs 58.8 test).

The first layer may look at a window of ``w`` inputs (``window``, a convolution over time):
its gates read ``[x_t, x_{t-1}, ..., x_{t-w+1}]``, AWD-QRNN's first layer with w = 2. Every
other layer has window 1 (x_t only).

Parameters per layer k, named like ``nn.LSTM``'s so checkpoints keep one naming scheme::

    weight_ih_l{k}  [3H, w * in] (layer 0), [3H, H] (the others); gate blocks z, f, o
                                 (f is block 1, as the LSTM's forget gate)
    bias_ih_l{k}    [3H]

The carried state is ``c [L, B, H]``, and with a window ``w > 1`` the tuple ``(c, past)``, where
``past [w - 1, B, in]`` holds the first layer's last inputs (oldest first), so a window split
into chunks gives the same numbers as a whole one. The gate GEMM follows autocast (bf16 on
AMX); the recurrence always runs in float32 (or the parameters' dtype when that is wider).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unroll.config import ModelConfig
from unroll.models.dropout import dropout, keep_mask, locked_dropout


class _LinearScan(torch.autograd.Function):
    """``c_t = a_t * c_{t-1} + b_t`` for t = 0..T-1 over ``[T, ...]``, from ``c0``.

    Autograd through a Python loop would record 2 nodes per step; this records one for the
    whole window, and the backward pass is the same recurrence run backwards in time:
    ``g_t = dc_t + a_{t+1} * g_{t+1}``, then ``db = g``, ``da_t = g_t * c_{t-1}``, ``dc0 = a_0 * g_0``.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, c0: Tensor) -> Tensor:
        c = torch.empty_like(b)
        prev = c0
        for t in range(b.size(0)):
            prev = torch.addcmul(b[t], a[t], prev, out=c[t])
        ctx.save_for_backward(a, c, c0)
        return c

    @staticmethod
    def backward(ctx, dc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, c, c0 = ctx.saved_tensors
        g = torch.empty_like(dc)
        nxt = dc[-1]
        g[-1] = nxt
        for t in range(dc.size(0) - 2, -1, -1):
            nxt = torch.addcmul(dc[t], a[t + 1], nxt, out=g[t])
        prev = torch.cat([c0.unsqueeze(0), c[:-1]])
        return g * prev, g, a[0] * g[0]


def linear_scan(a: Tensor, b: Tensor, c0: Tensor) -> Tensor:
    """All states ``c [T, ...]`` of the recurrence ``c_t = a_t * c_{t-1} + b_t`` (see _LinearScan)."""
    if torch.compiler.is_exporting():
        # torch.export (ONNX export, unroll.export) cannot follow a Python loop over a dynamic
        # length; torch's scan operator becomes an ONNX Scan, the same loop inside the graph
        return _export_scan(a, b, c0)
    return _LinearScan.apply(a, b, c0)


def _export_scan(a: Tensor, b: Tensor, c0: Tensor) -> Tensor:
    from torch._higher_order_ops.scan import scan

    def step(prev: Tensor, ab: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        c = torch.addcmul(ab[1], ab[0], prev)
        return c, c.clone()  # scan's outputs may not alias its carry

    return scan(step, c0, (a, b))[1]


class QRNN(nn.Module):
    """``num_layers`` QRNN layers; ``forward(x [T, B, in], c [L, B, H] | None) -> (h [T, B, H], c)``.

    ``dropout`` acts between layers in training: one mask per sequence when ``locked``
    (variational), else a fresh mask per step (Zaremba), as ``nn.LSTM``'s ``dropout`` does.
    ``weight_dropout``: in training, one DropConnect mask per batch on each ``weight_ih``, the
    only weights a qrnn has (AWD-QRNN's regularizer in place of AWD-LSTM's mask on ``weight_hh``).
    ``window``: how many inputs the first layer's gates read (the state becomes ``(c, past)``
    when it is over 1; see the module docstring).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0, locked: bool = False,
        weight_dropout: float = 0.0, window: int = 1,
    ):
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.input_size, self.hidden_size, self.num_layers, self.window = input_size, hidden_size, num_layers, window
        self.dropout, self.locked, self.weight_dropout = dropout, locked, weight_dropout
        for k in range(num_layers):
            n_in = input_size * window if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size, n_in)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(3 * hidden_size)))

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "QRNN":
        """The language model's stack (``unroll.cells``: the qrnn's torch layer)."""
        return cls(cfg.emb_size, cfg.hidden_size, cfg.num_layers, dropout=cfg.p_hidden, locked=cfg.locked_dropout,
                   weight_dropout=cfg.weight_dropout, window=cfg.qrnn_window)

    def init_state(
        self, batch_size: int, dtype: torch.dtype, device: torch.device | str
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Zeros: c [L, B, H], and with a window w > 1 the past inputs [w - 1, B, in] as well."""
        c = torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=dtype, device=device)
        if self.window == 1:
            return c
        return c, c.new_zeros(self.window - 1, batch_size, self.input_size)

    def forward(
        self, x: Tensor, state: Tensor | tuple[Tensor, Tensor] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """``lengths [B]`` (trailing padding): each sequence's state is the one after its last real token."""
        B = x.size(1)
        ref = self.bias_ih_l0
        scan_dtype = torch.promote_types(ref.dtype, torch.float32)
        state, past = state if isinstance(state, tuple) else (state, None)
        if state is None:
            state = torch.zeros(self.num_layers, B, self.hidden_size, dtype=scan_dtype, device=x.device)
        last = None if lengths is None else (lengths.to(x.device) - 1).clamp(min=0)
        if self.window > 1:
            x, past = self._windowed(x, past, lengths)
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.training and self.dropout > 0:
                x = locked_dropout(x, self.dropout, True) if self.locked else dropout(x, self.dropout, True)
            weight = getattr(self, f"weight_ih_l{k}")
            if self.training and self.weight_dropout > 0:
                weight = weight * keep_mask(weight.shape, self.weight_dropout, weight)
            gates = F.linear(x, weight, getattr(self, f"bias_ih_l{k}")).to(scan_dtype)
            z, f, o = gates.chunk(3, dim=-1)
            f = torch.sigmoid(f)
            c = linear_scan(f, (1 - f) * torch.tanh(z), state[k].to(scan_dtype))
            x = torch.sigmoid(o) * c
            finals.append(c[-1] if last is None else c[last, torch.arange(B, device=x.device)])
        c_final = torch.stack(finals)
        return x, (c_final if past is None else (c_final, past))

    def _windowed(self, x: Tensor, past: Tensor | None, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """The first layer's input ``[x_t, x_{t-1}, ..., x_{t-w+1}]`` per step ``[T, B, w * in]``,
        and the last ``w - 1`` inputs of each sequence (its real tokens only), to carry on."""
        T, B = x.shape[:2]
        n = self.window - 1
        if past is None:
            past = x.new_zeros(n, B, x.size(2))
        seq = torch.cat([past.to(x.dtype), x])  # step t of x is row t + n
        stacked = torch.cat([seq[n - j : n - j + T] for j in range(self.window)], dim=-1)
        if lengths is None:
            return stacked, seq[T:]
        # a sequence of length m ends at row m - 1 + n of seq: its last n inputs are rows m .. m + n - 1
        rows = lengths.to(x.device)[None, :] + torch.arange(n, device=x.device)[:, None]
        return stacked, seq[rows, torch.arange(B, device=x.device)[None, :]]
