"""Training the reference engine: the SGD step, the tutorial's schedule, and a real corpus."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from unroll.config import ModelConfig
from unroll.data import batchify, iter_bptt
from unroll.errors import UnrollError
from unroll.reference import SGD, LanguageModel, train_sgd
from unroll.text import EOS, Vocab


def test_sgd_step_momentum_and_clipping():
    p = {"w": np.array([1.0, 1.0])}
    opt = SGD(p, lr=0.1, momentum=0.9, clip=1.0)
    assert opt.step({"w": np.array([3.0, 4.0])}) == pytest.approx(5.0)
    np.testing.assert_allclose(p["w"], [1 - 0.1 * 0.6, 1 - 0.1 * 0.8])  # clipped to norm 1
    opt.step({"w": np.array([0.0, 0.0])})
    np.testing.assert_allclose(p["w"], [1 - 0.06 - 0.1 * 0.9 * 0.6, 1 - 0.08 - 0.1 * 0.9 * 0.8])


def test_schedule_halves_the_learning_rate_when_the_loss_goes_up():
    cfg = ModelConfig(vocab_size=6, cell="rnn_tanh", emb_size=4, hidden_size=4, num_layers=1, init_scale=0.5)
    model = LanguageModel(cfg, seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2)), None) for _ in range(3)]
    history = train_sgd(model, batches, epochs=6, lr=50.0, evaluate_every=2)  # far too large: loss rises
    assert [h["epoch"] for h in history] == [0, 2, 4, 6]
    for before, after in zip(history, history[1:]):
        assert after["lr"] == (before["lr"] / 2 if after["loss"] > before["loss"] else before["lr"])
    assert any(h["lr"] < 50.0 for h in history)


def test_dropout_is_refused():
    cfg = ModelConfig(vocab_size=6, cell="lstm", emb_size=4, hidden_size=4, num_layers=1, dropout=0.5)
    with pytest.raises(UnrollError, match="dropout"):
        train_sgd(LanguageModel(cfg), [(np.zeros((2, 1), np.int64),) * 2 + (None,)], epochs=1)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_loss_falls_steadily_on_a_slice_of_ptb(mirror_dir, cell):
    lines = (mirror_dir / "ptb" / "ptb.train.txt").read_text().splitlines()[:600]
    tokens = [t for line in lines for t in line.split() + [EOS]]
    vocab = Vocab.build(Counter(tokens), max_size=200, specials=[EOS])
    ids = vocab.encode(tokens)
    data = batchify(ids, 16)
    batches = [(x, y, None) for _, x, y in iter_bptt(data, 20)]
    train, valid = batches[:-3], batches[-3:]
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, emb_size=24, hidden_size=24, num_layers=1,
                      init="uniform", init_scale=0.1, forget_bias=1.0 if cell == "lstm" else 0.0)
    model = LanguageModel(cfg, seed=0)
    history = train_sgd(model, train, epochs=4, lr=1.0, clip=5.0, truncate=None, carry_state=True,
                        eval_batches=valid)
    losses = [h["loss"] for h in history]
    assert losses[0] == pytest.approx(np.log(len(vocab)), rel=0.01)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.8, losses
    # the last record is the trained model's loss on the valid windows, state carried, by hand
    state, nll = None, []
    for x, y, _ in valid:
        logits, state = model.forward(x, state)
        logits = logits - logits.max(axis=-1, keepdims=True)
        nll.append(np.log(np.exp(logits).sum(axis=-1)) - np.take_along_axis(logits, y[..., None], -1)[..., 0])
    assert losses[-1] == pytest.approx(float(np.mean(np.concatenate([n.ravel() for n in nll]))), rel=1e-12)
