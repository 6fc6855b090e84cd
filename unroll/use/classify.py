"""Using a classifier: class probabilities (the tutorial's ``pred_probs``), error rate, accuracy and
confusion matrix on labeled data, and predictions for raw text, tokenized exactly as in training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unroll.data.batching import sentence_batches
from unroll.errors import DataError, UnrollError
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
    pred = probs.argmax(1)
    error = float(np.mean(pred != y)) if len(y) else 0.0
    return {"examples": int(len(y)), "error": error, "accuracy": 1.0 - error, "labels": list(labels),
            "confusion": confusion_matrix(y, pred, len(labels)).tolist()}


def run_directory(directory: str | os.PathLike, last: bool = False) -> Path:
    """A checkpoint, or a training run whose ``best/`` checkpoint is meant (unless ``last``)."""
    directory = Path(directory)
    if not last and (directory / "best" / "model.safetensors").is_file():
        return directory / "best"
    return directory


def evaluate_classifier(
    directory: str | os.PathLike,
    data: str | None = None,
    split: str = "test",
    batch_size: int = 64,
    precision: str = "fp32",
    device: str | None = None,
    encoding: str | None = None,
) -> dict[str, Any]:
    """Error rate, accuracy and confusion matrix of a classifier checkpoint on labeled data.

    ``data``: imdb or a folder with train/valid/test sub-folders (``split`` is read; train and
    valid are the training run's, held out with its seed and ``valid_portion``), or a folder per
    class / a CSV/TSV file (all of it is read). Default: the data the model was trained on.
    Examples are cut to ``maxlen`` as in training, never dropped. ``encoding``: of ``data``'s
    files (default UTF-8; for the training data, the encoding training read it with).
    """
    from unroll.data.labeled import encode_docs, label_ids, read_labeled, tokenize_texts, training_splits
    from unroll.models import resolve_device
    from unroll.models.classifier import load_classifier

    model, ckpt = load_classifier(directory, device=resolve_device(device))
    cfg = ckpt.extra.get("train", {})
    source = data or cfg.get("data")
    if not source:
        raise UnrollError(f"{directory}: the checkpoint does not say what it was trained on; pass --data")
    encoding = encoding or (None if data else cfg.get("encoding"))
    raw = read_labeled(source, cfg.get("text_column", "text"), cfg.get("label_column", "label"), encoding)
    if "all" in raw and data is not None:
        examples, name = raw["all"], "all"
    else:
        splits = training_splits(raw, cfg.get("valid_portion", 0.05), cfg.get("seed", 123))
        if split not in splits:
            raise DataError(f"{source}: has no {split} split (it has {', '.join(splits)}); choose another --split")
        examples, name = splits[split], split
    seqs = encode_docs(tokenize_texts([t for t, _ in examples], ckpt.text), ckpt.vocab, cfg.get("maxlen"),
                       cfg.get("overlong", "drop"))
    y = label_ids(examples, ckpt.labels, f"{source} ({name})")
    report = classification_report(predict_probs(model, seqs, batch_size, precision), y, ckpt.labels)
    return {"split": name, "data": str(source), "checkpoint": str(directory), **report}


def predict_texts(model: torch.nn.Module, ckpt: Any, texts: list[str], batch_size: int = 64) -> list[dict[str, Any]]:
    """For each text: the most probable label, its probability, and every class's probability.

    ``model, ckpt = unroll.models.classifier.load_classifier(DIR)`` gives the first two.
    """
    from unroll.data.labeled import encode_docs, tokenize_texts

    cfg = ckpt.extra.get("train", {})
    seqs = encode_docs(tokenize_texts(texts, ckpt.text), ckpt.vocab, cfg.get("maxlen"), cfg.get("overlong", "drop"))
    probs = predict_probs(model, seqs, batch_size)
    return [{"label": ckpt.labels[int(p.argmax())], "prob": float(p.max()),
             "probs": {name: float(q) for name, q in zip(ckpt.labels, p)}} for p in probs]
