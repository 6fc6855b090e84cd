"""What else the model expected: the most likely tokens at each position a sentence is scored at.

    lm = load("runs/ptb")
    alternatives(lm, ["the cat sat"], k=3)[0][1]   # [("dog", 0.21), ("cat", 0.08), ...] before "cat"

Positions are those of :func:`unroll.use.score.score`: one per predicted token, the closing marker
included, each from the distribution given every token before it (the line read as in training,
after its start marker). The distribution is the model's full one, normalized (``log_probs``),
not a sampling distribution: no temperature, no tokens banned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unroll.errors import UnrollError
from unroll.use.engine import LoadedModel, check_tokens, start_tokens, unit_tokens


def alternatives(lm: LoadedModel, sentences: Sequence[str], k: int = 5) -> list[list[list[tuple[str, float]]]]:
    """For each sentence and each predicted token, the ``k`` most likely tokens with their
    probabilities, most likely first (ties by vocabulary order).

    One forward pass per sentence: the full distributions are ``[T, V]`` float64, too large to
    batch for long texts with big vocabularies.
    """
    if k < 1:
        raise UnrollError(f"the number of alternatives must be at least 1, got {k}")
    spec, vocab = lm.spec, lm.vocab
    start = start_tokens(spec, vocab)
    out = []
    for i, text in enumerate(sentences):
        tokens = unit_tokens(spec, vocab, text)
        check_tokens(tokens, spec, vocab, f"sentence {i + 1}")
        ids = vocab.encode(start + tokens)
        if len(ids) < 2:
            out.append([])
            continue
        lp = lm.engine.log_probs(np.ascontiguousarray(ids[:-1, None]))[:, 0]
        out.append([_top(row, k, vocab.itos) for row in lp])
    return out


def _top(log_probs: np.ndarray, k: int, itos: Sequence[str]) -> list[tuple[str, float]]:
    k = min(k, len(log_probs))
    best = np.argpartition(-log_probs, k - 1)[:k]
    best = best[np.lexsort((best, -log_probs[best]))]
    return [(itos[j], float(np.exp(log_probs[j]))) for j in best.tolist()]
