"""Perplexity, bits per character and byte, and word perplexity of a checkpoint, on either
engine, tokenized as its training was (the protocol and the numbers: :mod:`unroll.evaluate`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from unroll.errors import CheckpointError, DataError, UnrollError
from unroll.evaluate import evaluate
from unroll.use.engine import ENGINES


def evaluate_checkpoint(
    directory: str | os.PathLike,
    data: str | None = None,
    split: str = "valid",
    batch_size: int | None = None,
    bptt: int = 35,
    precision: str = "fp32",
    device: str | None = None,
    encoding: str | None = None,
    engine: str = "torch",
) -> dict[str, Any]:
    """Evaluate a checkpoint directory, tokenizing exactly as its training did.

    ``data``: a dataset name or folder (its ``split`` is read), a text file (all of it is read),
    or None for the data the model was trained on. ``batch_size`` defaults to the run's
    ``test_batch_size`` for test and ``eval_batch_size`` otherwise. ``encoding``: of ``data``
    (default UTF-8; for the training data, the encoding training read it with). ``engine``:
    ``torch`` (on ``device``, float32) or ``numpy`` (the reference engine, float64).
    """
    from unroll.data import load_corpus, read_text
    from unroll.text import Vocab
    from unroll.text.spec import text_counts

    model, ckpt = _load(directory, engine, device)
    if ckpt.text is None:
        raise CheckpointError(f"{directory}: config.json has no 'text' settings; cannot tokenize like training did")
    spec, vocab = ckpt.text, Vocab.from_dict(ckpt.vocab)
    train_cfg = ckpt.extra.get("train", {})
    source = data or train_cfg.get("data")
    if not source:
        raise UnrollError(f"{directory}: the checkpoint does not say what it was trained on; pass --data NAME|PATH")
    encoding = encoding or (None if data else train_cfg.get("encoding"))
    if data is not None and Path(data).is_file():
        text = read_text(data, encoding)
        ids, counts, name = spec.encode(text, vocab), text_counts(text), str(data)
    else:
        corpus = load_corpus(source, spec=spec, vocab=vocab, encoding=encoding)
        if split not in corpus.splits:
            raise DataError(f"{source}: has no {split} split (it has {', '.join(corpus.splits)}); choose another --split")
        ids, counts, name = corpus.splits[split], corpus.counts[split], split
    if batch_size is None:
        batch_size = int(train_cfg.get("test_batch_size" if split == "test" else "eval_batch_size", 10))
    res = evaluate(model, ids, batch_size, bptt, precision, counts)
    return {**res, "split": name, "batch_size": batch_size, "data": str(source), "level": spec.level,
            "checkpoint": str(directory), "engine": engine}


def _load(directory: str | os.PathLike, engine: str, device: str | None) -> tuple[Any, Any]:
    """``(model, checkpoint)`` in the chosen engine."""
    if engine == "numpy":
        from unroll.reference import load_model as load_numpy

        return load_numpy(directory, dtype=np.float64)
    if engine != "torch":
        raise UnrollError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    from unroll.models import load_model, resolve_device

    return load_model(directory, device=resolve_device(device))
