"""IMDB reviews (Maas et al. 2011) as (text, label) examples, read straight from the tar.gz.

Labels: 1 positive (rating 7-10), 0 negative (rating 1-4), -1 unlabeled (``unsup``).
"""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from unroll.data.corpus import length_summary
from unroll.data.download import fetch
from unroll.data.registry import IMDB
from unroll.errors import DataError
from unroll.text import UNK, Vocab, get_tokenizer

IMDB_SPLITS = ("train", "test", "unsup")
_MEMBER = re.compile(r"(?:\./)?aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt")
_LABELS = {"neg": 0, "pos": 1, "unsup": -1}


def imdb_examples(split: str = "train", strip_html: bool = True) -> list[tuple[str, int]]:
    """The reviews of ``split`` (``train``, ``test`` or ``unsup``), in a fixed order: negative
    then positive, each by review id. ``strip_html`` turns the ``<br />`` tags into spaces."""
    if split not in IMDB_SPLITS:
        raise DataError(f"unknown IMDB split {split!r}; choose one of {', '.join(IMDB_SPLITS)}")
    part, classes = ("train", {"unsup"}) if split == "unsup" else (split, {"pos", "neg"})
    folder = fetch(IMDB)
    archive = folder / f"aclImdb_v1_{split}.tar.gz"
    if not archive.is_file():
        archive = folder / "aclImdb_v1.tar.gz"
    found = []
    for m, data in _members(archive):
        if m.group(1) == part and m.group(2) in classes:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{archive}: {m.group(0)} is not UTF-8 (byte offset {e.start})") from None
            if strip_html:
                text = text.replace("<br />", " ")
            found.append(((_LABELS[m.group(2)], int(m.group(3))), text))
    if not found:
        raise DataError(f"{archive}: holds no aclImdb/{part} reviews; is it the IMDB archive?")
    found.sort(key=lambda e: e[0])
    return [(text, key[0]) for key, text in found]


def _members(archive: Path) -> Iterator[tuple[re.Match[str], bytes]]:
    """(name match, bytes) for every review file in the archive."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for info in tar:
                m = _MEMBER.fullmatch(info.name)
                if m and info.isfile():
                    f = tar.extractfile(info)
                    assert f is not None
                    yield m, f.read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: cannot read the archive ({e})") from None


def imdb_stats(level: str = "whitespace", lower: bool = False, vocab_size: int | None = None) -> dict[str, Any]:
    """Reviews, labels, tokens and review lengths per split; vocabulary (and a subword model)
    from the train split."""
    tok = get_tokenizer(level, lower, vocab_size)
    out: dict[str, Any] = {"name": "imdb", "text": {"level": level, "lower": lower}, "splits": {}}
    vocab = None
    for split in IMDB_SPLITS:
        examples = imdb_examples(split)
        if vocab is None and tok.learns:
            tok.fit("\n".join(text for text, _ in examples))
        docs = [tok.tokenize(text) for text, _ in examples]
        if vocab is None:
            vocab = Vocab.build(Counter(t for d in docs for t in d), specials=[UNK])
            out["vocab_size"] = len(vocab)
        s = vocab.stats([t for d in docs for t in d])
        labels = Counter(label for _, label in examples)
        out["splits"][split] = {
            "reviews": len(examples),
            "labels": {name: labels[value] for name, value in _LABELS.items() if labels[value]},
            "tokens": s["tokens"],
            "unk": s["unk"],
            "oov_rate": s["oov_rate"],
            "reviews_length": length_summary(np.array([len(d) for d in docs], dtype=np.int64)),
        }
    return out
