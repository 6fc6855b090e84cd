"""Scoring sentences: how probable a model finds each one, token by token; ranking candidates.

    lm = load("runs/ptb")                                    # unroll.use.engine.load
    s = score(lm, ["the company said it would", "it would company the said"])
    s[0].logprob, s[0].perplexity, list(zip(s[0].tokens, s[0].logprobs))
    rank(lm, [["a cat sat", "cat a sat"], ["..."]], normalize=True)

Each line is one unit, tokenized as in training with its markers (:func:`unroll.use.engine.unit_tokens`)
and fed after what a unit followed in training (:func:`unroll.use.engine.start_tokens`). For a PTB
model, "the cat sat" is read as ``<eos> the cat sat`` and scored as
``log p(the | <eos>) + log p(cat | <eos> the) + log p(sat | ...) + log p(<eos> | ... sat)``: 4
tokens, the ``<eos>`` included, as PTB perplexities count them. A character model scores the line's
characters and its closing newline, after a newline. Log-probabilities are natural logs; a
sentence's perplexity is ``exp(-logprob / count)``.

Sentences are scored in padded batches, sorted by length so that little is padding: one forward
pass per batch, each sentence's log-probabilities read up to its own length (padding is at the
end, and a recurrent model's outputs never depend on later inputs, so padding changes nothing).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unroll.data import sentence_batches
from unroll.errors import UnrollError
from unroll.text import UNK
from unroll.use.engine import LoadedModel, UnknownWordWarning, check_tokens, describe, start_tokens, unit_tokens


@dataclass
class SentenceScore:
    """One sentence's score. ``tokens`` are the predicted tokens as written (a word out of the
    vocabulary is shown as itself; the model read ``<unk>``, counted in ``unknown``); ``context``
    the tokens given first and not predicted."""

    text: str
    context: list[str]
    tokens: list[str]
    logprobs: list[float]  # natural log of each token's probability given all before it
    unknown: int = 0

    @property
    def logprob(self) -> float:
        return float(sum(self.logprobs))

    @property
    def count(self) -> int:
        return len(self.tokens)

    @property
    def perplexity(self) -> float | None:
        return math.exp(-self.logprob / self.count) if self.count else None

    def key(self, normalize: bool = False) -> float:
        """What ranking sorts by (higher is better): the log-probability, or per token."""
        if not normalize:
            return self.logprob
        return self.logprob / self.count if self.count else -math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "logprob": self.logprob, "count": self.count, "perplexity": self.perplexity,
            "unk": self.unknown, "tokens": self.tokens, "logprobs": self.logprobs,
        }


def score(
    lm: LoadedModel, sentences: Sequence[str], batch_size: int = 64, labels: Sequence[str] | None = None
) -> list[SentenceScore]:
    """Score each sentence (one line of text each), ``batch_size`` sentences per forward pass.

    Words not in the vocabulary are read as ``<unk>`` (one :class:`UnknownWordWarning` for all);
    characters never seen in training raise :class:`UnrollError` naming the sentence by its
    label (default ``sentence N``).
    """
    labels = labels if labels is not None else [f"sentence {i + 1}" for i in range(len(sentences))]
    return _score(lm, sentences, labels, batch_size)


def rank(
    lm: LoadedModel, groups: Sequence[Sequence[str]], normalize: bool = False, batch_size: int = 64
) -> list[list[tuple[int, SentenceScore]]]:
    """Each group of candidates ordered best first, as ``(index in the group, score)``.

    Best is the highest log-probability, or with ``normalize`` the highest log-probability per
    token (so longer candidates are not penalized for their length). Ties keep the input order.
    All candidates of all groups are scored together, in batches.
    """
    flat = [c for g in groups for c in g]
    where = [f"group {i + 1}, candidate {j + 1}" for i, g in enumerate(groups) for j in range(len(g))]
    scores = iter(_score(lm, flat, where, batch_size))
    ranked = []
    for g in groups:
        scored = [(j, next(scores)) for j in range(len(g))]
        ranked.append(sorted(scored, key=lambda js: -js[1].key(normalize)))
    return ranked


def parse_groups(text: str) -> list[list[str]]:
    """The ``--rank`` input: one candidate a line, groups separated by blank lines.

    ::

        the cat sat on the mat        <- group 1
        the cat sat on the hat
                                      <- a blank line (or several) ends a group
        a dog barked                  <- group 2
        a dog barks
    """
    groups: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def _score(lm: LoadedModel, sentences: Sequence[str], where: Sequence[str], batch_size: int) -> list[SentenceScore]:
    if batch_size < 1:
        raise UnrollError(f"batch size must be at least 1, got {batch_size}")
    spec, vocab = lm.spec, lm.vocab
    start = start_tokens(spec, vocab)
    seqs, parts, missing = [], [], []
    for text, w in zip(sentences, where):
        tokens = unit_tokens(spec, vocab, text)
        oov = check_tokens(tokens, spec, vocab, w)
        missing += oov
        tokens = start + tokens
        n_context = 1 if tokens else 0  # the start marker, or the first token when there is none
        seqs.append(vocab.encode(tokens))
        parts.append((tokens[:n_context], tokens[n_context:], len(oov)))
    if missing:
        warnings.warn(f"{len(missing)} word(s) not in the vocabulary were scored as {UNK}: {describe(missing)}",
                      UnknownWordWarning, stacklevel=3)
    log_probs = _log_probs(lm, seqs, batch_size)
    return [SentenceScore(text, context, tokens, lp.tolist(), unknown)
            for text, (context, tokens, unknown), lp in zip(sentences, parts, log_probs)]


def _log_probs(lm: LoadedModel, seqs: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """``log p(seq[t] | seq[:t])`` for t >= 1 of every sequence, in padded batches."""
    out = [np.zeros(0) for _ in seqs]
    scored = [i for i, s in enumerate(seqs) if len(s) > 1]
    for batch in sentence_batches([seqs[i] for i in scored], batch_size, sort="length"):
        inputs, targets, _ = batch.lm()
        lp = lm.engine.target_log_probs(np.ascontiguousarray(inputs), np.ascontiguousarray(targets))
        for col, (k, n) in enumerate(zip(batch.index.tolist(), batch.lengths.tolist())):
            out[scored[k]] = lp[: n - 1, col].copy()
    return out
