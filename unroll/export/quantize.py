"""int8: onnxruntime's dynamic quantization of an exported model, and its own looser check.

Dynamic quantization stores the weight matrices as int8 (a quarter of the size) and quantizes
activations on the fly, per call: the LSTM operator becomes onnxruntime's DynamicQuantizeLSTM, the
decoder's MatMul an integer one, the embedding a Gather of int8 rows. No calibration data is
needed. GRU and RNN operators have no quantized kernel and stay float; their decoder and
embedding (most of the parameters of a word model) are still quantized.

int8 cannot match PyTorch to 1e-5, so its check is by what a user would notice: the perplexity
of text drawn from the model, int8 against the fp32 ONNX model, within ``PPL_RTOL``; the largest
log-probability difference is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unroll.export.runtime import OnnxLM
from unroll.export.verify import CheckFailed

PPL_RTOL = 0.05  # int8 perplexity within 5% of fp32's on the check's text
STEPS, BATCH = 60, 4


@dataclass
class Int8Report:
    ppl_fp32: float
    ppl_int8: float
    max_abs_log_prob: float

    @property
    def relative(self) -> float:
        return self.ppl_int8 / self.ppl_fp32 - 1

    def summary(self) -> str:
        return (f"perplexity {self.ppl_int8:.3f} vs {self.ppl_fp32:.3f} fp32 ({self.relative:+.2%}; allowed "
                f"±{PPL_RTOL:.0%}), largest log-prob difference {self.max_abs_log_prob:.3f}")


def quantize(src: Path, dst: Path) -> None:
    """Write the int8 version of the ONNX model ``src`` to ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from unroll.export.exporters import quiet

    with quiet():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def check(fp32: OnnxLM, int8: OnnxLM, tokens: np.ndarray, rtol: float = PPL_RTOL) -> Int8Report:
    """Stream ``tokens [T, B]`` through both models one token per call; compare next-token
    log-probabilities and perplexities. Raises :class:`CheckFailed` beyond ``rtol``."""
    nll, worst = [0.0, 0.0], 0.0
    states = [fp32.init_state(tokens.shape[1]), int8.init_state(tokens.shape[1])]
    for t in range(tokens.shape[0] - 1):
        lps = []
        for i, lm in enumerate((fp32, int8)):
            scores, states[i] = lm.run(tokens[t:t + 1], states[i])
            lp = _log_probs(scores.reshape(tokens.shape[1], -1), lm.sidecar["output"]["scores"])
            nll[i] -= float(np.take_along_axis(lp, tokens[t + 1][:, None], -1).sum())
            lps.append(lp)
        worst = max(worst, float(np.abs(lps[0] - lps[1]).max()))
    n = (tokens.shape[0] - 1) * tokens.shape[1]
    report = Int8Report(math.exp(nll[0] / n), math.exp(nll[1] / n), worst)
    if not math.isfinite(report.ppl_int8) or abs(report.relative) > rtol:
        raise CheckFailed(f"int8 check failed: {report.summary()}; nothing was written")
    return report


def _log_probs(scores: np.ndarray, kind: str) -> np.ndarray:
    scores = scores.astype(np.float64)
    if kind == "log_probs":
        return scores
    shifted = scores - scores.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
