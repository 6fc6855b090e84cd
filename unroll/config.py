"""Typed settings shared by both engines.

``ModelConfig`` describes a language model completely: it is saved as ``config.json`` next to
the weights, and the NumPy reference engine and the PyTorch engine both build from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from unroll.errors import UnrollError

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


@dataclass
class ModelConfig:
    """A recurrent language model: embedding -> N recurrent layers -> linear decoder -> softmax."""

    vocab_size: int
    cell: str = "lstm"  # rnn_tanh | rnn_relu | lstm | gru
    emb_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    dropout: float = 0.0  # on non-recurrent connections, as Zaremba et al. 2014
    emb_dropout: float = 0.0  # drops whole words (rows of the embedding), as Gal & Ghahramani
    locked_dropout: bool = False  # variational dropout: one mask per sequence, not per step
    tie_weights: bool = False  # decoder.weight is embedding.weight (needs emb_size == hidden_size)
    init: str = "uniform"  # uniform: U(-init_scale, init_scale); fan_in: U(-1/sqrt(n), 1/sqrt(n))
    init_scale: float = 0.1
    orthogonal_recurrent: bool = False  # orthogonal weight_hh (per gate block)
    forget_bias: float = 0.0  # added to the LSTM forget-gate bias at initialization

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise UnrollError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.init not in ("uniform", "fan_in"):
            raise UnrollError(f"unknown init {self.init!r}; choose uniform or fan_in")
        if self.vocab_size < 1 or self.emb_size < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise UnrollError("vocab_size, emb_size, hidden_size and num_layers must be positive")
        for name in ("dropout", "emb_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UnrollError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.tie_weights and self.emb_size != self.hidden_size:
            raise UnrollError(
                f"tie_weights needs emb_size == hidden_size (got {self.emb_size} and {self.hidden_size})"
            )

    @property
    def gates(self) -> int:
        """How many weight blocks a cell stacks in weight_ih / weight_hh (4 for LSTM: i, f, g, o)."""
        return GATES[self.cell]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UnrollError(f"unknown model settings in config: {', '.join(unknown)}")
        return cls(**d)
