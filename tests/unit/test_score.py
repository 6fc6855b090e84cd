"""Scores are the log-softmax by hand, batched equals one by one, the NumPy engine gives the torch
engine's scores, ranking orders by probability; surprisal renders as ANSI and HTML."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unroll.errors import UnrollError
from unroll.use import surprisal
from unroll.use.engine import UnknownWordWarning, load
from unroll.use.score import parse_groups, rank, score
from tests.support.tiny_models import CHARS, WORDS, char_lm, save, word_lm

LINES = ["the cat sat on the mat .", "a dog ran", "the", "the dog sat on a cat , a cat sat on a dog .", "ran ran ran"]


def by_hand(lm, tokens: list[str]) -> np.ndarray:
    """log softmax of the model's logits over ``tokens[:-1]`` at ``tokens[1:]``."""
    ids = torch.tensor([lm.vocab[t] for t in tokens])
    with torch.no_grad():
        logits, _ = lm.model(ids[:-1].view(-1, 1))
    return torch.log_softmax(logits[:, 0].double(), -1)[torch.arange(len(ids) - 1), ids[1:]].numpy()


def test_score_is_the_sum_of_log_softmax_with_eos_counted():
    lm = word_lm(dtype=torch.float64)
    s = score(lm, ["the cat sat"])[0]
    expect = by_hand(lm, ["<eos>", "the", "cat", "sat", "<eos>"])  # after the previous <eos>, <eos> predicted
    assert s.context == ["<eos>"] and s.tokens == ["the", "cat", "sat", "<eos>"] and s.count == 4
    np.testing.assert_allclose(s.logprobs, expect, rtol=0, atol=1e-12)
    assert s.logprob == pytest.approx(expect.sum(), abs=1e-12)
    assert s.perplexity == pytest.approx(math.exp(-expect.sum() / 4))


def test_character_lines_are_scored_after_a_newline_with_their_newline():
    lm = char_lm(dtype=torch.float64)
    s = score(lm, ["bad cab"])[0]
    assert s.context == ["\n"] and "".join(s.tokens) == "bad cab\n" and s.count == 8
    np.testing.assert_allclose(s.logprobs, by_hand(lm, list("\nbad cab\n")), atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_batched_equals_one_by_one(dtype, tol):
    lm = word_lm(dtype=dtype)
    batched = score(lm, LINES, batch_size=3)
    for line, s in zip(LINES, batched):
        alone = score(lm, [line], batch_size=1)[0]
        assert s.text == line and s.tokens == alone.tokens
        np.testing.assert_allclose(s.logprobs, alone.logprobs, rtol=0, atol=tol)


@pytest.mark.parametrize("cell,tied", [("lstm", False), ("lstm", True), ("rnn_tanh", False), ("qrnn", True)])
def test_numpy_engine_scores_equal_torch_scores_for_the_same_checkpoint(tmp_path, cell, tied):
    directory = save(tmp_path / "ckpt", word_lm(cell=cell, tied=tied, window=2 if cell == "qrnn" else 1))
    fast = score(load(directory, "torch", dtype=torch.float64), LINES, batch_size=2)
    slow = score(load(directory, "numpy"), LINES, batch_size=4)
    for a, b in zip(fast, slow):
        assert a.tokens == b.tokens
        np.testing.assert_allclose(a.logprobs, b.logprobs, rtol=0, atol=1e-10)
    float32 = score(load(directory, "torch"), LINES)
    np.testing.assert_allclose([s.logprob for s in float32], [s.logprob for s in slow], atol=1e-4)


def test_rank_orders_each_group_by_probability_or_per_token():
    lm = word_lm(dtype=torch.float64)
    groups = [["the cat sat", "sat cat the", "the", "a dog ran on the mat ."], ["ran ran", "the dog"]]
    flat = score(lm, [c for g in groups for c in g])
    totals = [[s.logprob for s in flat[:4]], [s.logprob for s in flat[4:]]]
    per_token = [[s.logprob / s.count for s in flat[:4]], [s.logprob / s.count for s in flat[4:]]]
    ranked = rank(lm, groups, batch_size=2)
    assert [[j for j, _ in g] for g in ranked] == [list(np.argsort(-np.array(t), kind="stable")) for t in totals]
    normalized = rank(lm, groups, normalize=True)
    assert [[j for j, _ in g] for g in normalized] == [list(np.argsort(-np.array(t), kind="stable")) for t in per_token]
    assert [j for j, _ in ranked[0]] != [j for j, _ in normalized[0]]  # length normalization matters here
    assert ranked[0][0][1].text == groups[0][ranked[0][0][0]]


def test_parse_groups_splits_on_blank_lines():
    text = "\n\na b\nc d\n\n  \n\ne f\n\ng\n"
    assert parse_groups(text) == [["a b", "c d"], ["e f"], ["g"]]


def test_unknown_words_are_unk_with_a_warning_and_unseen_characters_fail():
    with pytest.warns(UnknownWordWarning, match="'zebra', 'gnu'"):
        s = score(word_lm(), ["the zebra sat", "a gnu"])
    assert s[0].tokens == ["the", "zebra", "sat", "<eos>"] and s[0].unknown == 1 and s[1].unknown == 1
    with pytest.raises(UnrollError, match=r"line 2: character 'z'"):
        score(char_lm(), ["abc", "zz"], labels=["line 1", "line 2"])
    assert "z" not in CHARS and "zebra" not in WORDS


def test_surprisal_renders_as_ansi_and_self_contained_html():
    s = score(word_lm(), ["the cat sat"])[0]
    line = surprisal.ansi_line(s, " ")
    assert line.count("\x1b[48;5;") == s.count and "cat" in line and "<eos>" in line
    assert "surprisal" in surprisal.ansi_legend()
    page = surprisal.html_page([s], ["line 1 <x>"], " ", "scores & more")
    assert page.startswith("<!doctype html>") and page.count('class="t"') == s.count
    assert "&lt;eos&gt;" in page and "line 1 &lt;x&gt;" in page and "scores &amp; more" in page
    assert "<script" not in page and "http" not in page  # nothing to fetch: opens offline
    assert surprisal.bits(math.log(0.5)) == pytest.approx(1.0)
