"""The language model as the function an ONNX graph can hold: ``(tokens, *state) -> (scores, *state)``.

ONNX graphs take and return flat lists of tensors, so the model is wrapped with its state spread
into the named tensors of :mod:`unroll.export.layout`, and its logits turned into what was asked
for: log-probabilities (the default; what scoring and sampling read) or logits, for every step
``[T, B, V]`` or only the last ``[B, V]`` (what a streaming caller needs: T times less to copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unroll.export.layout import StateLayout

SCORES = ("log_probs", "logits")


@dataclass(frozen=True)
class Outputs:
    """What the exported model returns besides the state."""

    scores: str = "log_probs"  # or "logits"
    last_only: bool = False  # [B, V] for the last step only, instead of [T, B, V]

    def __post_init__(self) -> None:
        if self.scores not in SCORES:
            raise ValueError(f"scores must be one of {SCORES}, got {self.scores!r}")

    def shape(self, vocab_size: int) -> list[int | str]:
        return ["batch", vocab_size] if self.last_only else ["time", "batch", vocab_size]

    def finish(self, logits: Tensor) -> Tensor:
        """``[T, B, V]`` logits -> what is returned."""
        if self.last_only:
            logits = logits[-1]
        logits = logits.float()
        return torch.log_softmax(logits, dim=-1) if self.scores == "log_probs" else logits


class Stateful(nn.Module):
    """``forward(tokens [T, B] int64, *state) -> (scores, *new_state)``, the whole sequence at once."""

    def __init__(self, model: nn.Module, layout: StateLayout, outputs: Outputs):
        super().__init__()
        self.model, self.layout, self.outputs = model, layout, outputs
        # eval as a whole: torch.onnx.export puts the wrapper back in the mode it found it in, and
        # a wrapper left in training mode would switch the model's dropout back on
        self.eval()

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new = self.model(tokens, self.layout.to_model(state))
        return (self.outputs.finish(logits), *self.layout.from_model(new))
