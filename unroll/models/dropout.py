"""Dropout variants for recurrent language models.

- ``dropout``: a fresh mask for every element and time step (Zaremba et al. 2014); used on
  the non-recurrent connections when ``locked_dropout`` is off.
- ``locked_mask``: variational dropout (Gal & Ghahramani 2016): one mask per sequence, reused
  at every time step, so a unit that is off stays off for the whole window.
- ``embedding_dropout``: drops whole words: every occurrence of a dropped word id in the batch
  gets a zero embedding (Gal & Ghahramani 2016; AWD-LSTM's ``embedded_dropout``).

All masks are scaled by 1 / (1 - p) so nothing changes at evaluation time.

Speed on CPU: torch's CPU generator draws one number at a time (serially, a few ns each), so
``bernoulli_`` (what ``F.dropout`` draws with) and even ``uniform_`` cost milliseconds for the
[3H, in] weight-dropout masks that every step needs. ``keep_mask`` takes one 64-bit seed from
torch's generator and draws the mask's bits in bulk with NumPy's PCG64, which keeps torch's
generator the single source of randomness (``torch.manual_seed`` and a resumed run's saved RNG
state reproduce every mask) at a fraction of the cost. On a GPU the device's own generator is used.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float, like: Tensor) -> Tensor:
    """A Bernoulli(1 - p) mask of ``shape``, scaled by 1 / (1 - p), in ``like``'s dtype and device."""
    if like.device.type != "cpu":
        return like.new_empty(shape).uniform_().ge_(p).div_(1 - p)
    seed = int(torch.randint(0, 2**63 - 1, (1,)))
    bits = np.random.Generator(np.random.PCG64(seed)).random(math.prod(shape), dtype=np.float32)
    return torch.from_numpy(bits).view(shape).ge_(p).to(like.dtype).div_(1 - p)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout`` (a fresh mask per element); on CPU with the faster mask of ``keep_mask``."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu":  # CUDA's dropout kernel draws and applies the mask in one pass
        return F.dropout(x, p, True)
    return x * keep_mask(x.shape, p, x)


def locked_mask(batch_size: int, size: int, p: float, like: Tensor) -> Tensor:
    """A ``[B, D]`` Bernoulli(1 - p) mask, scaled by 1 / (1 - p), shared by all time steps."""
    return keep_mask((batch_size, size), p, like)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout on ``x [T, B, D]``: the same mask at every time step."""
    if not training or p == 0:
        return x
    return x * locked_mask(x.size(1), x.size(2), p, x).unsqueeze(0)


def embedding_dropout(weight: Tensor, inputs: Tensor, p: float, training: bool, sparse: bool = False) -> Tensor:
    """Look up ``inputs [T, B]`` in ``weight [V, E]`` with whole words dropped with probability p.

    Equivalent to AWD-LSTM's masking of embedding rows, but the mask is gathered per token
    instead of multiplied into the whole ``[V, E]`` matrix, which costs far less for big vocabularies.
    ``sparse``: the gradient of ``weight`` is a sparse tensor holding only the looked-up rows.
    """
    emb = F.embedding(inputs, weight, sparse=sparse)
    if not training or p == 0:
        return emb
    keep = keep_mask((weight.size(0),), p, weight)
    return emb * keep[inputs].unsqueeze(-1)
