"""The table of recurrent cells: everything the rest of unroll may know about a cell by its name.

A cell is two modules, a PyTorch layer stack (``unroll.models``) and a NumPy one-step cell
(``unroll.reference``), and one line here. Both are named by import path and imported only when
a model is built, so this module (and ``unroll.config``, which validates with it) loads neither
torch nor NumPy, and no engine module is imported upward.

The PyTorch side is either a ``torch.nn.RNNBase`` class (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``:
built with ``(input, hidden, layers, dropout=..., **options)``, packed for padding, run layer by
layer for locked or weight dropout), or a module of unroll's own with ``from_config(cfg)``,
``init_state(batch_size, ref)`` and ``forward(x, state, lengths)`` that handles all of that
itself (``unroll.models.qrnn.QRNN``). The NumPy side is a class built with ``**options`` that has
``state_names``, ``gates``, ``step`` and ``step_backward`` (``unroll.reference.rnn.RNNCell``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from unroll.errors import UnrollError


@dataclass(frozen=True)
class Cell:
    """One recurrent cell: its shapes, its state, its initialization rules and where its code is."""

    name: str
    gates: int  # weight blocks stacked in weight_ih (and weight_hh): 4 for the LSTM's i, f, g, o
    recurrent: bool  # has weight_hh / bias_hh (so orthogonal_recurrent and weight dropout on them apply)
    state: tuple[str, ...]  # what each layer of the PyTorch stack carries from step to step
    torch_layer: str  # "module:attribute" of the PyTorch layer stack
    numpy_cell: str  # "module:attribute" of the NumPy one-step cell
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments for both of them
    forget_gate: bool = False  # gate block 1 is a forget gate, so forget_bias applies
    windowed: bool = False  # the first layer may read a window of past inputs (ModelConfig.qrnn_window)
    classifier: bool = False  # the classifier (torch's bidirectional RNN modules) takes it

    def torch_class(self) -> Any:
        """The PyTorch layer-stack class (imports torch)."""
        return _load(self.torch_layer)

    def numpy_class(self) -> Any:
        """The NumPy one-step cell class (imports NumPy)."""
        return _load(self.numpy_cell)


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


_CELLS: dict[str, Cell] = {}


def register(cell: Cell) -> Cell:
    """Add ``cell`` to the table (a new cell's one line; tests add toy cells this way)."""
    if cell.name in _CELLS:
        raise ValueError(f"cell {cell.name!r} is already registered")
    _CELLS[cell.name] = cell
    return cell


def unregister(name: str) -> None:
    del _CELLS[name]


def get(name: str) -> Cell:
    """The cell called ``name``, or a one-line UnrollError listing the choices."""
    if name not in _CELLS:
        raise UnrollError(f"unknown cell {name!r}; choose one of {', '.join(names())}")
    return _CELLS[name]


def names(classifier: bool = False) -> list[str]:
    """Registered cell names (only those the classifier takes, with ``classifier=True``)."""
    return [name for name, cell in _CELLS.items() if cell.classifier or not classifier]


register(Cell("rnn_tanh", gates=1, recurrent=True, state=("h",), torch_layer="torch.nn:RNN",
              numpy_cell="unroll.reference.rnn:RNNCell", options={"nonlinearity": "tanh"}, classifier=True))
register(Cell("rnn_relu", gates=1, recurrent=True, state=("h",), torch_layer="torch.nn:RNN",
              numpy_cell="unroll.reference.rnn:RNNCell", options={"nonlinearity": "relu"}, classifier=True))
register(Cell("lstm", gates=4, recurrent=True, state=("h", "c"), torch_layer="torch.nn:LSTM",
              numpy_cell="unroll.reference.lstm:LSTMCell", forget_gate=True, classifier=True))
register(Cell("gru", gates=3, recurrent=True, state=("h",), torch_layer="torch.nn:GRU",
              numpy_cell="unroll.reference.gru:GRUCell", classifier=True))
# gate blocks z, f, o; the PyTorch state is c (h = o * c is recomputed), plus the window's past inputs
register(Cell("qrnn", gates=3, recurrent=False, state=("c",), torch_layer="unroll.models.qrnn:QRNN",
              numpy_cell="unroll.reference.qrnn:QRNNCell", forget_gate=True, windowed=True))
