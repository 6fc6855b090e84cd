"""AWD-LSTM's regularizers: separate input / hidden / output dropout, weight dropout (DropConnect)
on the recurrent weights, and the AR / TAR activation penalties, in the model and in training."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from unroll.config import ModelConfig, TrainConfig
from unroll.errors import UnrollError
from unroll.models import LanguageModel
from unroll.models import language_model as lm_module
from unroll.models import qrnn as qrnn_module
from unroll.reference import LanguageModel as ReferenceModel
from unroll.reference import train_sgd
from unroll.train import train

V = 13


def make(cell: str = "lstm", seed: int = 0, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    settings = dict(vocab_size=V, cell=cell, emb_size=6, hidden_size=6, num_layers=2, init_scale=0.5)
    settings.update(kw)
    return LanguageModel(ModelConfig(**settings)).to(torch.float64)


def tokens(T: int, B: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


def test_input_and_hidden_dropout_default_to_dropout():
    cfg = ModelConfig(vocab_size=V, dropout=0.4)
    assert (cfg.p_input, cfg.p_hidden) == (0.4, 0.4)
    cfg = ModelConfig(vocab_size=V, dropout=0.4, input_dropout=0.65, hidden_dropout=0.25)
    assert (cfg.p_input, cfg.p_hidden) == (0.65, 0.25)
    assert ModelConfig(vocab_size=V, num_layers=1, dropout=0.4).p_hidden == 0.0  # nothing between layers
    assert not ModelConfig(vocab_size=V).regularized
    assert ModelConfig(vocab_size=V, weight_dropout=0.2).regularized


@pytest.mark.parametrize("field", ["input_dropout", "hidden_dropout", "weight_dropout"])
def test_dropout_settings_out_of_range_are_refused(field):
    with pytest.raises(UnrollError, match=field):
        ModelConfig(vocab_size=V, **{field: 1.0})


@pytest.mark.parametrize("cell", ["lstm", "qrnn"])
def test_each_connection_gets_its_own_rate(cell, monkeypatch):
    """Locked dropout on the input, between the layers and on the output, each at its own p."""
    seen = []

    def record(fn, p_at):
        def wrapped(*args):
            seen.append(args[p_at])
            return fn(*args)
        return wrapped

    monkeypatch.setattr(lm_module, "locked_dropout", record(lm_module.locked_dropout, 1))  # (x, p, training)
    monkeypatch.setattr(lm_module, "locked_mask", record(lm_module.locked_mask, 2))  # (batch, size, p, like)
    monkeypatch.setattr(qrnn_module, "locked_dropout", record(qrnn_module.locked_dropout, 1))
    model = make(cell, dropout=0.4, input_dropout=0.65, hidden_dropout=0.25, locked_dropout=True).train()
    model(tokens(5, 3))
    assert seen == [0.65, 0.25, 0.4]  # input, between layers 0 and 1, output
    seen.clear()
    model.eval()(tokens(5, 3))
    assert seen == []


def fixed_masks(monkeypatch, module) -> list[torch.Tensor]:
    """Replace ``module.keep_mask`` by seeded 0 / 2 masks; returns the masks it hands out."""
    drawn = []

    def keep_mask(shape, p, like):
        g = torch.Generator().manual_seed(len(drawn))
        mask = (torch.rand(tuple(shape), generator=g) >= 0.5).to(like.dtype) * 2.0
        drawn.append(mask)
        return mask

    monkeypatch.setattr(module, "keep_mask", keep_mask)
    return drawn


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_weight_dropout_is_one_dropconnect_mask_on_weight_hh(cell, monkeypatch):
    """Training with weight dropout == evaluating a copy whose weight_hh was multiplied by the mask."""
    model = make(cell, weight_dropout=0.5)
    drawn = fixed_masks(monkeypatch, lm_module)
    x = tokens(7, 3)
    for kw in ({}, {"lengths": [7, 2, 5]}):
        drawn.clear()
        out, state = model.train()(x, **kw)
        assert len(drawn) == 2  # one mask per layer per batch, shared by all time steps
        masked = copy.deepcopy(model)
        with torch.no_grad():
            for k, mask in enumerate(drawn):
                getattr(masked.rnn, f"weight_hh_l{k}").mul_(mask)
        ref, ref_state = masked.eval()(x, **kw)
        mask_t = torch.arange(7)[:, None] < torch.tensor(kw.get("lengths", [7] * 3))[None, :]
        torch.testing.assert_close(out[mask_t], ref[mask_t], rtol=0, atol=1e-12)
        for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (state, ref_state))):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_qrnn_weight_dropout_masks_weight_ih(monkeypatch):
    model = make("qrnn", weight_dropout=0.5)
    drawn = fixed_masks(monkeypatch, qrnn_module)
    x = tokens(7, 3)
    out, state = model.train()(x)
    assert len(drawn) == 2
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for k, mask in enumerate(drawn):
            getattr(masked.rnn, f"weight_ih_l{k}").mul_(mask)
    ref, ref_state = masked.eval()(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(state, ref_state, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "qrnn"])
def test_activation_penalty_is_ar_plus_tar_of_the_last_layer(cell):
    model = make(cell)  # no dropout: the dropped and raw outputs are the same
    x, y = tokens(8, 3), tokens(8, 3, seed=2)
    loss, _, penalty = model.train()(x, targets=y, activation_reg=(2.0, 1.0))
    h = model.rnn(model.embedding(x))[0]
    expected = 2.0 * h.pow(2).mean() + 1.0 * (h[1:] - h[:-1]).pow(2).mean()
    torch.testing.assert_close(penalty, expected.float())
    plain, _ = model(x, targets=y)
    torch.testing.assert_close(loss, plain)  # the loss itself stays the cross-entropy
    penalty.backward()
    assert model.rnn.weight_ih_l1.grad.abs().sum() > 0
    assert model.eval()(x, targets=y, activation_reg=(2.0, 1.0))[2] == 0


def test_training_with_every_regularizer_learns(tmp_path: Path):
    text = ("the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n") * 20
    path = tmp_path / "tiny.txt"
    path.write_text(text, encoding="utf-8")
    cfg = TrainConfig(data=str(path), level="char", batch_size=4, bptt=8, eval_batch_size=4, test_batch_size=4,
                      optimizer="adam", lr=0.01, clip=1.0, schedule="constant", epochs=3, ar=2.0, tar=1.0)
    model = dict(emb_size=12, hidden_size=12, num_layers=2, dropout=0.2, input_dropout=0.3, hidden_dropout=0.1,
                 weight_dropout=0.2, emb_dropout=0.05, locked_dropout=True, tie_weights=True)
    result = train(cfg, model, tmp_path / "run")
    assert result.stopped == "finished"
    assert math.isfinite(result.best_valid["loss"])
    assert result.best_valid["ppl"] < 0.6 * len(set(text))  # well below a uniform guess over the characters


def test_the_reference_engine_refuses_weight_dropout():
    cfg = ModelConfig(vocab_size=V, emb_size=4, hidden_size=4, num_layers=1, weight_dropout=0.3)
    with pytest.raises(UnrollError, match="no dropout"):
        train_sgd(ReferenceModel(cfg), [], epochs=1)
