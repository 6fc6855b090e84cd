"""Tokenize a stream of text pieces into integer ids with bounded memory, on every core.

The vocabulary is known only after the whole training split is read, so a stream is first
written as *provisional* ids (one per token type, in order of first appearance) to a file;
``unroll.data.token_cache`` maps them to the final vocabulary afterwards. Workers tokenize
pieces in parallel and send back each piece's types and local ids, never a list of token
strings, so the main process does a few dictionary lookups per piece type, not per token.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unroll.text import TextSpec
from unroll.text.spec import normalize_newlines

PROVISIONAL = np.uint32
# Below this many bytes, starting worker processes costs more than it saves.
PARALLEL_BYTES = 16 << 20


@dataclass
class Stream:
    """One split's tokens as provisional ids in ``path``, and each unit's length and text counts."""

    path: Path
    tokens: int = 0
    lengths: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)  # [units, 3]: unroll.text.spec.COUNTS

    def unit_lengths(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)

    def unit_counts(self) -> np.ndarray:
        return np.concatenate(self.counts) if self.counts else np.zeros((0, 3), np.int64)


class Types:
    """Token strings in order of first appearance: the provisional vocabulary."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.strings: list[str] = []

    def ids(self, strings: list[str]) -> np.ndarray:
        out = np.empty(len(strings), PROVISIONAL)
        index = self.index
        for j, s in enumerate(strings):
            i = index.get(s)
            if i is None:
                i = index[s] = len(self.strings)
                self.strings.append(s)
            out[j] = i
        return out


def tokenize_piece(spec: TextSpec, text: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """One piece's types, its tokens as indices into them, its unit lengths and unit counts."""
    units = spec.units(text)
    local: dict[str, int] = {}
    ids = np.fromiter((local.setdefault(t, len(local)) for t in units.tokens), PROVISIONAL, len(units.tokens))
    return list(local), ids, np.asarray(units.lengths, np.int64), units.counts


def encode_stream(
    pieces: Iterable[str], spec: TextSpec, types: Types, out: Path, workers: int = 1,
    advance: Callable[[int], None] | None = None,
) -> Stream:
    """Tokenize ``pieces`` (whole lines each) into provisional ids written to ``out``.

    ``workers`` > 1 tokenizes in that many processes; the result is the same. ``advance``
    receives the length of each piece as it is done (a progress bar). A sentence unit takes
    blank lines into the next sentence, so a piece never ends with them.
    """
    if spec.unit == "sentence":
        pieces = _blank_lines_forward(pieces)
    stream = Stream(out)
    with open(out, "wb") as f:
        for piece, (strings, local, lengths, counts) in _tokenized(pieces, spec, workers):
            ids = types.ids(strings)[local]
            f.write(ids.tobytes())
            stream.tokens += len(ids)
            stream.lengths.append(lengths)
            stream.counts.append(counts)
            if advance is not None:
                advance(len(piece))
    return stream


def _tokenized(pieces: Iterable[str], spec: TextSpec, workers: int) -> Iterator[tuple[str, Any]]:
    if workers <= 1:
        for piece in pieces:
            yield piece, tokenize_piece(spec, piece)
        return
    # fork where there is one: no re-import of the caller's script (spawn would need its
    # ``if __name__ == "__main__"``); the workers only tokenize, never touch torch's threads
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, _init_worker, (spec.to_dict(), spec.tokenizer.learned())) as pool:
        pending: list[tuple[str, Any]] = []
        for piece in pieces:
            pending.append((piece, pool.apply_async(_tokenize_in_worker, (piece,))))
            if len(pending) > 2 * workers:  # a bounded queue: memory stays a few pieces
                done, job = pending.pop(0)
                yield done, job.get()
        for done, job in pending:
            yield done, job.get()


_worker_spec: TextSpec | None = None


def _init_worker(spec: dict[str, Any], learned: bytes) -> None:
    global _worker_spec
    _worker_spec = TextSpec.from_dict(spec).with_learned(learned)


def _tokenize_in_worker(piece: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    assert _worker_spec is not None
    return tokenize_piece(_worker_spec, piece)


def _blank_lines_forward(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces with the blank lines that end one moved to the start of the next."""
    carry = ""
    for piece in pieces:
        text = carry + normalize_newlines(piece)  # a piece ends at "\n", so no "\r\n" is cut
        end = len(text)
        while end:
            start = text.rfind("\n", 0, end - 1) + 1  # where the last line before ``end`` begins
            if text[start:end].strip():
                break
            end = start
        if end:
            yield text[:end]
        carry = text[end:]
    if carry:
        yield carry


def default_workers(total_bytes: int) -> int:
    """Processes to tokenize ``total_bytes`` with: every core this process may use, for a large corpus."""
    if total_bytes < PARALLEL_BYTES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8))
