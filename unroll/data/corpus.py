"""Corpora for language modelling: a dataset or the user's own text as int64 id streams.

    load_corpus("ptb")                      # registered dataset (mirror, cache or download)
    load_corpus("notes.txt", level="char")  # one file: first 90% train, last 10% valid
    load_corpus("my_data/")                 # a folder with train/valid/test files
    load_corpus("comments.csv", column="body", spec=TextSpec("word", True, "sentence", True, True))
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from unroll.data.download import fetch
from unroll.data.files import read_text
from unroll.data.registry import DATASETS, get_dataset
from unroll.errors import DataError
from unroll.text import UNK, TextSpec, Vocab, levels
from unroll.text.spec import COUNTS, Units, text_counts

SPLITS = ("train", "valid", "test")
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
) -> Corpus:
    """Read, tokenize and encode a corpus.

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
    texts, default_fractions = _read_texts(name, encoding, column)
    fractions = fractions or default_fractions
    if levels.get(spec.level).learns and len(texts) == 1:
        # the tokenizer learns from the training part alone: cut the text first, by characters
        texts = _cut_lines(texts["train"], fractions, name)
    if not spec.fitted:
        spec = spec.fit(texts["train"])
    units = {split: spec.units(text) for split, text in texts.items()}
    if len(units) == 1:
        units = _cut(units.pop("train"), fractions, spec, name)
    if vocab is None:
        vocab = _build_vocab(units, spec, max_size, min_freq)
    return Corpus(
        name=name, text=spec, vocab=vocab,
        splits={split: vocab.encode(u.tokens) for split, u in units.items()},
        lengths={split: np.asarray(u.lengths, dtype=np.int64) for split, u in units.items()},
        counts={split: dict(zip(COUNTS, map(int, u.counts.sum(axis=0)))) for split, u in units.items()},
    )


def _build_vocab(units: dict[str, Units], spec: TextSpec, max_size: int | None, min_freq: int) -> Vocab:
    """The training split's tokens by frequency; a subword model's unused pieces (bytes for
    characters the training split lacks) follow, so no text is ever unknown."""
    counts = Counter(units["train"].tokens)
    inventory = spec.tokenizer.inventory()
    if inventory is not None:
        if max_size is not None:
            raise DataError(f"max_vocab does not apply to the {spec.level} level; its size is vocab_size")
        built = Vocab.build(counts).itos
        return Vocab(built + [p for p in inventory if p not in counts])
    unseen = any(t not in counts for split, u in units.items() if split != "train" for t in set(u.tokens))
    return Vocab.build(counts, max_size=max_size, min_freq=min_freq, specials=[UNK] if unseen else [])


def _read_texts(source: str, encoding: str | None, column: str | int | None) -> tuple[dict[str, str], tuple[float, ...]]:
    """Raw text per split, and the fractions to cut a lone train text by."""
    ds = DATASETS.get(source)
    if ds is not None:
        if not ds.is_corpus:
            raise DataError(f"{source} is a classification dataset, not a language-modelling corpus; read it with unroll.data.imdb_examples")
        folder = fetch(ds)
        return {split: read_text(folder / f, encoding) for split, f in ds.splits.items()}, ds.fractions or DEFAULT_FRACTIONS
    path = Path(source).expanduser()
    if not path.exists():
        if not re.search(r"[./\\]", source):
            get_dataset(source)  # a bare name: say which datasets exist
        raise DataError(f"{path}: no such file or directory (known datasets: {', '.join(sorted(DATASETS))})")
    if path.is_dir():
        return {split: read_text(f, encoding) for split, f in split_files(path).items()}, DEFAULT_FRACTIONS
    if path.suffix.lower() == ".csv":
        return {"train": read_csv_column(path, column, encoding)}, DEFAULT_FRACTIONS
    return {"train": read_text(path, encoding)}, DEFAULT_FRACTIONS


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


def _check_fractions(fractions: tuple[float, ...]) -> None:
    if len(fractions) not in (2, 3) or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split fractions {fractions} must be 2 or 3 positive numbers summing to 1")


def _cut(units: Units, fractions: tuple[float, ...], spec: TextSpec, name: str) -> dict[str, Units]:
    """Cut one tokenized text into train/valid(/test) by ``fractions`` of its tokens: at unit
    boundaries, or (a text read as one unit) at any token, as nanoGPT cuts characters."""
    _check_fractions(fractions)
    tokens, lengths = units.tokens, units.lengths
    n, m = len(tokens), len(fractions) - 1
    targets = [int(n * f) for f in np.cumsum(fractions)[:-1]]
    # Each part keeps at least one token (or unit), so a short file still splits.
    if spec.unit == "text":
        if n <= m:
            raise DataError(f"{name}: too little text to cut into {m + 1} parts")
        cuts = [int(np.clip(t, k + 1, n - (m - k))) for k, t in enumerate(targets)]
        bounds = [0, *cuts, n]
        out = {}
        for split, lo, hi in zip(SPLITS, bounds, bounds[1:]):
            # what the part covers, read back from its tokens (exact for characters); a line or a
            # word cut in two ends only once, in the later part
            piece = spec.tokenizer.detokenize(tokens[lo:hi])
            covered = np.array([text_counts(piece)[k] for k in COUNTS], np.int64)
            if hi < n and not piece.endswith("\n"):
                covered -= 1
                after = spec.tokenizer.detokenize(tokens[hi : hi + 1])
                if not piece[-1].isspace() and after and not after[0].isspace():
                    covered[COUNTS.index("words")] -= 1
            out[split] = Units(tokens[lo:hi], [hi - lo], covered.reshape(1, 3))
        return out
    ends = np.cumsum(lengths)
    if len(ends) <= m:
        raise DataError(f"{name}: {len(ends)} line(s) are too few to cut into {m + 1} parts; give separate train/valid files")
    cuts = [int(np.clip(np.searchsorted(ends, t), k, len(ends) - 1 - (m - k))) + 1 for k, t in enumerate(targets)]
    bounds = [0, *cuts, len(ends)]
    out = {}
    for split, lo, hi in zip(SPLITS, bounds, bounds[1:]):
        start, stop = (int(ends[lo - 1]) if lo else 0), int(ends[hi - 1])
        out[split] = Units(tokens[start:stop], list(lengths[lo:hi]), units.counts[lo:hi])
    return out


def _cut_lines(text: str, fractions: tuple[float, ...], name: str) -> dict[str, str]:
    """Cut a raw text into train/valid(/test) at line ends by ``fractions`` of its characters."""
    _check_fractions(fractions)
    lines = text.splitlines(keepends=True)
    m = len(fractions) - 1
    if len(lines) <= m:
        raise DataError(f"{name}: {len(lines)} line(s) are too few to cut into {m + 1} parts; give separate train/valid files")
    ends = np.cumsum([len(line) for line in lines])
    targets = [ends[-1] * f for f in np.cumsum(fractions)[:-1]]
    cuts = [int(np.clip(np.searchsorted(ends, t), k, len(ends) - 1 - (m - k))) + 1 for k, t in enumerate(targets)]
    bounds = [0, *cuts, len(lines)]
    return {split: "".join(lines[lo:hi]) for split, lo, hi in zip(SPLITS, bounds, bounds[1:])}


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
