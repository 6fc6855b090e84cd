"""A tiny labeled CSV for the classifier tests: learnable only by reading one word."""

from __future__ import annotations

import random
from pathlib import Path

FILLER = "the movie film plot actor scene story was it and a of to is this".split()


def synthetic_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Filler words with one "good" (pos) or "bad" (neg) somewhere: learnable only by reading it."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["good", "bad"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 12))]
        words.insert(rng.randint(0, len(words)), label)
        rows.append(f"{' '.join(words)},{'pos' if label == 'good' else 'neg'}")
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
