"""Preparing a corpus: its text tokenized once into a token cache entry (``unroll.data.token_cache``).

    text files ──pieces of lines──► tokenize (every core) ──► provisional ids (first-seen order)
                                                                  │ cut a lone file into splits
                                                                  ▼
         vocabulary from the train split's counts ──► final ids, uint16/uint32, one file a split

Memory stays at a few pieces of text and one id array per piece; the id files are written in
blocks. A text read as one unit (characters of a whole text) is tokenized in memory, since its
split is cut at any character.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unroll.data.chunks import file_chunks, string_chunks
from unroll.data.encode import Stream, Types, default_workers, encode_stream
from unroll.data.files import read_text
from unroll.data.token_cache import Entry, id_dtype
from unroll.errors import DataError
from unroll.text import UNK, TextSpec, Vocab, levels
from unroll.text.spec import COUNTS, Units, text_counts

SPLITS = ("train", "valid", "test")
BLOCK = 1 << 22  # ids remapped at a time


@dataclass
class Part:
    """One split: a range of tokens and of units in a stream (a lone file's splits share one)."""

    stream: Stream
    start: int
    stop: int
    units: slice

    def counts(self) -> dict[str, int]:
        return dict(zip(COUNTS, map(int, self.stream.unit_counts()[self.units].sum(axis=0))))


def prepare(
    entry: Entry, name: str, sources: dict[str, Path | str], spec: TextSpec, fractions: tuple[float, ...],
    encoding: str | None, vocab: Vocab | None, max_size: int | None, min_freq: int, progress: bool = False,
) -> tuple[dict[str, Any], Vocab, TextSpec]:
    """Tokenize ``sources`` (split -> file, or its text) into ``entry``; returns its meta, the
    vocabulary and the spec (fitted, for a level that learns).

    A lone ``train`` source is cut into splits by ``fractions``; the vocabulary is built from the
    train split (``max_size``, ``min_freq``) unless one is given.
    """
    began = time.perf_counter()
    lone = set(sources) == {"train"}
    if levels.get(spec.level).learns and not spec.fitted:
        if lone:  # the tokenizer learns from the training part alone: cut the text first, by characters
            sources, lone = dict(_cut_lines(_text(sources["train"], encoding), fractions, name)), False
        spec = spec.fit(_text(sources["train"], encoding))
    total = sum(Path(s).stat().st_size if isinstance(s, Path) else len(s) for s in sources.values())
    bar = _bar(total, name) if progress and spec.unit != "text" else None
    types = Types()
    try:
        if spec.unit == "text":
            parts = _whole_texts(entry, sources, spec, fractions, encoding, types, name, lone)
        else:
            workers = default_workers(total)
            parts = _streams(entry, sources, spec, fractions, encoding, types, name, lone, workers, bar)
    finally:
        if bar is not None:
            bar.close()
    if vocab is None:
        vocab = _build_vocab(parts, types, spec, max_size, min_freq)
    dtype = id_dtype(len(vocab))
    lut = _lookup(types, vocab)
    splits = {}
    for split, part in parts.items():
        _write_ids(entry, split, part, lut, dtype)
        entry.write_array(f"{split}.lengths", part.stream.unit_lengths()[part.units])
        splits[split] = {"tokens": part.stop - part.start, "units": part.units.stop - part.units.start,
                         "dtype": dtype.name, "counts": part.counts()}
    for stream in {id(p.stream): p.stream for p in parts.values()}.values():
        stream.path.unlink()
    meta = {"source": name, "text": spec.to_dict(), "vocab_size": len(vocab), "splits": splits,
            "seconds": round(time.perf_counter() - began, 2)}
    return meta, vocab, spec


def _text(source: Path | str, encoding: str | None) -> str:
    return read_text(source, encoding) if isinstance(source, Path) else source


def _pieces(source: Path | str, encoding: str | None) -> Iterator[str]:
    return file_chunks(source, encoding) if isinstance(source, Path) else string_chunks(source)


def _streams(entry: Entry, sources: dict[str, Path | str], spec: TextSpec, fractions: tuple[float, ...],
             encoding: str | None, types: Types, name: str, lone: bool, workers: int, bar: Any) -> dict[str, Part]:
    """Line and sentence units: each source tokenized as a stream of pieces, by ``workers`` processes."""
    parts = {}
    for split, source in sources.items():
        stream = encode_stream(_pieces(source, encoding), spec, types, entry.path(f".{split}.provisional"),
                               workers, bar.update if bar is not None else None)
        units = len(stream.unit_lengths())
        parts[split] = Part(stream, 0, stream.tokens, slice(0, units))
    if lone:
        parts = _cut_units(parts["train"].stream, fractions, name)
    return parts


def _whole_texts(entry: Entry, sources: dict[str, Path | str], spec: TextSpec, fractions: tuple[float, ...],
                 encoding: str | None, types: Types, name: str, lone: bool) -> dict[str, Part]:
    """A whole text as one unit (characters): tokenized in memory, a lone one cut at any token."""
    units = {split: spec.units(_text(source, encoding)) for split, source in sources.items()}
    if lone:
        units = _cut_text(units.pop("train"), fractions, spec, name)
    parts = {}
    for split, u in units.items():
        stream = Stream(entry.path(f".{split}.provisional"), len(u.tokens), [np.asarray(u.lengths, np.int64)], [u.counts])
        types.ids(u.tokens).tofile(stream.path)
        parts[split] = Part(stream, 0, stream.tokens, slice(0, len(u.lengths)))
    return parts


def _provisional(part: Part) -> np.ndarray:
    if part.stop == part.start:
        return np.zeros(0, np.uint32)
    return np.memmap(part.stream.path, dtype=np.uint32, mode="r", offset=4 * part.start, shape=(part.stop - part.start,))


def _type_counts(part: Part, n_types: int) -> np.ndarray:
    ids, counts = _provisional(part), np.zeros(n_types, np.int64)
    for lo in range(0, len(ids), BLOCK):
        counts += np.bincount(ids[lo : lo + BLOCK], minlength=n_types)
    return counts


def _build_vocab(parts: dict[str, Part], types: Types, spec: TextSpec, max_size: int | None, min_freq: int) -> Vocab:
    """The training split's tokens by frequency; a subword model's unused pieces (bytes for
    characters the training split lacks) follow, so no text is ever unknown. ``<unk>`` only
    when some token needs it."""
    n = len(types.strings)
    train = _type_counts(parts["train"], n)
    counts = {types.strings[i]: int(train[i]) for i in np.flatnonzero(train)}
    inventory = spec.tokenizer.inventory()
    if inventory is not None:
        if max_size is not None:
            raise DataError(f"max_vocab does not apply to the {spec.level} level; its size is vocab_size")
        built = Vocab.build(counts).itos
        return Vocab(built + [p for p in inventory if p not in counts])
    unseen = any((_type_counts(part, n)[train == 0] > 0).any() for split, part in parts.items() if split != "train")
    return Vocab.build(counts, max_size=max_size, min_freq=min_freq, specials=[UNK] if unseen else [])


def _lookup(types: Types, vocab: Vocab) -> np.ndarray:
    """Provisional id -> vocabulary id (``<unk>`` for a type the vocabulary lacks)."""
    ids = [vocab.stoi.get(t, vocab.unk_id) for t in types.strings]
    if vocab.unk_id is None and None in ids:
        missing = types.strings[ids.index(None)]
        raise DataError(f"token {missing!r} is not in the vocabulary, which has no {UNK}")
    return np.asarray(ids, np.int64)


def _write_ids(entry: Entry, split: str, part: Part, lut: np.ndarray, dtype: np.dtype) -> None:
    ids = _provisional(part)
    with open(entry.path(f"{split}.ids"), "wb") as f:
        for lo in range(0, len(ids), BLOCK):
            f.write(lut[ids[lo : lo + BLOCK]].astype(dtype).tobytes())
    entry.add(f"{split}.ids")


def _bar(total: int, name: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"tokenizing {Path(name).name}", leave=False,
                disable=None)  # a bar on a terminal only


# ---- cutting one text into train / valid (/ test) --------------------------------------------

def _check_fractions(fractions: tuple[float, ...]) -> None:
    if len(fractions) not in (2, 3) or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split fractions {fractions} must be 2 or 3 positive numbers summing to 1")


def _cut_units(stream: Stream, fractions: tuple[float, ...], name: str) -> dict[str, Part]:
    """Cut one stream into train/valid(/test) at unit boundaries by ``fractions`` of its tokens;
    each part keeps at least one unit, so a short file still splits."""
    _check_fractions(fractions)
    ends = np.cumsum(stream.unit_lengths())
    m = len(fractions) - 1
    if len(ends) <= m:
        raise DataError(f"{name}: {len(ends)} line(s) are too few to cut into {m + 1} parts; give separate train/valid files")
    targets = [int(stream.tokens * f) for f in np.cumsum(fractions)[:-1]]
    cuts = [int(np.clip(np.searchsorted(ends, t), k, len(ends) - 1 - (m - k))) + 1 for k, t in enumerate(targets)]
    bounds = [0, *cuts, len(ends)]
    return {split: Part(stream, int(ends[lo - 1]) if lo else 0, int(ends[hi - 1]), slice(lo, hi))
            for split, lo, hi in zip(SPLITS, bounds, bounds[1:])}


def _cut_text(units: Units, fractions: tuple[float, ...], spec: TextSpec, name: str) -> dict[str, Units]:
    """Cut one text read as a single unit into train/valid(/test) by ``fractions`` of its tokens,
    at any token, as nanoGPT cuts characters; each part keeps at least one token."""
    _check_fractions(fractions)
    tokens = units.tokens
    n, m = len(tokens), len(fractions) - 1
    if n <= m:
        raise DataError(f"{name}: too little text to cut into {m + 1} parts")
    targets = [int(n * f) for f in np.cumsum(fractions)[:-1]]
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
