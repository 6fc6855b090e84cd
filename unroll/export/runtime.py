"""An exported model in onnxruntime, driven by its sidecar: NumPy in, NumPy out, no torch.

    lm = OnnxLM("model.onnx", threads=1)
    state = lm.init_state(batch_size=2)
    scores, state = lm.run(np.array([[3, 7]]), state)     # tokens [T, B] int64 -> [T, B, V]

What the export's check (``verify.py``), the int8 check and the benchmark run. The example
``examples/onnx_score.py`` does the same in a few lines of its own, for programs without unroll.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from unroll.export import sidecar as sidecars

State = dict[str, np.ndarray]


class OnnxLM:
    """One onnxruntime session on the CPU with the model's sidecar."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, sidecar: dict[str, Any] | None = None):
        import onnxruntime as ort

        self.sidecar = sidecar if sidecar is not None else sidecars.read(path)
        options = ort.SessionOptions()
        if threads:  # a fixed count, for measurements; onnxruntime's default is one per core
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 4  # only fatal: its errors come back as exceptions, its warnings are noise
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.state_inputs = [s["input"] for s in self.sidecar["state"]]
        self.state_outputs = [s["output"] for s in self.sidecar["state"]]
        self.output = self.sidecar["output"]["name"]

    def init_state(self, batch_size: int) -> State:
        """Zeros: the state before the first token."""
        return {s["input"]: np.zeros([batch_size if d == "batch" else d for d in s["shape"]], np.float32)
                for s in self.sidecar["state"]}

    def run(self, tokens: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """``tokens [T, B]`` -> (scores, the state after the last token)."""
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        state = state if state is not None else self.init_state(tokens.shape[1])
        out = self.session.run([self.output, *self.state_outputs], {"tokens": tokens, **state})
        return out[0], dict(zip(self.state_inputs, out[1:]))

    def evaluate(self, ids: np.ndarray, batch_size: int = 10, bptt: int = 35) -> dict[str, float]:
        """Perplexity of a token stream by unroll's protocol (``unroll.evaluate.stream``: ``batch_size``
        columns, ``bptt`` steps per call, the state carried), as ``unroll eval`` computes it."""
        from unroll.evaluate.stream import metrics, windows

        out = self.sidecar["output"]
        if out["scores"] != "log_probs" or out["last_only"]:
            raise ValueError("evaluate needs a model exported with log-probabilities for every step")
        state, total, count = self.init_state(batch_size), 0.0, 0
        for x, y in windows(ids, batch_size, bptt):
            lp, state = self.run(x, state)
            total -= float(np.take_along_axis(lp, y[..., None], -1).sum(dtype=np.float64))
            count += y.size
        return metrics(total, count)
