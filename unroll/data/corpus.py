"""Corpora for language modelling: a dataset or the user's own text as id streams (memory-mapped from the token cache).

    load_corpus("ptb")                      # registered dataset (mirror, cache or download)
    load_corpus("notes.txt", level="char")  # one file: first 90% train, last 10% valid
    load_corpus("my_data/")                 # a folder with train/valid/test files
    load_corpus("comments.csv", column="body", spec=TextSpec("word", True, "sentence", True, True))
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from unroll.data import token_cache
from unroll.data.download import fetch
from unroll.data.files import read_text
from unroll.data.prepare import SPLITS, prepare
from unroll.data.registry import DATASETS, get_dataset
from unroll.errors import DataError
from unroll.text import TextSpec, Vocab, levels
DEFAULT_FRACTIONS = (0.9, 0.1)
_SPLIT_ALIASES = {"train": {"train", "training"}, "valid": {"valid", "validation", "val", "dev"}, "test": {"test"}}


@dataclass
class Corpus:
    """Id streams per split, with the vocabulary and the text settings that made them."""

    name: str
    text: TextSpec
    vocab: Vocab
    splits: dict[str, np.ndarray]  # split -> int64 ids, markers included
    lengths: dict[str, np.ndarray]  # split -> length of each unit (line or sentence), summing to the split
    # split -> chars, bytes, words of its text (unroll.text.spec.line_counts): bits per character
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def sentences(self, split: str) -> list[np.ndarray]:
        """The split cut into its units (lines or sentences), for padded sentence batches."""
        return np.split(self.splits[split], np.cumsum(self.lengths[split])[:-1])


def load_corpus(
    source: str | os.PathLike,
    level: str | None = None,
    *,
    lower: bool = False,
    spec: TextSpec | None = None,
    vocab: Vocab | None = None,
    max_size: int | None = None,
    min_freq: int = 1,
    encoding: str | None = None,
    fractions: tuple[float, ...] | None = None,
    column: str | int | None = None,
    vocab_size: int | None = None,
    progress: bool = False,
) -> Corpus:
    """Read, tokenize and encode a corpus, once: later calls memory-map the token cache.

    ``source`` is a registered dataset name or a path: a text file (cut into train/valid by
    ``fractions``, default 0.9/0.1), a folder with train/valid/test files (``ptb.train.txt``,
    ``valid.txt``, ...), or a ``.csv`` file (one document per row from ``column``, the first
    column by default). ``spec`` (or ``level`` and ``lower``) says how to tokenize; the default
    is the dataset's own (PTB: words with ``<eos>`` per line), else Treebank words;
    ``vocab_size`` is a subword level's number of pieces. A subword tokenizer not yet fitted
    learns from the training split (a lone file is then cut at line boundaries by characters,
    since its tokens are not known before).
    The vocabulary is built from the training split (``max_size``, ``min_freq``) unless one is
    given; ``<unk>`` is included only when some token needs it.

    The ids are cached (``unroll.data.token_cache``) under the files' contents and these
    settings; ``splits`` are then read-only memory maps. ``progress`` shows a bar while a
    corpus is tokenized for the first time.
    """
    name = str(source)
    ds = DATASETS.get(name)
    if spec is None:
        if ds is not None and level in (None, ds.text.level):
            spec = replace(ds.text, lower=lower)
        else:
            spec = TextSpec.for_level(level or "word", lower, vocab_size)
    elif vocab_size is not None and vocab_size != spec.vocab_size:
        raise DataError(f"vocab_size {vocab_size} differs from the text settings' {spec.vocab_size}; give only one of them")
    sources, identities, default_fractions = _sources(name, encoding, column)
    fractions = tuple(fractions or default_fractions)
    inputs = {"files": identities, "column": column, "encoding": encoding, "text": spec.to_dict(),
              "max_size": max_size, "min_freq": min_freq,
              "fractions": list(fractions) if set(sources) == {"train"} else None}
    key = token_cache.cache_key(inputs)
    found = token_cache.lookup(key)
    if found is not None:
        corpus = _open(name, *found, spec)
        if _agrees(found[0], corpus, spec, vocab):
            return corpus
    given = {"tokenizer": hashlib.sha256(spec.tokenizer.learned()).hexdigest() if spec.fitted else None,
             "vocab": hashlib.sha256(json.dumps(vocab.itos).encode()).hexdigest() if vocab is not None else None}
    if any(given.values()):  # built with a checkpoint's tokenizer or vocabulary
        key = token_cache.cache_key({**inputs, "given": given})
        found = token_cache.lookup(key)
        if found is not None:
            return _open(name, *found, spec)
    with token_cache.Entry(key) as entry:
        meta, built, spec = prepare(entry, name, sources, spec, fractions, encoding, vocab, max_size, min_freq, progress)
        folder = entry.commit(meta, built, spec)
    return _open(name, folder, json.loads((folder / token_cache.META).read_text(encoding="utf-8")), spec)


def _open(name: str, folder: Path, meta: dict[str, Any], spec: TextSpec) -> Corpus:
    """The corpus of a cache entry; a level that learns takes the entry's tokenizer unless
    ``spec`` is already fitted."""
    ids, lengths, vocab = token_cache.open_entry(folder, meta)
    if not spec.fitted:
        spec = spec.load_files(folder)
    counts = {split: dict(info["counts"]) for split, info in meta["splits"].items()}
    return Corpus(name=name, text=spec, vocab=vocab, splits=ids, lengths=lengths, counts=counts)


def _agrees(folder: Path, corpus: Corpus, spec: TextSpec, vocab: Vocab | None) -> bool:
    """Whether a cached corpus is the one ``spec`` (a fitted tokenizer's model) and ``vocab`` would make."""
    if spec.fitted and levels.get(spec.level).learns:
        cached = TextSpec.from_dict(spec.to_dict()).load_files(folder)
        if cached.tokenizer.learned() != spec.tokenizer.learned():
            return False
    return vocab is None or vocab == corpus.vocab


def _sources(source: str, encoding: str | None, column: str | int | None) -> tuple[dict[str, Path | str], dict[str, Any], tuple[float, ...]]:
    """Each split's file (or, for a CSV column, its text), each file's identity for the cache
    key, and the fractions to cut a lone train text by."""
    ds = DATASETS.get(source)
    if ds is not None:
        if not ds.is_corpus:
            raise DataError(f"{source} is a classification dataset, not a language-modelling corpus; read it with unroll.data.imdb_examples")
        folder = fetch(ds)  # verified against the registry's sha256s
        files = {split: folder / f for split, f in ds.splits.items()}
        ids = {split: token_cache.file_identity(path, ds.files.get(path.name)) for split, path in files.items()}
        return dict(files), ids, ds.fractions or DEFAULT_FRACTIONS
    path = Path(source).expanduser()
    if not path.exists():
        if not re.search(r"[./\\]", source):
            get_dataset(source)  # a bare name: say which datasets exist
        raise DataError(f"{path}: no such file or directory (known datasets: {', '.join(sorted(DATASETS))})")
    if path.is_dir():
        files = split_files(path)
    elif path.suffix.lower() == ".csv":
        return {"train": read_csv_column(path, column, encoding)}, {"train": token_cache.file_identity(path)}, DEFAULT_FRACTIONS
    else:
        files = {"train": path}
    return dict(files), {split: token_cache.file_identity(f) for split, f in files.items()}, DEFAULT_FRACTIONS


def split_files(folder: Path) -> dict[str, Path]:
    """The train/valid/test files in ``folder``, recognised by a name part: ``train.txt``,
    ``ptb.valid.txt``, ``wiki.test.tokens``, ``dev.txt`` ..."""
    found: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            parts = set(re.split(r"[._\-]", f.name.lower()))
            for split, aliases in _SPLIT_ALIASES.items():
                if parts & aliases:
                    found[split].append(f)
    for split, files in found.items():
        if len(files) > 1:
            raise DataError(f"{folder}: more than one {split} file ({', '.join(f.name for f in files)}); keep one")
    if not found["train"]:
        raise DataError(f"{folder}: no training file; expected a file named like train.txt or ptb.train.txt")
    return {split: files[0] for split, files in found.items() if files}


def read_csv_column(path: Path, column: str | int | None, encoding: str | None = None) -> str:
    """One column of a CSV file with a header row, one cell a line (newlines inside become spaces)."""
    rows = csv.reader(io.StringIO(read_text(path, encoding), newline=""))
    header = next(rows, [])
    if column is None:
        index = 0
    elif isinstance(column, int) or str(column).isdigit():
        index = int(column)
    elif column in header:
        index = header.index(column)
    else:
        raise DataError(f"{path}: no column {column!r}; the header has {header}")
    if index >= len(header):
        raise DataError(f"{path}: no column {index}; the header has {len(header)} columns")
    cells = (" ".join(row[index].split()) for row in rows if len(row) > index)
    text = "\n".join(c for c in cells if c)
    if not text:
        raise DataError(f"{path}: column {header[index]!r} is empty")
    return text + "\n"


def corpus_stats(corpus: Corpus) -> dict[str, Any]:
    """Tokens, OOV rate and unit-length summary per split, and the vocabulary size."""
    v = corpus.vocab
    unit = "sentences" if corpus.text.unit == "sentence" else "lines"
    out: dict[str, Any] = {"name": corpus.name, "text": corpus.text.to_dict(), "vocab_size": len(v), "splits": {}}
    for split, ids in corpus.splits.items():
        s = v.stats(ids)
        out["splits"][split] = {
            "tokens": s["tokens"],
            "unk": s["unk"],
            "oov_rate": s["oov_rate"],
            unit: length_summary(_unit_lengths(corpus, split)),
        }
        if split == "train":
            out["least_frequent"] = s["least_frequent"]
    return out


def _unit_lengths(corpus: Corpus, split: str) -> np.ndarray:
    lengths = corpus.lengths[split]
    if corpus.text.unit == "text" and "\n" in corpus.vocab:  # characters: count lines instead
        ids = corpus.splits[split]
        ends = np.flatnonzero(ids == corpus.vocab["\n"]) + 1
        lengths = np.diff(np.concatenate([[0], ends, [len(ids)]]))
        lengths = lengths[lengths > 0]
    return lengths


def length_summary(lengths: np.ndarray) -> dict[str, float]:
    if lengths.size == 0:
        return {"count": 0}
    return {
        "count": int(lengths.size),
        "min": int(lengths.min()),
        "mean": round(float(lengths.mean()), 2),
        "median": float(np.median(lengths)),
        "p95": round(float(np.percentile(lengths, 95)), 2),
        "max": int(lengths.max()),
    }
