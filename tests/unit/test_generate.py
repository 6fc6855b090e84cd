"""Sampling is correct: frequencies match the (reshaped) softmax by a chi-square test, greedy is the
argmax, seeds reproduce across batches and engines; primes, <unk>, <eos> and min-length behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unroll import reference
from unroll.errors import UnrollError
from unroll.use.engine import LoadedModel, UnknownWordWarning
from unroll.use.generate import Piece, Sampling, _Detokenizer, generate, in_order, next_token_probs, stream
from tests.support.tiny_models import CHARS, WORD_SPEC, WORDS, char_lm, torch_model, word_lm

# chi-square critical values at significance 0.001 for 1..12 degrees of freedom
CHI2_999 = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909]
N = 4000
PRIME = "ab"


def chi_square(counts: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(statistic, critical value at 0.001) of ``counts`` against probabilities ``p`` (zeros left out)."""
    keep = p > 0
    expected = counts.sum() * p[keep]
    stat = float(((counts[keep] - expected) ** 2 / expected).sum())
    return stat, CHI2_999[int(keep.sum()) - 2]


def next_logits(lm: LoadedModel, prime: str = PRIME) -> np.ndarray:
    """The model's logits after ``"\\n" + prime`` (a character model continues a line)."""
    ids = [lm.vocab[c] for c in "\n" + prime]
    with torch.no_grad():
        logits, _ = lm.model(torch.tensor(ids).view(-1, 1))
    return logits[-1, 0].double().numpy()


def first_token_counts(lm: LoadedModel, seed: int = 0, **options) -> np.ndarray:
    """How often each character is the first one sampled after PRIME, over N samples (one batch)."""
    texts = generate(lm, PRIME, num_samples=N, max_tokens=1, seed=seed, **options)
    return np.bincount([lm.vocab[t[len(PRIME)]] for t in texts], minlength=len(lm.vocab))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def test_frequencies_match_the_softmax_at_temperature_1():
    lm = char_lm()
    logits = next_logits(lm)
    counts = first_token_counts(lm)
    stat, critical = chi_square(counts, softmax(logits))
    assert stat < critical
    # the test has power: the same counts are rejected against the temperature-0.5 distribution
    assert chi_square(counts, softmax(logits / 0.5))[0] > 3 * critical


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_divides_the_logits(temperature):
    lm = char_lm()
    logits = next_logits(lm)
    counts = first_token_counts(lm, seed=1, temperature=temperature)
    stat, critical = chi_square(counts, softmax(logits / temperature))
    assert stat < critical
    assert chi_square(counts, softmax(logits))[0] > critical


def test_top_k_keeps_the_k_most_likely_renormalized():
    lm = char_lm()
    logits = next_logits(lm)
    top = np.argsort(-logits)[:3]
    p = np.zeros_like(logits)
    p[top] = softmax(logits[top])
    counts = first_token_counts(lm, seed=2, top_k=3)
    assert counts[p == 0].sum() == 0 and (counts[top] > 0).all()
    stat, critical = chi_square(counts, p)
    assert stat < critical


def test_top_p_keeps_the_smallest_nucleus_renormalized():
    lm = char_lm()
    logits = next_logits(lm)
    full = softmax(logits)
    order = np.argsort(-full)
    nucleus = order[: int(np.searchsorted(np.cumsum(full[order]), 0.5)) + 1]  # first prefix with mass >= 0.5
    assert 1 < len(nucleus) < len(full)
    p = np.zeros_like(full)
    p[nucleus] = full[nucleus] / full[nucleus].sum()
    counts = first_token_counts(lm, seed=3, top_p=0.5)
    assert counts[p == 0].sum() == 0
    stat, critical = chi_square(counts, p)
    assert stat < critical


def test_next_token_probs_by_hand():
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    np.testing.assert_allclose(next_token_probs(logits, Sampling(top_k=2)), [[0, 0, 3 / 7, 4 / 7]])
    np.testing.assert_allclose(next_token_probs(logits, Sampling(top_p=0.65)), [[0, 0, 3 / 7, 4 / 7]])
    np.testing.assert_allclose(next_token_probs(logits, Sampling(top_p=0.75)), [[0, 2 / 9, 3 / 9, 4 / 9]])
    np.testing.assert_allclose(next_token_probs(logits, Sampling(), banned=[3]), [[1 / 6, 2 / 6, 3 / 6, 0]])
    sharp = next_token_probs(logits, Sampling(temperature=0.5))
    np.testing.assert_allclose(sharp, [[0.01, 0.04, 0.09, 0.16]] / np.float64(0.30))


def test_greedy_is_the_argmax_and_temperature_to_zero_is_greedy():
    lm = char_lm()
    text = generate(lm, PRIME, max_tokens=12, greedy=True)[0]
    ids = [CHARS[c] for c in "\n" + PRIME]
    with torch.no_grad():
        logits, state = lm.model(torch.tensor(ids).view(-1, 1))
        expect = ""
        for _ in range(12):
            nxt = int(logits[-1, 0].argmax())
            expect += CHARS.itos[nxt]
            logits, state = lm.model(torch.tensor([[nxt]]), state)
    assert text == PRIME + expect
    for options in ({"temperature": 0}, {"temperature": 1e-6}, {"top_k": 1}, {"top_p": 1e-9}):
        assert generate(lm, PRIME, max_tokens=12, seed=5, **options)[0] == text, options


