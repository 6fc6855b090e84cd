"""Perplexity of a language model over a whole token stream, as the papers report it.

The stream is cut into ``batch_size`` contiguous columns (``batchify``) and read window by
window with the hidden state carried from each window to the next, so every token but the
first of each column is predicted with its full left context. ``batch_size=1`` reads the
stream as one sequence, like the TensorFlow PTB tutorial's test (only the very first token is
never predicted). The window length ``bptt`` changes the speed, not the result.

The same protocol runs on both engines: a ``torch.nn.Module`` goes to :mod:`unroll.evaluate.torch_lm`;
anything else is read as a NumPy reference model (``model.loss(inputs, targets, mask, state)``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from unroll.data import batchify, iter_bptt
from unroll.errors import DataError, UnrollError

LN2 = math.log(2.0)

Batch = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def windows(ids: np.ndarray, batch_size: int, bptt: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(x [T, B], y [T, B])`` windows over ``ids`` cut into ``batch_size`` columns."""
    data = batchify(np.asarray(ids, dtype=np.int64), batch_size)
    if data.shape[0] < 2:
        raise DataError(
            f"{len(ids)} tokens are too few to evaluate with batch size {batch_size}; use a smaller --batch-size"
        )
    return ((x, y) for _, x, y in iter_bptt(data, bptt))


def metrics(total: float, count: int) -> dict[str, float]:
    """Per-token figures from a summed cross-entropy: ``loss`` (nats per predicted token),
    ``ppl`` = exp(loss), ``bits_per_token`` = loss / ln 2, ``nll`` (the sum) and ``tokens``
    (the predicted ones). Bits per token are bits per character only when a token is one."""
    loss = total / count
    return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "bits_per_token": loss / LN2, "nll": total,
            "tokens": count}


def per_text(res: dict[str, float], stream_tokens: int, counts: Mapping[str, int]) -> dict[str, float]:
    """``res`` with the figures that compare across levels, from what the evaluated text holds
    (``counts``: chars, bytes, words; :func:`unroll.text.spec.line_counts` says how they are counted):

    - ``bpc`` = NLL / (ln 2 x characters), ``bpb`` = NLL / (ln 2 x UTF-8 bytes);
    - ``word_ppl`` = exp(NLL / words), words counted on the text, one per line end included, so
      the count is the same at every level.

    NLL is the whole stream's: the mean loss times every token of it. The stream's first token
    (of each column) has no left context and is not predicted, so its share is the mean's; with
    batch 1 that is one token of the whole split.
    """
    nll = res["loss"] * stream_tokens
    out = dict(res, chars=counts["chars"], bytes=counts["bytes"], words=counts["words"])
    out["bpc"] = nll / (LN2 * counts["chars"])
    out["bpb"] = nll / (LN2 * counts["bytes"])
    out["word_ppl"] = math.exp(min(nll / counts["words"], 700.0))
    return out


def nll_sum(model: Any, batches: Iterable[Batch], carry_state: bool = False) -> tuple[float, float]:
    """``(summed cross-entropy, unmasked tokens)`` of a NumPy model over ``batches``; with
    ``carry_state`` each batch starts from the previous one's final state, else from zero."""
    total, count, state = 0.0, 0.0, None
    for inputs, targets, mask in batches:
        loss, final = model.loss(inputs, targets, mask, state if carry_state else None)
        n = float(np.size(targets) if mask is None else np.sum(mask))
        total, count, state = total + loss * n, count + n, final
    return total, count


def mean_loss(model: Any, batches: Iterable[Batch], carry_state: bool = False) -> float:
    """Mean cross-entropy per unmasked token over all ``batches`` (token-weighted, not per batch)."""
    total, count = nll_sum(model, batches, carry_state)
    return total / count


def evaluate(
    model: Any, ids: np.ndarray, batch_size: int = 10, bptt: int = 35, precision: str = "fp32",
    counts: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Mean cross-entropy per predicted token over ``ids`` with the state carried (see
    :func:`metrics`); given the ``counts`` of the text ``ids`` encode (``Corpus.counts[split]``,
    ``unroll.text.spec.text_counts``), also bits per character and byte and word perplexity
    (:func:`per_text`).

    ``precision`` (fp32, bf16, auto) applies to a torch model; the NumPy engine computes in its
    own dtype (``auto`` is that dtype; ``bf16`` is an error).
    """
    torch = sys.modules.get("torch")  # a torch model can only exist once torch is imported
    if torch is not None and isinstance(model, torch.nn.Module):
        from unroll.evaluate.torch_lm import evaluate_torch

        res = evaluate_torch(model, ids, batch_size, bptt, precision)
    else:
        if precision == "bf16":
            raise UnrollError("the NumPy engine has no bf16 precision; use fp32 (it computes in the model's dtype)")
        total, count = nll_sum(model, ((x, y, None) for x, y in windows(ids, batch_size, bptt)), carry_state=True)
        res = metrics(total, int(count))
    return res if counts is None else per_text(res, len(ids), counts)
