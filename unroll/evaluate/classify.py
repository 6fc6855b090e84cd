"""Classification numbers: class probabilities (the tutorial's ``pred_probs``), error rate and
confusion matrix of a torch classifier on id sequences."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unroll.data.batching import sentence_batches
from unroll.models.device import resolve_precision


@torch.no_grad()
def predict_probs(
    model: torch.nn.Module, seqs: list[np.ndarray], batch_size: int = 64, precision: str = "fp32"
) -> np.ndarray:
    """Class probabilities ``[N, C]`` for id sequences, in input order (batched by length, so
    there is little padding; the padding never changes a result)."""
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision, device) == "bf16"
    probs = np.zeros((len(seqs), model.cfg.num_classes), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        for batch in sentence_batches(seqs, batch_size, sort="length"):
            x = torch.from_numpy(batch.tokens).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x, torch.from_numpy(batch.lengths))
            probs[batch.index] = torch.softmax(logits.double(), dim=-1).cpu().numpy()
    finally:
        model.train(was_training)
    return probs


def pred_error(model: torch.nn.Module, seqs: list[np.ndarray], y: np.ndarray, batch_size: int = 64,
               precision: str = "fp32") -> float:
    """Fraction of examples whose most probable class is wrong (the tutorial's ``pred_error``)."""
    return float(np.mean(predict_probs(model, seqs, batch_size, precision).argmax(1) != y)) if len(seqs) else 0.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``m[i, j]``: examples of class i predicted as class j."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def classification_report(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Examples, error, accuracy and confusion matrix of probabilities ``[N, C]`` against labels ``y``."""
    pred = probs.argmax(1)
    error = float(np.mean(pred != y)) if len(y) else 0.0
    return {"examples": int(len(y)), "error": error, "accuracy": 1.0 - error, "labels": list(labels),
            "confusion": confusion_matrix(y, pred, len(labels)).tolist()}
