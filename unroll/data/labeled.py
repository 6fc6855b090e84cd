"""Labeled text for classification: IMDB, a folder per class, or a CSV/TSV file; tokenized and
encoded as the classic LSTM sentiment tutorial's ``imdb.py`` does.

    read_labeled("imdb")          {"train": [(text, "neg"), ...], "test": [...]}
    read_labeled("reviews/")      reviews/<class>/*.txt                    -> {"all": [...]}
                                  reviews/{train,valid,test}/<class>/*.txt -> those splits
    read_labeled("data.csv")      header row; --text-column / --label-column -> {"all": [...]}

A class folder named ``unsup`` is skipped: it holds unlabeled examples, as in an extracted
``aclImdb/train/unsup`` (so ``read_labeled("aclImdb")`` gives pos and neg only).

``training_splits`` holds out a seeded ``valid_portion`` of train (or of "all") for validation,
and ``load_labeled`` tokenizes (``TextSpec``), builds the vocabulary from train (``n_words``,
``<unk>`` included) and applies ``maxlen``: drop longer training examples (the tutorial) or cut
every example to its first (``head``) or last (``tail``) ``maxlen`` tokens.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unroll.data.files import read_text
from unroll.data.imdb import imdb_examples
from unroll.data.registry import DATASETS, get_dataset
from unroll.errors import DataError
from unroll.text import UNK, TextSpec, Vocab

Example = tuple[str, str]  # (text, label)
SPLITS = ("train", "valid", "test")
UNLABELED = "unsup"  # a folder of unlabeled examples (aclImdb's), not a class
_BREAKS = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Remove HTML line breaks (IMDB's ``<br />``), as the tutorial's preprocessing does."""
    return _BREAKS.sub(" ", text)


def classify_spec(level: str = "word", lower: bool = True, vocab_size: int | None = None) -> TextSpec:
    """How an example becomes tokens: the whole text as one unit, no markers."""
    return TextSpec(level=level, lower=lower, unit="text", bos=False, eos=False, vocab_size=vocab_size)


# ---- reading -----------------------------------------------------------------------------

def read_labeled(
    source: str | os.PathLike,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str | None = None,
) -> dict[str, list[Example]]:
    """Labeled examples per split; sources without splits of their own give one split, ``all``."""
    name = str(source)
    if name == "imdb":
        names = {0: "neg", 1: "pos"}
        return {split: [(text, names[y]) for text, y in imdb_examples(split)] for split in ("train", "test")}
    path = Path(name).expanduser()
    if not path.exists():
        if name in DATASETS:
            raise DataError(f"{name} is a language-modelling corpus without labels; give imdb, a folder or a CSV/TSV file")
        if not re.search(r"[./\\]", name):
            get_dataset(name)  # a bare name: say which datasets exist
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        subdirs = _subdirs(path)
        if subdirs and {d.name for d in subdirs} <= set(SPLITS):
            return {d.name: _read_class_folders(d, encoding) for d in subdirs}
        return {"all": _read_class_folders(path, encoding)}
    if path.suffix.lower() in (".csv", ".tsv"):
        return {"all": _read_table(path, text_column, label_column, encoding)}
    raise DataError(f"{path}: expected a .csv or .tsv file, or a folder with one sub-folder per class")


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_class_folders(path: Path, encoding: str | None) -> list[Example]:
    """``path/<class>/*.txt``: one example a file, the folder name its label (``unsup`` skipped)."""
    classes = [d for d in _subdirs(path) if d.name != UNLABELED]
    if not classes:
        raise DataError(f"{path}: no class folders; expected {path}/<class>/*.txt, one folder per class")
    examples = []
    for folder in classes:
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(f"{folder}: empty class folder (no .txt files); add examples or remove the folder")
        examples += [(read_text(f, encoding), folder.name) for f in files]
    return examples


def _read_table(path: Path, text_column: str, label_column: str, encoding: str | None) -> list[Example]:
    """A CSV (or, by its suffix, TSV) file with a header row naming the text and label columns."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = csv.reader(io.StringIO(read_text(path, encoding), newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(rows, [])]
    for flag, column in (("--text-column", text_column), ("--label-column", label_column)):
        if column not in header:
            raise DataError(f"{path}: no column {column!r} (the header has {', '.join(map(repr, header))}); pass {flag} NAME")
    ti, li = header.index(text_column), header.index(label_column)
    examples = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) <= max(ti, li) or not row[li].strip():
            raise DataError(f"{path}: row {line} has no {label_column!r} value")
        examples.append((row[ti], row[li].strip()))
    if not examples:
        raise DataError(f"{path}: has a header but no rows")
    return examples


# ---- splits and labels -------------------------------------------------------------------

def split_off(examples: list[Example], portion: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded random ``portion`` of ``examples`` held out (the tutorial's valid split); both keep file order."""
    n = len(examples)
    n_out = min(max(1, round(n * portion)), n - 1) if portion > 0 and n > 1 else 0
    held = set(np.random.default_rng(seed).permutation(n)[:n_out].tolist())
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def training_splits(raw: dict[str, list[Example]], valid_portion: float, seed: int) -> dict[str, list[Example]]:
    """train, valid (held out from train unless the data has one) and, when the data has it, test."""
    splits = dict(raw)
    if "all" in splits:
        splits["train"] = splits.pop("all")
    if "train" not in splits:
        raise DataError(f"the data has no training examples (splits: {', '.join(raw)})")
    if "valid" not in splits:
        if valid_portion <= 0:
            raise DataError("the data has no valid split; set valid_portion above 0 to hold some of train out")
        splits["train"], splits["valid"] = split_off(splits["train"], valid_portion, seed)
    return {s: splits[s] for s in SPLITS if s in splits}


