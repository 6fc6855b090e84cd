"""Perplexity of a language model over a whole token stream, as the papers report it.

The stream is cut into ``batch_size`` contiguous columns (``batchify``) and read window by
window with the hidden state carried from each window to the next, so every token but the
first of each column is predicted with its full left context. ``batch_size=1`` reads the
stream as one sequence, like the TensorFlow PTB tutorial's test (only the very first token is
never predicted). The window length ``bptt`` changes the speed, not the result.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unroll.data import batchify, iter_bptt
from unroll.errors import CheckpointError, DataError, UnrollError
from unroll.models.device import resolve_precision

LN2 = math.log(2.0)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    ids: np.ndarray,
    batch_size: int = 10,
    bptt: int = 35,
    precision: str = "fp32",
) -> dict[str, float]:
    """Mean cross-entropy per predicted token over ``ids`` with the state carried.

    Returns ``{"loss": nats per token, "ppl": exp(loss), "bpc": loss / ln 2, "tokens": count}``
    (``bpc`` is bits per character for a character model, bits per token otherwise).
    """
    data = batchify(np.asarray(ids, dtype=np.int64), batch_size)
    if data.shape[0] < 2:
        raise DataError(
            f"{len(ids)} tokens are too few to evaluate with batch size {batch_size}; use a smaller --batch-size"
        )
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision, device) == "bf16"
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    state = None
    try:
        for _, x, y in iter_bptt(data, bptt):
            x = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            y = torch.from_numpy(np.ascontiguousarray(y)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits, state = model(x, state)
            if logits.dtype in (torch.bfloat16, torch.float16):
                logits = logits.float()  # the loss in fp32 (or the model's float64)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
            count += y.numel()
    finally:
        model.train(was_training)
    loss = total.item() / count
    return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "bpc": loss / LN2, "tokens": count}


def evaluate_checkpoint(
    directory: str | os.PathLike,
    data: str | None = None,
    split: str = "valid",
    batch_size: int | None = None,
    bptt: int = 35,
    precision: str = "fp32",
    device: str | None = None,
    encoding: str | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint directory, tokenizing exactly as its training did.

    ``data``: a dataset name or folder (its ``split`` is read), a text file (all of it is read),
    or None for the data the model was trained on. ``batch_size`` defaults to the run's
    ``test_batch_size`` for test and ``eval_batch_size`` otherwise. ``encoding``: of ``data``
    (default UTF-8; for the training data, the encoding training read it with).
    """
    from unroll.data import load_corpus, read_text
    from unroll.models import load_model, resolve_device
    from unroll.text import TextSpec, Vocab

    model, ckpt = load_model(directory, device=resolve_device(device))
    if "text" not in ckpt.extra:
        raise CheckpointError(f"{directory}: config.json has no 'text' settings; cannot tokenize like training did")
    spec, vocab = TextSpec.from_dict(ckpt.extra["text"]), Vocab.from_dict(ckpt.vocab)
    train_cfg = ckpt.extra.get("train", {})
    source = data or train_cfg.get("data")
    if not source:
        raise UnrollError(f"{directory}: the checkpoint does not say what it was trained on; pass --data NAME|PATH")
    encoding = encoding or (None if data else train_cfg.get("encoding"))
    if data is not None and Path(data).is_file():
        ids, name = spec.encode(read_text(data, encoding), vocab), str(data)
    else:
        corpus = load_corpus(source, spec=spec, vocab=vocab, encoding=encoding)
        if split not in corpus.splits:
            raise DataError(f"{source}: has no {split} split (it has {', '.join(corpus.splits)}); choose another --split")
        ids, name = corpus.splits[split], split
    if batch_size is None:
        batch_size = int(train_cfg.get("test_batch_size" if split == "test" else "eval_batch_size", 10))
    res = evaluate(model, ids, batch_size, bptt, precision)
    return {**res, "split": name, "batch_size": batch_size, "data": str(source), "level": spec.level,
            "checkpoint": str(directory)}
