"""What the playground's API answers, as JSON-ready dicts: model descriptions, scores with their
surprisal colours and alternatives, and two models compared on the same lines.

Plain functions of loaded models and text, with no web framework in them: the app runs them in a
worker thread under the model's lock, and the tests can call them directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from unroll.text import levels
from unroll.use.alternatives import alternatives
from unroll.use.engine import LoadedModel, NumpyEngine
from unroll.use.score import SentenceScore, score
from unroll.use.surprisal import bits, css_colour


def model_info(name: str, lm: LoadedModel) -> dict[str, Any]:
    cfg = lm.model.cfg
    return {
        "name": name, "engine": "numpy" if isinstance(lm.engine, NumpyEngine) else "torch",
        "level": lm.spec.level, "joiner": joiner(lm), "vocab_size": len(lm.vocab),
        "cell": cfg.cell, "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size,
    }


def joiner(lm: LoadedModel) -> str:
    """What goes between tokens when they are shown: a space for words, nothing for characters."""
    return levels.get(lm.spec.level).joiner


def lines_of(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of ``text`` with their 1-based numbers, as ``unroll score`` reads a file."""
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def scored(lm: LoadedModel, lines: Sequence[tuple[int, str]], top: int) -> dict[str, Any]:
    """Every line scored token by token: log-probability, bits, probability, colour (the scale of
    ``score --html``) and the ``top`` most likely tokens at that position."""
    texts = [t for _, t in lines]
    scores = score(lm, texts, labels=[f"line {n}" for n, _ in lines])
    alts = alternatives(lm, texts, top)
    sentences = []
    for (n, _), s, alt in zip(lines, scores, alts):
        tokens = [{"token": t, "logprob": lp, "prob": math.exp(lp), "bits": bits(lp), "colour": css_colour(bits(lp)),
                   "alternatives": [{"token": a, "prob": p} for a, p in at]}
                  for t, lp, at in zip(s.tokens, s.logprobs, alt)]
        sentences.append({"line": n, **_totals(s), "text": s.text, "context": s.context, "tokens": tokens})
    return {"joiner": joiner(lm), **_sum(scores), "sentences": sentences}


def compared(names: Sequence[str], models: Sequence[LoadedModel], scores: Sequence[list[SentenceScore]],
             lines: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """Models A and B on the same lines: per-line totals always, per-token differences
    ``logprob B - logprob A`` only where both read the line as the same tokens (otherwise the
    positions do not correspond, and the answer says so instead of pairing them)."""
    a, b = scores
    out = []
    for (n, text), sa, sb in zip(lines, a, b):
        same = sa.context == sb.context and sa.tokens == sb.tokens
        tokens = [{"token": t, "a": la, "b": lb, "diff": lb - la}
                  for t, la, lb in zip(sa.tokens, sa.logprobs, sb.logprobs)] if same else None
        out.append({"line": n, "text": text, "a": _totals(sa), "b": _totals(sb), "diff": sb.logprob - sa.logprob,
                    "same_tokens": same, "tokens": tokens})
    differ = [r["line"] for r in out if not r["same_tokens"]]
    message = None
    if differ:
        shown = ", ".join(map(str, differ[:10])) + (" ..." if len(differ) > 10 else "")
        message = (f"{names[0]} ({models[0].spec.level}) and {names[1]} ({models[1].spec.level}) tokenize "
                   f"line(s) {shown} differently, so their tokens do not correspond one to one: only the "
                   f"per-line totals (log-probability of the whole line) are compared there")
    return {"models": list(names), "joiners": [joiner(m) for m in models], "a": _sum(a), "b": _sum(b),
            "same_tokens": not differ, "message": message, "lines": out}


def _totals(s: SentenceScore) -> dict[str, Any]:
    return {"logprob": s.logprob, "count": s.count, "perplexity": s.perplexity, "unk": s.unknown}


def _sum(scores: Sequence[SentenceScore]) -> dict[str, Any]:
    total, count = sum(s.logprob for s in scores), sum(s.count for s in scores)
    return {"logprob": total, "count": count, "perplexity": math.exp(-total / count) if count else None}
