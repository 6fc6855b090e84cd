"""The vocabulary: a fixed, ordered list of token strings and their integer ids."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unroll.errors import DataError
from unroll.io import atomic_write_json

UNK, BOS, EOS, PAD = "<unk>", "<bos>", "<eos>", "<pad>"
SPECIALS = (UNK, BOS, EOS, PAD)


class Vocab:
    """Token <-> id. ``itos[i]`` is the token with id ``i``; ``stoi`` is the inverse.

    Out-of-vocabulary tokens encode to ``<unk>`` when the vocabulary has one; a vocabulary
    without ``<unk>`` (nothing was ever left out) rejects them with a :class:`DataError`.
    """

    def __init__(self, itos: Sequence[str]):
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dupes = sorted(t for t, n in Counter(self.itos).items() if n > 1)
            raise DataError(f"vocabulary lists tokens more than once: {dupes[:5]}")
        self.unk_id: int | None = self.stoi.get(UNK)

    @classmethod
    def build(
        cls,
        counts_or_tokens: Mapping[str, int] | Iterable[str],
        max_size: int | None = None,
        min_freq: int = 1,
        specials: Sequence[str] = (),
    ) -> "Vocab":
        """Keep the most frequent tokens: at most ``max_size`` in all, each seen ``min_freq`` times.

        Order: ``specials`` first (as given), then by count, most frequent first, ties broken
        lexically, so the same data always gives the same ids. ``<unk>`` is added (first) only
        when some token is left out and needs somewhere to go: specials only when used.
        """
        counts = counts_or_tokens if isinstance(counts_or_tokens, Mapping) else Counter(counts_or_tokens)
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        specials = list(dict.fromkeys(specials))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

        def keep(specials: list[str]) -> list[str]:
            room = None if max_size is None else max_size - len(specials)
            if room is not None and room < 0:
                raise ValueError(f"max_size={max_size} leaves no room for the specials {specials}")
            chosen = [t for t, n in ranked if n >= min_freq and t not in specials]
            return chosen if room is None else chosen[:room]

        kept = keep(specials)
        if len(kept) + sum(t in counts for t in specials) < len(counts) and UNK not in specials:
            specials = [UNK, *specials]
            kept = keep(specials)
        return cls(specials + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token`` (``<unk>``'s id for unknown tokens)."""
        i = self.stoi.get(token, self.unk_id)
        if i is None:
            raise DataError(f"token {token!r} is not in the vocabulary, which has no {UNK}")
        return i

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[:5]})"

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Token strings -> int64 ids (unknown tokens -> ``<unk>``)."""
        stoi, unk = self.stoi, self.unk_id
        tokens = tokens if isinstance(tokens, list) else list(tokens)
        if unk is None:
            missing = next((t for t in tokens if t not in stoi), None)
            if missing is not None:
                raise DataError(f"token {missing!r} is not in the vocabulary, which has no {UNK}")
        return np.fromiter((stoi.get(t, unk) for t in tokens), dtype=np.int64, count=len(tokens))

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Ids -> token strings."""
        itos = self.itos
        return [itos[i] for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist()]

    def stats(self, tokens: Iterable[str] | np.ndarray) -> dict[str, Any]:
        """How well this vocabulary covers ``tokens`` (strings, or ids from :meth:`encode`).

        ``oov_rate`` is the fraction of tokens that end up as ``<unk>`` (including a literal
        ``<unk>`` in the text, as PTB has); ``least_frequent`` is the kept, non-special token
        seen least often in ``tokens`` (on the training data: the word-RNN tutorial's line
        "the least frequent word in our vocabulary is ... and appeared N times").
        """
        if isinstance(tokens, np.ndarray) and tokens.dtype.kind in "iu":
            ids, types = tokens.reshape(-1), None
        else:
            tokens = tokens if isinstance(tokens, list) else list(tokens)
            ids, types = self.encode(tokens), len(set(tokens))
        n = int(ids.size)
        per_id = np.bincount(ids, minlength=len(self)) if n else np.zeros(len(self), np.int64)
        unk = int(per_id[self.unk_id]) if self.unk_id is not None else 0
        candidates = [i for i, t in enumerate(self.itos) if t not in SPECIALS]
        least = None
        if candidates:
            # Last among the rarest, so a frequency-ordered vocabulary reports its tail.
            i = max(candidates, key=lambda i: (-per_id[i], i))
            least = {"token": self.itos[i], "count": int(per_id[i])}
        return {
            "size": len(self),
            "tokens": n,
            "types": types if types is not None else int(np.count_nonzero(per_id)),
            "unk": unk,
            "oov_rate": unk / n if n else 0.0,
            "coverage": 1.0 - unk / n if n else 1.0,
            "least_frequent": least,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"itos": list(self.itos)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Vocab":
        itos = d.get("itos") if isinstance(d, Mapping) else None
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise DataError("vocabulary JSON must be an object with an 'itos' list of strings")
        return cls(itos)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such vocabulary file")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a vocabulary JSON file ({e})") from None
        try:
            return cls.from_dict(d)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
