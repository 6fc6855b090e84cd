"""The token cache: a corpus is tokenized once, and every later run memory-maps its ids.

    <UNROLL_CACHE_DIR>/tokens/<key>/
        meta.json              what it was made from, the splits' token and text counts, file digests
        vocab.json
        tokenizer.model        a learned level's model (bpe, unigram), fitted on the train split
        train.ids ...          the ids of each split: uint16 where the vocabulary fits, else uint32
        train.lengths ...      int64: the length of each unit (line or sentence)

The key is the sha256 of everything the ids depend on: each file's size and sha256 (not its
name: a moved file still hits), the text settings, the vocabulary settings and the split
fractions. An entry is written in a temporary folder and renamed into place complete, its
``meta.json`` last; one whose files do not match the digests in its ``meta.json`` is removed
and built again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from unroll.data.download import cache_dir
from unroll.data.files import sha256_file
from unroll.errors import DataError
from unroll.io import _umask, atomic_write_json, fsync_tree
from unroll.text import TextSpec, Vocab

FORMAT = 1
META, VOCAB = "meta.json", "vocab.json"


def tokens_dir() -> Path:
    return cache_dir() / "tokens"


def id_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds every id."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def cache_key(inputs: dict[str, Any]) -> str:
    """The entry name for ``inputs`` (a JSON-able description of everything the ids depend on)."""
    blob = json.dumps({"format": FORMAT, **inputs}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def file_identity(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """A file as the key sees it: its size and content hash (``sha256`` when already known)."""
    return {"bytes": path.stat().st_size, "sha256": sha256 or sha256_file(path)}


def lookup(key: str) -> tuple[Path, dict[str, Any]] | None:
    """The entry's folder and meta, if it is there and whole; a damaged one is removed."""
    folder = tokens_dir() / key
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        damage = _damage(folder, meta)
    except (OSError, ValueError, KeyError, TypeError) as e:
        damage = f"unreadable {META} ({e})"
    if damage is None:
        return folder, meta
    print(f"unroll: the token cache {folder} is damaged ({damage}); building it again", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _damage(folder: Path, meta: dict[str, Any]) -> str | None:
    """What is wrong with an entry's files, or None."""
    if meta.get("format") != FORMAT:
        return f"format {meta.get('format')}, expected {FORMAT}"
    for name, want in meta["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != want["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, expected {want['bytes']}"
        if sha256_file(path) != want["sha256"]:
            return f"{name} does not match its sha256"
    return None


def open_entry(folder: Path, meta: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Vocab]:
    """Memory maps of each split's ids and unit lengths (read-only), and the vocabulary."""
    ids, lengths = {}, {}
    for split, info in meta["splits"].items():
        dtype = np.dtype(info["dtype"])
        ids[split] = _map(folder / f"{split}.ids", dtype, info["tokens"])
        lengths[split] = _map(folder / f"{split}.lengths", np.dtype(np.int64), info["units"])
    return ids, lengths, Vocab.load(folder / VOCAB)


def _map(path: Path, dtype: np.dtype, n: int) -> np.ndarray:
    if n == 0:  # np.memmap refuses an empty file
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(n,))


class Entry:
    """A cache entry being written: files go into a temporary folder, renamed into place whole.

    ``with Entry(key) as e: ...; e.commit(meta)``; leaving the block without ``commit``
    (an error, Ctrl-C) removes the temporary folder.
    """

    def __init__(self, key: str):
        self.key = key
        root = tokens_dir()
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root))
            os.chmod(self.folder, 0o777 & ~_umask())  # mkdtemp makes 0700; give the mode mkdir would
        except OSError as e:
            raise DataError(f"{root}: cannot write the token cache there ({e.strerror or e}); "
                            f"set UNROLL_CACHE_DIR to a writable folder") from None
        self.files: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> "Entry":
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def path(self, name: str) -> Path:
        return self.folder / name

    def add(self, name: str) -> None:
        """Record a finished file's size and digest for ``meta.json``."""
        path = self.folder / name
        self.files[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}

    def write_array(self, name: str, array: np.ndarray) -> None:
        np.ascontiguousarray(array).tofile(self.folder / name)
        self.add(name)

    def commit(self, meta: dict[str, Any], vocab: Vocab, spec: TextSpec) -> Path:
        """Write the vocabulary, the tokenizer's files and ``meta.json``, and move the entry into place."""
        vocab.save(self.folder / VOCAB)
        self.add(VOCAB)
        spec.save_files(self.folder)
        for name in _tokenizer_files(spec):
            self.add(name)
        atomic_write_json(self.folder / META, {"format": FORMAT, **meta, "files": self.files})
        fsync_tree(self.folder)
        final = tokens_dir() / self.key
        if final.is_dir() and not (final / META).is_file():
            shutil.rmtree(final)  # a damaged entry (lookup removes those it finds too)
        try:
            os.replace(self.folder, final)
        except OSError:
            if not (final / META).is_file():  # not another process's finished entry
                raise
        return final


def _tokenizer_files(spec: TextSpec) -> tuple[str, ...]:
    from unroll.text import levels

    return levels.get(spec.level).files
