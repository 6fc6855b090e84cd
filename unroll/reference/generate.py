"""Sampling sentences from a reference-engine model, as the word-RNN tutorial's ``generate_sentence``.

Start from ``<bos>``, feed each sampled token back in (carrying the state, so each step costs one
step), stop at ``<eos>``. ``<unk>`` is never emitted: the tutorial re-samples when it draws it,
which is the same distribution as zeroing its probability and renormalizing, done here in one
draw. Sentences shorter than ``min_length`` or longer than ``max_length`` are thrown away and
drawn again, as the tutorial does.
"""

from __future__ import annotations

import numpy as np

from unroll.errors import UnrollError
from unroll.reference.model import LanguageModel, softmax


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0, banned: int | None = None) -> np.ndarray:
    """``softmax(logits / temperature)`` over ``[V]`` with ``banned`` (e.g. ``<unk>``) removed.

    ``temperature`` 0 is greedy decoding: all mass on the most likely allowed token.
    """
    logits = np.array(logits, dtype=np.float64)
    if banned is not None:
        logits[banned] = -np.inf
    if temperature < 0:
        raise UnrollError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        p = np.zeros_like(logits)
        p[np.argmax(logits)] = 1.0
        return p
    return softmax(logits / temperature)


def sample_sentence(
    model: LanguageModel,
    bos_id: int,
    eos_id: int,
    *,
    rng: np.random.Generator,
    unk_id: int | None = None,
    temperature: float = 1.0,
    min_length: int = 0,
    max_length: int = 100,
    max_tries: int = 100,
) -> list[int]:
    """The token ids of one sampled sentence, without ``<bos>`` and ``<eos>``."""
    for _ in range(max_tries):
        ids = _sample_once(model, bos_id, eos_id, unk_id, temperature, max_length, rng)
        if ids is not None and len(ids) >= min_length:
            return ids
    raise UnrollError(
        f"no sentence of {min_length} to {max_length} tokens in {max_tries} tries; "
        "lower min_length, raise max_length or the temperature"
    )


def _sample_once(
    model: LanguageModel,
    bos_id: int,
    eos_id: int,
    unk_id: int | None,
    temperature: float,
    max_length: int,
    rng: np.random.Generator,
) -> list[int] | None:
    """One draw from ``<bos>``; None when it runs past ``max_length`` tokens."""
    ids: list[int] = []
    token, state = bos_id, None
    while len(ids) <= max_length:
        logits, state = model.forward(np.array([[token]]), state)
        p = next_token_distribution(logits[0, 0], temperature, banned=unk_id)
        token = int(rng.choice(len(p), p=p))
        if token == eos_id:
            return ids
        ids.append(token)
    return None
