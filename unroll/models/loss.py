"""The decoder and the mean cross-entropy in one autograd node: the training loss, made cheap.

At 10k words and H = 200 the output layer holds three quarters of a step's FLOPs, and the
``[N, V]`` logits are the largest tensors of the step. The usual path (``decoder`` under
autocast, ``.float()``, ``cross_entropy``) writes and reads those logits five or six times in
float32: the cast, log_softmax, nll_loss's zero-filled gradient, log_softmax's backward, the cast
back to bf16. Here the softmax is taken once (float32 math, stored in the compute dtype) and the
backward pass multiplies it straight into the weight and input gradients; the one-hot part of
``dlogits = (softmax - onehot) / N`` is a gather / scatter of N rows, never an ``[N, V]`` array.

Numerics: in float32 / float64 this is the same function as ``cross_entropy(decoder(h), y)``
(a test checks it against autograd in float64). In bf16 the probabilities are rounded to bf16,
as autocast rounds the gradient of the usual path before its backward matmuls; the loss is
``-log p[target]`` gathered and averaged in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, dtype: torch.dtype) -> Tensor:
        hc, wc = h.to(dtype), weight.to(dtype)
        probs = torch.softmax(torch.addmm(bias.to(dtype), hc, wc.t()), dim=1)
        picked = probs.gather(1, targets[:, None]).squeeze(1).to(torch.promote_types(dtype, torch.float32))
        ctx.save_for_backward(hc, wc, probs, targets)
        ctx.dtypes = (h.dtype, weight.dtype, bias.dtype)
        return -picked.log().mean()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        hc, wc, probs, targets = ctx.saved_tensors
        h_dtype, w_dtype, b_dtype = ctx.dtypes
        scale = grad / probs.size(0)
        # dlogits = (probs - onehot) * scale; the onehot part is a gather / scatter of rows. The
        # scale goes on the small [N, H] factor, not on the [V, H] weight gradient.
        dh = dw = db = None
        if ctx.needs_input_grad[0]:
            dh = (probs @ wc).to(h_dtype).sub_(wc[targets].to(h_dtype)).mul_(scale)
        if ctx.needs_input_grad[1]:
            hs = hc * scale.to(hc.dtype)
            dw = (probs.t() @ hs).to(w_dtype).index_add_(0, targets, hs.to(w_dtype), alpha=-1)
        if ctx.needs_input_grad[2]:
            db = probs.sum(0).to(b_dtype).sub_(torch.bincount(targets, minlength=probs.size(1))).mul_(scale)
        return dh, dw, db, None, None


def linear_cross_entropy(h: Tensor, weight: Tensor, bias: Tensor, targets: Tensor) -> Tensor:
    """``cross_entropy(h @ weight.T + bias, targets)`` (mean over rows) for ``h [N, H]``, ``targets [N]``.

    The products run in autocast's dtype when autocast is on for ``h``'s device (bf16 on AMX),
    else in the wider of ``h``'s and ``weight``'s dtypes.
    """
    device = h.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = torch.promote_types(h.dtype, weight.dtype)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(h, weight, bias, targets, dtype)
