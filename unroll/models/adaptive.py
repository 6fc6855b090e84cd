"""The adaptive softmax (Grave et al. 2017) for the PyTorch engine: the decoder for large vocabularies.

A frequency-ranked vocabulary is cut at ``cutoffs``: the head is a softmax over the most frequent
tokens and one entry per cluster of rarer ones; each cluster has its own softmax over a
projection to a narrower width (``D // div_value^(i+1)``). The parameter names and shapes are
``torch.nn.AdaptiveLogSoftmaxWithLoss``'s (``head``, ``tail.{i}.0``, ``tail.{i}.1``); the math is
written here because that module fails under bf16 autocast (it copies bf16 scores into a float32
buffer) and fills its full distribution slice by slice, which ONNX export does not take well.
See :mod:`unroll.reference.adaptive` for the same model in NumPy, with its backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unroll.config import ModelConfig


class AdaptiveSoftmax(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.edges = [*cfg.cutoffs, cfg.vocab_size]  # where each cluster starts, then V
        self.shortlist = cfg.cutoffs[0]
        D = cfg.decoder_size
        self.head = nn.Linear(D, self.shortlist + len(cfg.cutoffs))
        self.tail = nn.ModuleList(
            nn.Sequential(nn.Linear(D, d, bias=False), nn.Linear(d, self.edges[i + 1] - self.edges[i], bias=False))
            for i, d in enumerate(cfg.tail_sizes)
        )

    def _scores_dtype(self, h: Tensor) -> torch.dtype:
        return torch.promote_types(h.dtype, torch.float32)  # log-probabilities never in bf16

    def log_probs(self, h: Tensor) -> Tensor:
        """The full ``log p(token)`` ``[..., V]``: the head's for the shortlist; for a cluster's
        tokens, the head's log-probability of the cluster plus the cluster's own."""
        dtype = self._scores_dtype(h)
        head = torch.log_softmax(self.head(h).to(dtype), dim=-1)
        c0 = self.shortlist
        parts = [head[..., :c0]]
        for i, tail in enumerate(self.tail):
            parts.append(torch.log_softmax(tail(h).to(dtype), dim=-1) + head[..., c0 + i : c0 + i + 1])
        return torch.cat(parts, dim=-1)

    def forward(self, h: Tensor, targets: Tensor) -> Tensor:
        """The mean ``-log p(target)`` over the rows of ``h [N, D]``, computing each cluster only
        for the rows whose target is in it: the point of the adaptive softmax."""
        dtype = self._scores_dtype(h)
        head = torch.log_softmax(self.head(h).to(dtype), dim=-1)
        head_index = targets.clone()  # the shortlist token itself, or its cluster's entry
        in_tail = torch.zeros(targets.shape, dtype=dtype, device=h.device)
        for i, tail in enumerate(self.tail):
            lo, hi = self.edges[i], self.edges[i + 1]
            rows = ((targets >= lo) & (targets < hi)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            head_index[rows] = self.shortlist + i
            tail_log_p = torch.log_softmax(tail(h[rows]).to(dtype), dim=-1)
            in_tail = in_tail.index_add(0, rows, tail_log_p.gather(1, (targets[rows] - lo)[:, None]).squeeze(1))
        log_p = head.gather(1, head_index[:, None]).squeeze(1) + in_tail
        return -log_p.mean()
