"""The recurrent state as explicit, named tensors: what an ONNX model takes and returns beside the tokens.

Inside unroll a model's state is one ``[L, B, H]`` tensor per name in the cell's ``state``
(``unroll.cells``), a tuple when there are several, with batch on dim 1; a windowed QRNN adds its
past inputs ``[w - 1, B, E]``. A program driving an exported model should not need to know
that, so the export splits it into one tensor per layer, every one with the batch on axis 0::

    h_l0, h_l1, ...   [B, H]         each layer's h (every cell but the qrnn)
    c_l0, c_l1, ...   [B, H]         each layer's c (lstm, qrnn)
    past              [B, w - 1, E]  a windowed qrnn's last w - 1 embedded inputs, oldest first

Inputs are named as above; the state after the call comes back as ``<name>_out``. Zeros are
the state before the first token. The layout is read from ``init_state``, so a cell added to
the registry gets one without a line here: a state entry named in ``Cell.state`` whose first
dimension is the layer count is split per layer, any other entry is kept whole, batch-first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unroll import cells

BATCH = "batch"


@dataclass(frozen=True)
class StateTensor:
    """One named state tensor of the exported model."""

    name: str  # the ONNX input; the output is name + "_out"
    what: str  # the state it is part of: "h", "c", "past", ...
    layer: int | None  # its layer, for a per-layer tensor
    shape: tuple[int | str, ...]  # "batch" for the dynamic batch axis (always axis 0)
    entry: int  # which entry of the model's state tuple it comes from

    @property
    def output(self) -> str:
        return self.name + "_out"

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.name, "output": self.output, "what": self.what, "layer": self.layer,
                "shape": list(self.shape), "dtype": "float32", "batch_axis": 0, "initial": "zeros"}


@dataclass(frozen=True)
class StateLayout:
    """How a model's state maps to named tensors and back (``split[i]``: entry i is per layer)."""

    tensors: tuple[StateTensor, ...]
    split: tuple[bool, ...]
    layers: int

    @classmethod
    def of(cls, model: Any) -> "StateLayout":
        """The layout of a ``unroll.models.LanguageModel``'s state, read from its ``init_state``."""
        state = model.init_state(1)
        entries = state if isinstance(state, tuple) else (state,)
        cell, layers = cells.get(model.cfg.cell), model.cfg.num_layers
        tensors, split = [], []
        for i, entry in enumerate(entries):
            what = _entry_name(cell, i)
            per_layer = what in cell.state and entry.dim() == 3 and entry.size(0) == layers
            split.append(per_layer)
            if per_layer:
                tensors += [StateTensor(f"{what}_l{k}", what, k, (BATCH, entry.size(2)), i) for k in range(layers)]
            else:  # kept whole, the batch (dim 1 inside unroll) moved to the front
                rest = [entry.size(0), *entry.shape[2:]]
                tensors.append(StateTensor(what, what, None, (BATCH, *rest), i))
        return cls(tuple(tensors), tuple(split), layers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    @property
    def output_names(self) -> list[str]:
        return [t.output for t in self.tensors]

    def to_model(self, flat: tuple[Any, ...] | list[Any]) -> Any:
        """Named tensors (torch, in ``names`` order) -> the model's state."""
        import torch

        entries, i = [], 0
        for per_layer in self.split:
            if per_layer:
                entries.append(torch.stack(list(flat[i:i + self.layers])))
                i += self.layers
            else:
                entries.append(flat[i].movedim(0, 1))
                i += 1
        return tuple(entries) if len(entries) > 1 else entries[0]

    def from_model(self, state: Any) -> list[Any]:
        """The model's state -> named tensors (torch, in ``names`` order)."""
        entries = state if isinstance(state, tuple) else (state,)
        flat: list[Any] = []
        for per_layer, entry in zip(self.split, entries):
            flat += list(entry.unbind(0)) if per_layer else [entry.movedim(1, 0)]
        return flat

    def describe(self) -> list[dict[str, Any]]:
        """The sidecar's ``state`` section."""
        return [t.to_dict() for t in self.tensors]


def _entry_name(cell: cells.Cell, i: int) -> str:
    if i < len(cell.state):
        return cell.state[i]
    if cell.windowed and i == len(cell.state):
        return "past"
    return f"state{i}"