def test_seeds_reproduce_and_batches_do_not_change_samples():
    lm = word_lm()
    options = dict(num_samples=3, max_tokens=15, seed=7, top_p=0.95)
    both = generate(lm, ["the cat", "a dog"], **options)
    assert both == generate(lm, ["the cat", "a dog"], **options)
    assert both[3:] == generate(lm, ["a dog"], **options)  # alone or batched: the same text
    assert both[:3] != generate(lm, ["the cat"], **{**options, "seed": 8})
    assert len(set(both[:3])) > 1  # samples of one prime differ from each other


@pytest.mark.parametrize("cell,window", [("lstm", 1), ("rnn_tanh", 1), ("gru", 1), ("qrnn", 2)])
def test_numpy_and_torch_engines_draw_the_same_samples(cell, window):
    model = torch_model(WORDS, cell=cell, dtype=torch.float64, tied=False, window=window)
    fast = LoadedModel(model, WORDS, WORD_SPEC)
    slow = LoadedModel(reference.LanguageModel(model.cfg, model.checkpoint_params()), WORDS, WORD_SPEC)
    for options in ({}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.8, "min_length": 3}, {"greedy": True}):
        args = dict(num_samples=4, max_tokens=20, seed=11, **options)
        assert generate(fast, ["the cat", "", "a"], **args) == generate(slow, ["the cat", "", "a"], **args)


def test_unk_is_forbidden_unless_allowed_and_min_length_holds_eos_back():
    lm = word_lm()
    with torch.no_grad():
        lm.model.decoder.bias[WORDS["<unk>"]] += 4.0  # <unk> now likely ...
        lm.model.decoder.bias[WORDS["<eos>"]] += 3.0  # ... and so is the end of the sentence
    pieces = list(stream(lm, "the", num_samples=50, max_tokens=8, seed=0))
    done = [p for p in pieces if p.done]
    assert not any("<unk>" in p.text for p in pieces)
    assert any(p.stopped == "eos" and p.tokens < 3 for p in done)
    allowed = generate(lm, "the", num_samples=50, max_tokens=8, seed=0, allow_unk=True)
    assert sum("<unk>" in t for t in allowed) > 10
    held = [p for p in stream(lm, "the", num_samples=50, max_tokens=8, seed=0, min_length=3) if p.done]
    assert all(p.tokens >= 3 for p in held) and any(p.stopped == "eos" for p in held)
    lines = generate(lm, "the", num_samples=20, max_tokens=8, seed=0, stop_at_eos=False)
    assert any("\n" in t for t in lines)  # past <eos>: a new line begins


def test_pieces_join_to_the_text_and_in_order_streams_sequence_by_sequence():
    lm = word_lm()
    pieces = list(stream(lm, ["the cat", "a"], num_samples=2, max_tokens=6, seed=3))
    assert [p.text for p in pieces[:4]] == ["the cat", "the cat", "a", "a"]  # primes come first
    ordered = list(in_order(pieces))
    assert sorted(ordered, key=lambda p: p.index) == ordered and len(ordered) == len(pieces)
    texts = ["".join(p.text for p in ordered if p.index == i) for i in range(4)]
    assert texts == generate(lm, ["the cat", "a"], num_samples=2, max_tokens=6, seed=3)
    shuffled = [Piece(1, 0, 1, "x"), Piece(0, 0, 0, "a"), Piece(1, 0, 1, "", done=True), Piece(2, 1, 0, "y"),
                Piece(0, 0, 0, "b", done=True), Piece(2, 1, 0, "z", done=True)]
    assert "".join(p.text for p in in_order(shuffled)) == "abxyz"


def test_word_pieces_detokenize_like_the_spec():
    tokens = ["He", "said", ",", "``", "it", "does", "n't", "''", ".", "<eos>", "Then", "(", "yes", ")", "!"]
    spec = type(WORD_SPEC)(level="word", unit="line", eos=True)
    detok = _Detokenizer(spec, [])
    joined = "".join(detok.add(t) for t in tokens)
    assert joined == 'He said, "it doesn\'t".\nThen (yes)!'


def test_prime_words_out_of_vocabulary_warn_and_unseen_characters_fail():
    with pytest.warns(UnknownWordWarning, match="zebra"):
        text = generate(word_lm(), "the zebra sat", max_tokens=3, seed=0)[0]
    assert text.startswith("the zebra sat")  # shown as written, read as <unk>
    with pytest.raises(UnrollError, match=r"character 'z' \(U\+007A\) never appears"):
        generate(char_lm(), "abz", max_tokens=3)
    assert generate(char_lm(), "", max_tokens=5, seed=0)[0] != ""  # no prime: a new line starts
    with pytest.raises(UnrollError, match="top-p"):
        generate(char_lm(), "a", top_p=1.5)
