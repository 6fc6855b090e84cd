"""BPTT against finite differences (float64, relative error < 1e-6 per entry), and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unroll.cli import main
from unroll.config import ModelConfig
from unroll.reference import LanguageModel, check_gradients, relative_error
from unroll.reference.gradcheck import random_problem


def check(cell: str, layers: int, truncate: int | None, tied: bool, objective: str, masked: bool = True,
          window: int = 1, emb: int = 4) -> dict:
    cfg = ModelConfig(vocab_size=9, cell=cell, emb_size=emb, hidden_size=4, num_layers=layers,
                      tie_weights=tied, init="uniform", init_scale=0.5, qrnn_window=window)
    model = LanguageModel(cfg, seed=7)
    rng = np.random.default_rng(1)
    inputs, targets, mask, state = random_problem(model, 5, 3, rng, masked=masked)
    return check_gradients(model, inputs, targets, mask, state, truncate, objective, rng=rng)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru", "qrnn"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("objective", ["loss", "outputs"])
def test_full_bptt_with_masks(cell, layers, objective):
    errors = check(cell, layers, None, False, objective)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "qrnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_truncated_bptt_against_the_truncated_objective(cell, layers):
    for objective in ("loss", "outputs"):
        errors = check(cell, layers, 1, False, objective)
        assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("window,truncate", [(2, None), (3, None), (2, 1), (3, 2)])
def test_qrnn_window_full_and_truncated(window, truncate):
    """The first layer reads earlier inputs, some of them from before the batch (the carried state)
    and, when truncated, from before a term's restart (constants of the truncated objective)."""
    for objective in ("loss", "outputs"):
        errors = check("qrnn", 2, truncate, False, objective, window=window)
        assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "qrnn"])
def test_tied_weights(cell):
    errors = check(cell, 2, None, True, "loss", masked=False)
    assert "decoder.weight" not in errors and max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell,window,truncate", [("lstm", 1, None), ("gru", 1, 2), ("qrnn", 2, None), ("qrnn", 2, 1)])
def test_tied_through_a_projection(cell, window, truncate):
    """Tied with E != H: the decoder reads ``h_top W_proj^T``; the embedding gets both its gradients."""
    for objective in ("loss", "outputs"):
        errors = check(cell, 2, truncate, True, objective, window=window, emb=3)
        assert "projection.weight" in errors and "decoder.weight" not in errors, errors
        assert max(errors.values()) < 1e-6, errors


def test_the_check_can_fail():
    """Truncated gradients are not the gradients of the untruncated loss: the checker must see it."""
    cfg = ModelConfig(vocab_size=9, cell="lstm", emb_size=4, hidden_size=4, num_layers=1, init_scale=0.5)
    model = LanguageModel(cfg, seed=7)
    inputs, targets, mask, state = random_problem(model, 5, 3, np.random.default_rng(1))
    full_objective_truncated_grads = model.loss_and_grads(inputs, targets, mask, state, truncate=1)[1]
    model.loss_and_grads = lambda *a: (None, full_objective_truncated_grads, None)  # a wrong backward
    errors = check_gradients(model, inputs, targets, mask, state)
    assert errors["rnn.weight_hh_l0"] > 1e-3


def test_relative_error():
    np.testing.assert_array_equal(relative_error(np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 3.0])), [0, 0, 0.5])


def test_cli(capsys):
    assert main(["gradcheck", "--model", "rnn", "--layers", "2", "--truncate", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["worst"] < 1e-6
    assert set(report["max_relative_error"]["loss"]) >= {"rnn.weight_hh_l1", "decoder.weight"}
    assert main(["gradcheck", "--model", "lstm"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["gradcheck", "--model", "gru", "--layers", "2"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["gradcheck", "--truncate", "-1"]) == 2
    assert "unroll: error: --truncate" in capsys.readouterr().err
    assert main(["gradcheck", "--seed", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "unroll: error: --seed must be >= 0, got -1"
