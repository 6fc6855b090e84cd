"""Checkpoints written by an earlier unroll (0c7f59a, tests/data/legacy) still load and give the same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unroll.models import load_model
from unroll.models.classifier import load_classifier
from unroll import reference

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
INPUTS = torch.tensor(EXPECTED["inputs"]).T  # [T, B]


@pytest.mark.parametrize("name", ["lm_lstm", "lm_qrnn_window2", "lm_gru_tied"])
def test_a_legacy_language_model_gives_its_recorded_log_probs(name):
    model, ckpt = load_model(LEGACY / name)
    with torch.no_grad():
        logits, _ = model(INPUTS)
    got = torch.log_softmax(logits.float(), -1)[:, 0]
    np.testing.assert_allclose(got.numpy(), np.array(EXPECTED["outputs"][name]), rtol=0, atol=1e-6)
    assert ckpt.extra["text"]["level"] == "whitespace"


@pytest.mark.parametrize("name", ["lm_lstm", "lm_qrnn_window2", "lm_gru_tied"])
def test_a_legacy_language_model_loads_in_the_numpy_engine_too(name):
    model, _ = reference.load_model(LEGACY / name)
    probs, _ = model.probabilities(INPUTS.numpy())
    np.testing.assert_allclose(np.log(probs[:, 0]), np.array(EXPECTED["outputs"][name]), rtol=0, atol=1e-5)


def test_a_legacy_classifier_gives_its_recorded_probabilities():
    model, ckpt = load_classifier(LEGACY / "classifier")
    with torch.no_grad():
        probs = torch.softmax(model(INPUTS, torch.tensor([INPUTS.shape[0]])).float(), -1)
    np.testing.assert_allclose(probs.numpy(), np.array(EXPECTED["outputs"]["classifier"]), rtol=0, atol=1e-6)
    assert ckpt.labels == ["neg", "pos"]
