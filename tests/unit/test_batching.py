import numpy as np
import pytest

from unroll.data import batchify, iter_bptt, pad_batch, sections, sentence_batches

ALPHABET = np.arange(26)  # a=0 ... z=25


def test_batchify_alphabet_layout():
    # pytorch/examples: the alphabet with batch size 4 -> columns abcdef, ghijkl, mnopqr, stuvwx.
    b = batchify(ALPHABET, 4)
    assert b.shape == (6, 4) and b.dtype == np.int64
    assert b[:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # a..f
    assert b[0].tolist() == [0, 6, 12, 18]  # a g m s
    assert b[-1].tolist() == [5, 11, 17, 23]  # f l r x; y and z are dropped


def test_iter_bptt_targets_are_inputs_shifted_by_one():
    data = batchify(ALPHABET, 2)  # [13, 2]
    windows = list(iter_bptt(data, 5))
    assert [(s, x.shape[0]) for s, x, _ in windows] == [(0, 5), (5, 5), (10, 2)]
    for start, x, y in windows:
        assert np.array_equal(x, data[start : start + len(x)])
        assert np.array_equal(y, data[start + 1 : start + 1 + len(x)])
    _, x, y = windows[0]
    assert x[:, 1].tolist() == [13, 14, 15, 16, 17] and y[:, 1].tolist() == [14, 15, 16, 17, 18]
    # Every token but the first of each column is a target exactly once.
    assert sum(len(y) for _, _, y in windows) == len(data) - 1


def test_iter_bptt_resume_and_random_length():
    data = batchify(np.arange(4000), 4)
    full = [(s, len(x)) for s, x, _ in iter_bptt(data, 35, rng=np.random.default_rng(1), random_length=True)]
    lengths = [t for _, t in full]
    assert len(set(lengths)) > 3 and min(lengths[:-1]) >= 5
    rng = np.random.default_rng(1)
    it = iter_bptt(data, 35, rng=rng, random_length=True)
    head = [next(it) for _ in range(3)]
    next_start = head[-1][0] + len(head[-1][1])
    state = rng.bit_generator.state
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = state
    rest = [(s, len(x)) for s, x, _ in iter_bptt(data, 35, start=next_start, rng=rng2, random_length=True)]
    assert [(s, len(x)) for s, x, _ in head] + rest == full


def test_pad_batch_mask():
    tokens, mask = pad_batch([np.array([5, 6, 7]), np.array([8])], pad_id=0)
    assert tokens.tolist() == [[5, 8], [6, 0], [7, 0]]
    assert mask.tolist() == [[1, 1], [1, 0], [1, 0]]


def test_sentence_batches_maxlen_masks_and_lm_shift():
    seqs = [np.arange(1, n + 1) for n in (3, 1, 5, 2, 0, 9)]
    batches = sentence_batches(seqs, 2, maxlen=5)
    assert [b.index.tolist() for b in batches] == [[0, 1], [2, 3]]  # 0-length and 9 > maxlen left out
    b = batches[1]  # longest first
    assert b.tokens.T.tolist() == [[1, 2, 3, 4, 5], [1, 2, 0, 0, 0]]
    assert b.mask.T.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert b.lengths.tolist() == [5, 2]
    x, y, m = b.lm()
    assert np.array_equal(x[1:], y[:-1]) and m.sum() == 5


def test_sentence_batches_sorted_and_seeded_shuffle():
    rng = np.random.default_rng(0)
    seqs = [np.ones(int(n), dtype=np.int64) for n in rng.integers(1, 30, size=50)]
    by_len = sentence_batches(seqs, 5, sort="length")
    flat = [int(n) for b in by_len for n in b.lengths]
    assert len(flat) == 50
    assert all(b.lengths.max() <= c.lengths.min() for b, c in zip(by_len, by_len[1:]))
    a = sentence_batches(seqs, 5, sort="bucket", shuffle=True, rng=7, bucket_factor=2)
    b = sentence_batches(seqs, 5, sort="bucket", shuffle=True, rng=7, bucket_factor=2)
    c = sentence_batches(seqs, 5, sort="bucket", shuffle=True, rng=8, bucket_factor=2)
    assert [x.index.tolist() for x in a] == [x.index.tolist() for x in b]
    assert [x.index.tolist() for x in a] != [x.index.tolist() for x in c]
    assert sorted(i for x in a for i in x.index) == list(range(50))


def test_sections_with_step():
    s = sections(np.arange(10), 4, step=3)
    assert s.shape == (4, 3)
    assert s.T.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(ValueError):
        sections(np.arange(10), 0)
