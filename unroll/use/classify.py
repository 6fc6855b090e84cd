"""Using a classifier checkpoint: error rate, accuracy and confusion matrix on labeled data, and
predictions for raw text, tokenized exactly as in training (the numbers: :mod:`unroll.evaluate.classify`)."""

from __future__ import annotations

import os
from typing import Any

import torch

from unroll.classify_config import ClassifyConfig
from unroll.errors import DataError, UnrollError
from unroll.evaluate.classify import classification_report, predict_probs
from unroll.settings import canonical_names


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
    valid are the training run's, held out with its seed and ``valid_fraction``), or a folder per
    class / a CSV/TSV file (all of it is read). Default: the data the model was trained on.
    Examples are cut to ``max_length`` as in training, never dropped. ``encoding``: of ``data``'s
    files (default UTF-8; for the training data, the encoding training read it with).
    """
    from unroll.data.labeled import encode_docs, label_ids, read_labeled, tokenize_texts, training_splits
    from unroll.models import resolve_device
    from unroll.models.classifier import load_classifier

    model, ckpt = load_classifier(directory, device=resolve_device(device))
    cfg = canonical_names(ClassifyConfig, ckpt.extra.get("train", {}))  # a checkpoint may use the tutorial's names
    source = data or cfg.get("data")
    if not source:
        raise UnrollError(f"{directory}: the checkpoint does not say what it was trained on; pass --data")
    encoding = encoding or (None if data else cfg.get("encoding"))
    raw = read_labeled(source, cfg.get("text_column", "text"), cfg.get("label_column", "label"), encoding)
    if "all" in raw and data is not None:
        examples, name = raw["all"], "all"
    else:
        splits = training_splits(raw, cfg.get("valid_fraction", 0.05), cfg.get("seed", 123))
        if split not in splits:
            raise DataError(f"{source}: has no {split} split (it has {', '.join(splits)}); choose another --split")
        examples, name = splits[split], split
    seqs = encode_docs(tokenize_texts([t for t, _ in examples], ckpt.text), ckpt.vocab, cfg.get("max_length"),
                       cfg.get("overlong", "drop"))
    y = label_ids(examples, ckpt.labels, f"{source} ({name})")
    report = classification_report(predict_probs(model, seqs, batch_size, precision), y, ckpt.labels)
    return {"split": name, "data": str(source), "checkpoint": str(directory), **report}


def predict_texts(model: torch.nn.Module, ckpt: Any, texts: list[str], batch_size: int = 64) -> list[dict[str, Any]]:
    """For each text: the most probable label, its probability, and every class's probability.

    ``model, ckpt = unroll.models.classifier.load_classifier(DIR)`` gives the first two.
    """
    from unroll.data.labeled import encode_docs, tokenize_texts

    cfg = canonical_names(ClassifyConfig, ckpt.extra.get("train", {}))  # a checkpoint may use the tutorial's names
    seqs = encode_docs(tokenize_texts(texts, ckpt.text), ckpt.vocab, cfg.get("max_length"), cfg.get("overlong", "drop"))
    probs = predict_probs(model, seqs, batch_size)
    return [{"label": ckpt.labels[int(p.argmax())], "prob": float(p.max()),
             "probs": {name: float(q) for name, q in zip(ckpt.labels, p)}} for p in probs]
