"""Batches: streams for truncated BPTT, padded sentence batches with masks, fixed sections.

All arrays are time-major: ``[T, B]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut one id stream into ``batch_size`` contiguous columns, dropping the leftover tokens.

    With the alphabet as the stream and batch_size 4 (as pytorch/examples draws it)::

        a b c d e f g h i j k l m n o p q r s t u v w x y z
                                                                ┌ a g m s ┐
                                                                │ b h n t │
        -> 4 slices of 6: abcdef ghijkl mnopqr stuvwx  ->  [6,4] │ c i o u │   (y, z dropped)
                                                                │ d j p v │
                                                                │ e k q w │
                                                                └ f l r x ┘

    Each column is read top to bottom, so a column's hidden state carries over from one BPTT
    window to the next. Ids in a memory map (the token cache) stay there: the result is then a
    view of it in its own dtype, and each window is read from disk as it is used (``iter_bptt``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if isinstance(ids, np.memmap):
        n = len(ids) // batch_size
        return ids[: n * batch_size].reshape(batch_size, n).T
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = len(ids) // batch_size
    return np.ascontiguousarray(ids[: n * batch_size].reshape(batch_size, n).T)


def iter_bptt(
    data: np.ndarray,
    num_steps: int,
    start: int = 0,
    rng: np.random.Generator | None = None,
    random_length: bool = False,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Windows ``(start_row, x[T,B], y[T,B])`` over a batchified stream, ``y`` = ``x`` one row on.

    T is ``num_steps`` (the last window may be shorter). With ``random_length`` T varies as in
    AWD-LSTM: around ``num_steps`` (half of it 5% of the time), std 5; scale the learning rate
    by T / num_steps. To resume, pass the saved next start row and restore ``rng``. ``x`` and
    ``y`` are views into ``data`` (in its dtype: take ``np.asarray(x, np.int64)`` for a model).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be positive, got {num_steps}")
    if random_length and rng is None:
        rng = np.random.default_rng()
    i = start
    while i < len(data) - 1:
        t = num_steps
        if random_length:
            assert rng is not None
            mean = num_steps if rng.random() < 0.95 else num_steps / 2
            t = max(min(5, num_steps), int(rng.normal(mean, 5)))
        t = min(t, len(data) - 1 - i)
        yield i, data[i : i + t], data[i + 1 : i + 1 + t]
        i += t


@dataclass
class SentenceBatch:
    """Sentences padded to the longest one in the batch (the Theano LSTM tutorial's prepare_data).

    Columns are ordered longest first (what ``pack_padded_sequence`` wants); ``index`` says which
    input sequence each column holds, e.g. to look up labels.
    """

    tokens: np.ndarray  # [T, B] int64, padding = pad_id after each sequence's end
    mask: np.ndarray  # [T, B] float32, 1 = real token, 0 = padding
    lengths: np.ndarray  # [B] int64
    index: np.ndarray  # [B] int64 positions in the input list

    def lm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Language-model inputs, targets and target mask: ``tokens[:-1]``, ``tokens[1:]``, ``mask[1:]``."""
        return self.tokens[:-1], self.tokens[1:], self.mask[1:]


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences as columns of a ``[T, B]`` array padded at the end, and its 0/1 mask."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    tokens = np.full((int(lengths.max(initial=0)), len(seqs)), pad_id, dtype=np.int64)
    for b, s in enumerate(seqs):
        tokens[: len(s), b] = s
    mask = (np.arange(tokens.shape[0])[:, None] < lengths[None, :]).astype(np.float32)
    return tokens, mask


def sentence_batches(
    seqs: Sequence[np.ndarray],
    batch_size: int,
    *,
    maxlen: int | None = None,
    sort: str = "none",
    shuffle: bool = False,
    rng: np.random.Generator | int | None = None,
    bucket_factor: int = 20,
    pad_id: int = 0,
    drop_last: bool = False,
) -> list[SentenceBatch]:
    """Group sequences into padded batches.

    - ``maxlen``: sequences longer than this are left out (the tutorial's filter); empty ones too.
    - ``sort``: ``none`` (input or shuffled order), ``length`` (all sorted by length, so each batch
      holds similar lengths and pads little), ``bucket`` (sorted within windows of
      ``batch_size * bucket_factor``: little padding, yet more varied batches than ``length``).
    - ``shuffle`` with ``rng`` (a seed or a Generator): shuffle the sequences, and when sorted,
      the order of the batches, reproducibly.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if sort not in ("none", "length", "bucket"):
        raise ValueError(f"sort must be 'none', 'length' or 'bucket', got {sort!r}")
    gen = np.random.default_rng(rng) if shuffle else None
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    order = np.flatnonzero((lengths > 0) & (lengths <= (maxlen if maxlen is not None else lengths.max(initial=0))))
    if gen is not None:
        order = gen.permutation(order)
    if sort != "none":
        window = max(1, len(order)) if sort == "length" else batch_size * bucket_factor
        windows = np.split(order, range(window, len(order), window))
        order = np.concatenate([w[np.argsort(lengths[w], kind="stable")] for w in windows])
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    if gen is not None and sort != "none":
        chunks = [chunks[i] for i in gen.permutation(len(chunks))]
    batches = []
    for idx in chunks:
        idx = idx[np.argsort(-lengths[idx], kind="stable")]
        tokens, mask = pad_batch([seqs[i] for i in idx], pad_id)
        batches.append(SentenceBatch(tokens, mask, lengths[idx], idx.astype(np.int64)))
    return batches


def sections(ids: np.ndarray, length: int, step: int = 1) -> np.ndarray:
    """Fixed-length windows of a stream, one every ``step`` tokens, as columns ``[length, N]``
    (the TensorFlow/Keras char-LSTM recipe). Take ``length + 1`` to train next-token prediction:
    ``x, y = s[:-1], s[1:]`` (or ``y = s[-1]`` for the next character only)."""
    if length < 1 or step < 1:
        raise ValueError(f"length and step must be positive, got {length} and {step}")
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) < length:
        return np.zeros((length, 0), dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(ids, length)[::step]
    return np.ascontiguousarray(windows.T)
