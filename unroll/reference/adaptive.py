"""The adaptive softmax (Grave et al. 2017) in NumPy, forward and backward written out.

A vocabulary ranked by frequency is cut at ``c_0 < c_1 < ... < c_{n-1}`` (and ``c_n = V``). The
head is a softmax over the ``c_0`` most frequent tokens and one entry per cluster ``i`` (tokens
``c_i .. c_{i+1} - 1``); each cluster has its own softmax, over a projection of the input to a
narrower width ``d_i``. For ``out [N, D]``::

    head = log_softmax(out W_h^T + b_h)                    [N, c_0 + n]
    tail_i = log_softmax((out P_i^T) O_i^T)                [N, c_{i+1} - c_i]
    log p(v) = head[v]                                     v < c_0
    log p(v) = head[c_0 + i] + tail_i[v - c_i]             c_i <= v < c_{i+1}

Rare tokens cost a product of width ``d_i`` instead of ``D``, which is where the speed comes from
in the fast engine (it computes only the clusters its targets fall in); this engine computes the
whole distribution, which is what it returns as its "logits" (a log-probability vector is a
valid logit vector: its softmax is itself). Names follow ``torch.nn.AdaptiveLogSoftmaxWithLoss``:
``adaptive.head.weight`` (W_h), ``adaptive.head.bias``, ``adaptive.tail.{i}.0.weight`` (P_i),
``adaptive.tail.{i}.1.weight`` (O_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unroll.config import ModelConfig


@dataclass
class AdaptiveCache:
    """What the backward pass needs: the head's and each cluster's log-probabilities, and each
    cluster's projection of the input."""

    head: np.ndarray  # [N, c_0 + n]
    projections: list[np.ndarray]  # [N, d_i]
    tails: list[np.ndarray]  # [N, c_{i+1} - c_i]


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def edges(cfg: ModelConfig) -> list[int]:
    """``[c_0, ..., c_{n-1}, V]``: where each cluster starts, and the vocabulary's end."""
    return [*cfg.cutoffs, cfg.vocab_size]


def forward(cfg: ModelConfig, params: dict[str, np.ndarray], out: np.ndarray) -> tuple[np.ndarray, AdaptiveCache]:
    """``(log p [N, V], cache)`` for the decoder's input ``out [N, D]``."""
    c = edges(cfg)
    head = log_softmax(out @ params["adaptive.head.weight"].T + params["adaptive.head.bias"])
    log_p = np.empty((out.shape[0], cfg.vocab_size), out.dtype)
    log_p[:, : c[0]] = head[:, : c[0]]
    projections, tails = [], []
    for i in range(len(cfg.cutoffs)):
        projection = out @ params[f"adaptive.tail.{i}.0.weight"].T
        tail = log_softmax(projection @ params[f"adaptive.tail.{i}.1.weight"].T)
        log_p[:, c[i] : c[i + 1]] = head[:, c[0] + i, None] + tail
        projections.append(projection)
        tails.append(tail)
    return log_p, AdaptiveCache(head, projections, tails)


def backward(
    cfg: ModelConfig, params: dict[str, np.ndarray], out: np.ndarray, cache: AdaptiveCache, d_log_p: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(parameter gradients, d_out [N, D])`` of ``sum(d_log_p * log p)``.

    A cluster's log-probability enters every one of its tokens' scores, so its head entry gets
    the sum of their gradients. Each log_softmax passes ``g - softmax * sum(g)`` back.
    """
    c = edges(cfg)
    grads: dict[str, np.ndarray] = {}
    d_head = np.zeros_like(cache.head)
    d_head[:, : c[0]] = d_log_p[:, : c[0]]
    d_out = np.zeros_like(out)
    for i in range(len(cfg.cutoffs)):
        g = d_log_p[:, c[i] : c[i + 1]]
        d_head[:, c[0] + i] = g.sum(axis=1)
        d_scores = g - np.exp(cache.tails[i]) * g.sum(axis=1, keepdims=True)
        w_out, w_projection = params[f"adaptive.tail.{i}.1.weight"], params[f"adaptive.tail.{i}.0.weight"]
        grads[f"adaptive.tail.{i}.1.weight"] = d_scores.T @ cache.projections[i]
        d_projection = d_scores @ w_out
        grads[f"adaptive.tail.{i}.0.weight"] = d_projection.T @ out
        d_out += d_projection @ w_projection
    d_head_scores = d_head - np.exp(cache.head) * d_head.sum(axis=1, keepdims=True)
    grads["adaptive.head.weight"] = d_head_scores.T @ out
    grads["adaptive.head.bias"] = d_head_scores.sum(axis=0)
    d_out += d_head_scores @ params["adaptive.head.weight"]
    return grads, d_out