def label_names(examples: list[Example], where: str) -> list[str]:
    """The classes of the training data, sorted (numerically when every label is an integer)."""
    names = set(label for _, label in examples)
    if len(names) < 2:
        only = f" ({next(iter(names))!r})" if names else ""
        raise DataError(f"{where}: the training data has a single class{only}; a classifier needs at least two")
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    return sorted(names, key=lambda n: (int(n), n) if numeric else (0, n))


def label_ids(examples: list[Example], labels: list[str], where: str) -> np.ndarray:
    """Class index of each example; a label the model was not trained on is an error."""
    index = {name: i for i, name in enumerate(labels)}
    unseen = sorted({label for _, label in examples if label not in index})
    if unseen:
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen[:5]))} were not seen at training time "
            f"(the model knows {', '.join(map(repr, labels))})"
        )
    return np.array([index[label] for _, label in examples], dtype=np.int64)


# ---- tokens and ids ----------------------------------------------------------------------

def tokenize_texts(texts: list[str], spec: TextSpec) -> list[list[str]]:
    return [spec.tokenize(clean_text(t)) for t in texts]


def build_vocab(docs: list[list[str]], n_words: int, inventory: list[str] | None = None) -> Vocab:
    """The ``n_words`` most frequent tokens of the training docs, ``<unk>`` first (the tutorial's
    dictionary: rarer words map to one unknown id). A subword model's ``inventory`` is kept
    whole instead (its size is the subword vocabulary's), the pieces unused in training last."""
    counts = Counter(t for d in docs for t in d)
    if inventory is None:
        return Vocab.build(counts, max_size=n_words, specials=[UNK])
    built = Vocab.build(counts, specials=[UNK]).itos
    return Vocab(built + [p for p in inventory if p not in counts and p != UNK])


def encode_docs(docs: list[list[str]], vocab: Vocab, maxlen: int | None = None, overlong: str = "drop") -> list[np.ndarray]:
    """Token lists -> id arrays; ``head``/``tail`` cut to ``maxlen`` (``drop`` is the caller's filter).
    An empty example becomes one ``<unk>``, so every example gets a prediction."""
    out = []
    for d in docs:
        ids = vocab.encode(d) if d else np.array([vocab.unk_id or 0], dtype=np.int64)
        if maxlen is not None and len(ids) > maxlen and overlong != "drop":
            ids = ids[:maxlen] if overlong == "head" else ids[-maxlen:]
        out.append(ids)
    return out


@dataclass
class LabeledData:
    """Encoded examples per split, and what encoded them (saved with the model)."""

    name: str
    text: TextSpec
    vocab: Vocab
    labels: list[str]
    x: dict[str, list[np.ndarray]]  # split -> one int64 id array per example
    y: dict[str, np.ndarray]  # split -> class index per example
    dropped: dict[str, int]  # split -> examples left out for being longer than maxlen


def load_labeled(
    source: str,
    *,
    spec: TextSpec | None = None,
    vocab: Vocab | None = None,
    labels: list[str] | None = None,
    n_words: int = 10000,
    maxlen: int | None = None,
    overlong: str = "drop",
    valid_portion: float = 0.05,
    seed: int = 123,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str | None = None,
) -> LabeledData:
    """Read ``source`` into train/valid(/test), tokenize, build the vocabulary from train (unless
    ``vocab`` is given, e.g. a language model's for a warm start) and encode.

    With ``overlong="drop"`` the train and valid examples longer than ``maxlen`` are left out, as
    the tutorial does; test examples are never dropped (they are evaluated whole).
    """
    spec = spec or classify_spec()
    splits = training_splits(read_labeled(source, text_column, label_column, encoding), valid_portion, seed)
    labels = labels or label_names(splits["train"], source)
    if not spec.fitted:  # a subword tokenizer learns from the training examples alone
        spec = spec.fit("\n".join(clean_text(t) for t, _ in splits["train"]))
    docs = {s: tokenize_texts([t for t, _ in ex], spec) for s, ex in splits.items()}
    vocab = vocab or build_vocab(docs["train"], n_words, spec.tokenizer.inventory())
    x, y, dropped = {}, {}, {}
    for s, ex in splits.items():
        ids, ys = encode_docs(docs[s], vocab, maxlen, overlong), label_ids(ex, labels, f"{source} ({s} split)")
        keep = [i for i, a in enumerate(ids) if not (overlong == "drop" and s != "test" and maxlen and len(a) > maxlen)]
        x[s], y[s], dropped[s] = [ids[i] for i in keep], ys[keep], len(ids) - len(keep)
    if not x["train"]:
        raise DataError(f"{source}: every training example is longer than maxlen={maxlen}; raise --maxlen or use --overlong tail")
    return LabeledData(str(source), spec, vocab, labels, x, y, dropped)
