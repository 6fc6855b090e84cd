"""The two ways ``torch.onnx.export`` turns a model into a graph, and which one each cell gets.

- **legacy** (``dynamo=False``, TorchScript tracing): ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``
  become ONNX ``LSTM`` / ``GRU`` / ``RNN`` operators, one per layer, which onnxruntime runs as
  single fused kernels, with time and batch left dynamic (``dynamic_axes``).
- **dynamo** (``torch.export`` with ``dynamic_shapes``): the only one that follows a loop over a
  dynamic length, through torch's scan operator (an ONNX ``Scan``). unroll's own layer stacks take
  it: the qrnn's recurrence (``unroll.models.qrnn.linear_scan``) turns into a scan while exporting.
  A stack whose ``forward`` loops over steps in Python fixes the length while traced (the graph's
  ``tokens`` input comes out with a fixed length): that is refused with a one-line error saying
  what to change (loop with ``torch._higher_order_ops.scan`` while exporting, as the qrnn does).

Measured on torch 2.13 / onnxruntime (docs/export.md): for ``nn.LSTM`` and ``nn.GRU`` the dynamo
exporter also emits LSTM/GRU operators, but with a reshape to the example's sequence length (any
other length fails in onnxruntime), and for ``nn.RNN`` it unrolls the example's steps; it also
takes ~8x longer. So: legacy for torch's own stacks, dynamo for the rest (:func:`choose`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from unroll.errors import UnrollError
from unroll.export.graph import Outputs, Stateful
from unroll.export.layout import StateLayout

EXPORTERS = ("auto", "legacy", "dynamo")
LEGACY_OPSET = 17  # asked of the legacy exporter (LSTM, GRU and RNN are ONNX operators since opset 7)
DYNAMO_OPSET = 18  # the dynamo exporter's own default (its torchlib targets 18)
# the example the graph is traced with; the check runs other lengths and batch sizes (verify.py)
EXAMPLE_T, EXAMPLE_B = 5, 3


def choose(model: nn.Module) -> str:
    """The exporter for a model: legacy for torch's own recurrent stacks, dynamo for the others."""
    return "legacy" if isinstance(model.rnn, nn.RNNBase) else "dynamo"


def export(model: nn.Module, layout: StateLayout, outputs: Outputs, path: Path, exporter: str = "auto") -> str:
    """Write ``model`` (a ``LanguageModel`` on the CPU, float32, eval mode) to ``path`` as ONNX;
    returns the exporter used: "legacy" or "dynamo"."""
    if exporter not in EXPORTERS:
        raise UnrollError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    exporter = choose(model) if exporter == "auto" else exporter
    tokens = torch.randint(0, model.cfg.vocab_size, (EXAMPLE_T, EXAMPLE_B), generator=torch.Generator().manual_seed(0))
    state = tuple(t.contiguous() for t in layout.from_model(model.init_state(EXAMPLE_B)))
    names = (["tokens", *layout.names], [outputs.scores, *layout.output_names])
    try:
        with quiet():
            if exporter == "legacy":
                _legacy(Stateful(model, layout, outputs), (tokens, *state), names, outputs, path)
            else:
                _dynamo(Stateful(model, layout, outputs), (tokens, *state), names, outputs, path)
    except Exception as e:  # what torch.onnx cannot trace or translate: a limit of the exporter, said in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnrollError(f"torch.onnx's {exporter} exporter cannot export the {model.cfg.cell} model: {first}") from e
    if not _dynamic_tokens(path):
        raise UnrollError(
            f"cell {model.cfg.cell!r}: its layer stack fixes the sequence length when traced (a Python loop "
            f"over steps); make its forward loop with torch's scan while exporting, as unroll.models.qrnn does")
    return exporter


def _legacy(module: nn.Module, example: tuple, names: tuple[list[str], list[str]], outputs: Outputs,
            path: Path) -> None:
    inputs, outs = names
    axes = {"tokens": {0: "time", 1: "batch"}, outs[0]: {0: "batch"} if outputs.last_only else {0: "time", 1: "batch"}}
    axes |= {name: {0: "batch"} for name in inputs[1:] + outs[1:]}
    torch.onnx.export(module, example, str(path), dynamo=False, input_names=inputs, output_names=outs,
                      dynamic_axes=axes, opset_version=LEGACY_OPSET)


def _dynamo(module: nn.Module, example: tuple, names: tuple[list[str], list[str]], outputs: Outputs,
            path: Path) -> None:
    time, batch = torch.export.Dim("time", min=1), torch.export.Dim("batch", min=1)
    shapes = ({0: time, 1: batch}, tuple({0: batch} for _ in example[1:]))
    program = torch.onnx.export(module, example, dynamo=True, dynamic_shapes=shapes, input_names=names[0],
                                output_names=names[1], opset_version=DYNAMO_OPSET, optimize=True, verbose=False)
    program.save(str(path))


def _dynamic_tokens(path: Path) -> bool:
    """Whether the graph's ``tokens`` input kept both axes dynamic (named, not fixed numbers)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dims = next(i for i in graph.input if i.name == "tokens").type.tensor_type.shape.dim
    return all(d.HasField("dim_param") for d in dims)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """torch.onnx and onnxruntime's quantizer print progress, log warnings (torchvision missing,
    "consider pre-processing") and warn about tracing details; unroll reports its own result."""
    was = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(was)
