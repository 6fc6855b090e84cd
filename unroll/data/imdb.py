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
from unroll.io import atomic_write_bytes
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


LM_HELD_OUT = 50  # of every 50 reviews, one goes to valid and one to test


def write_lm_corpus(folder: Path) -> None:
    """The ``imdb-lm`` corpus: IMDB's 25,000 train and 50,000 unlabeled reviews, one a line
    (``<br />`` tags and runs of whitespace made single spaces), in the order of
    :func:`imdb_examples` (train, then unlabeled), less every review that is also, word for word,
    one of the 25,000 sentiment test reviews (IMDB repeats a few hundred): a model pretrained on
    it has never seen a test review. Of the rest, review ``i`` goes to valid when ``i % 50 == 0``,
    to test when ``i % 50 == 1``, else to train. Each file is written whole and renamed into place."""
    def line(text: str) -> str:
        return " ".join(text.split())

    held_out = {line(text) for text, _ in imdb_examples("test")}
    reviews = [line(text) for split in ("train", "unsup") for text, _ in imdb_examples(split)]
    reviews = [text for text in reviews if text not in held_out]
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i, text in enumerate(reviews):
        splits[{0: "valid", 1: "test"}.get(i % LM_HELD_OUT, "train")].append(text)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in splits.items():
        atomic_write_bytes(folder / f"{name}.txt", ("\n".join(lines) + "\n").encode("utf-8"))


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
