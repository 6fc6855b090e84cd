"""The export's own check: onnxruntime must give PyTorch's numbers before a file is kept.

Two ways a wrong graph shows: one that only works at the shape it was traced with, and one that
mishandles the state it is given. So the check runs (a) whole sequences at lengths and batch
sizes other than the export's example, from a state PyTorch reached on a random prefix, and (b)
50 single-token calls that carry onnxruntime's own state from call to call (the streaming use,
where an error in the state would grow), and compares the scores and every state tensor with
PyTorch's at ``rtol``/``atol``. Tokens are drawn from the model itself, so the inputs look like
the text it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from unroll.errors import UnrollError
from unroll.export.graph import Outputs
from unroll.export.layout import StateLayout
from unroll.export.runtime import OnnxLM
from unroll.use.engine import _without_onednn

RTOL, ATOL = 1e-4, 1e-5
SHAPES = ((1, 1), (9, 2), (23, 5))  # (T, B); the export traced (5, 3)
STREAM_STEPS, STREAM_BATCH = 50, 2


class CheckFailed(UnrollError):
    """The exported graph does not give PyTorch's numbers."""


@dataclass
class Report:
    """The largest differences the check measured, by what was compared."""

    largest: dict[str, float] = field(default_factory=dict)  # "T=9 B=2 log_probs" -> max |onnx - torch|

    @property
    def max_abs(self) -> float:
        return max(self.largest.values(), default=0.0)

    def where(self) -> str:
        return max(self.largest, key=self.largest.get) if self.largest else ""

    def summary(self) -> str:
        shapes = ", ".join(f"{t}x{b}" for t, b in SHAPES)
        return (f"largest difference from PyTorch {self.max_abs:.2e} ({self.where()}); "
                f"T x B = {shapes} and {STREAM_STEPS} single-token steps; rtol {RTOL:g}, atol {ATOL:g}")


def sample_tokens(model: torch.nn.Module, steps: int, batch: int, seed: int) -> np.ndarray:
    """``[steps, batch]`` token ids sampled from the model itself (temperature 1)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(steps, batch, dtype=torch.int64)
    token, state = torch.randint(0, model.cfg.vocab_size, (1, batch), generator=gen), None
    with torch.no_grad(), _without_onednn(True):
        for t in range(steps):
            tokens[t] = token[0]
            logits, state = model(token, state)
            token = torch.multinomial(torch.softmax(logits[0].double(), -1), 1, generator=gen).T
    return tokens.numpy()


def verify(model: torch.nn.Module, layout: StateLayout, outputs: Outputs, onnx: OnnxLM,
           rtol: float = RTOL, atol: float = ATOL, seed: int = 0) -> Report:
    """Compare ``onnx`` with ``model`` (see the module docstring); raises :class:`CheckFailed`."""
    report = Report()
    # oneDNN's RNN set-up costs milliseconds per call at these sizes (see unroll.use.engine)
    with torch.no_grad(), _without_onednn(True):
        for i, (T, B) in enumerate(SHAPES):
            tokens = sample_tokens(model, 4 + T, B, seed + i)
            _, start = model(torch.from_numpy(tokens[:4]))  # a state worth carrying
            logits, final = model(torch.from_numpy(tokens[4:]), start)
            got, got_state = _run(onnx, tokens[4:], _named(layout, start), f"T={T} B={B}")
            _compare(report, f"T={T} B={B}", "", outputs, logits, got, final, got_state, layout, rtol, atol)
        tokens = sample_tokens(model, STREAM_STEPS, STREAM_BATCH, seed + len(SHAPES))
        state, got_state = None, onnx.init_state(STREAM_BATCH)
        for t in range(STREAM_STEPS):
            logits, state = model(torch.from_numpy(tokens[t:t + 1]), state)
            got, got_state = _run(onnx, tokens[t:t + 1], got_state, f"streaming step {t + 1}")
            _compare(report, "streaming", f" at step {t + 1} of {STREAM_STEPS}", outputs, logits, got, state,
                     got_state, layout, rtol, atol)
    return report


def _run(onnx: OnnxLM, tokens: np.ndarray, state: dict[str, np.ndarray], where: str) -> tuple[np.ndarray, dict]:
    try:
        return onnx.run(tokens, state)
    except Exception as e:  # onnxruntime's errors: a graph that only runs at the traced shape, a lost input
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckFailed(f"ONNX check failed: onnxruntime cannot run the graph at {where} ({first}); "
                          f"nothing was written") from None


def _named(layout: StateLayout, state: object) -> dict[str, np.ndarray]:
    return {t.name: x.contiguous().numpy() for t, x in zip(layout.tensors, layout.from_model(state))}


def _compare(report: Report, group: str, at: str, outputs: Outputs, logits: torch.Tensor, got: np.ndarray,
             state: object, got_state: dict[str, np.ndarray], layout: StateLayout, rtol: float, atol: float) -> None:
    """Record the largest difference of each output under ``group``; fail at the first beyond tolerance."""
    pairs = [(outputs.scores, outputs.finish(logits).numpy(), got)]
    pairs += [(name + "_out", want, got_state[name]) for name, want in _named(layout, state).items()]
    for what, want, have in pairs:
        key = f"{group} {what}"
        if want.shape != have.shape:
            raise CheckFailed(f"ONNX check failed: {key}{at} has shape {list(have.shape)}, PyTorch's {list(want.shape)}")
        diff = float(np.abs(have.astype(np.float64) - want).max()) if want.size else 0.0
        report.largest[key] = max(report.largest.get(key, 0.0), diff)
        if not np.allclose(have, want, rtol=rtol, atol=atol):
            raise CheckFailed(f"ONNX check failed: {key}{at} differs from PyTorch by up to {diff:.2e} "
                              f"(allowed rtol {rtol:g}, atol {atol:g}); nothing was written")
