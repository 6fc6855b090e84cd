"""The evaluation layer: the stream protocol gives the same numbers on both engines, any window
length, and by hand; the NumPy engine's token-weighted mean over masked batches; classification
error and confusion on a classifier whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unroll.errors import DataError, UnrollError
from unroll.evaluate import evaluate, mean_loss
from unroll.evaluate.classify import classification_report, pred_error, predict_probs
from unroll.reference import LanguageModel as NumpyModel
from tests.support.tiny_models import WORDS, torch_model


def numpy_twin(model: torch.nn.Module) -> NumpyModel:
    """The NumPy engine with ``model``'s weights, in float64."""
    twin = NumpyModel(model.cfg, dtype=np.float64)
    for name, p in model.state_dict().items():
        twin.params[name][...] = p.double().numpy()
    return twin


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "qrnn"])
@pytest.mark.parametrize("batch_size,bptt", [(1, 7), (3, 5)])
def test_numpy_and_torch_engines_give_the_same_numbers(cell, batch_size, bptt):
    model = torch_model(WORDS, cell=cell, dtype=torch.float64, window=2 if cell == "qrnn" else 1)
    ids = np.random.default_rng(1).integers(0, len(WORDS), size=61)
    a, b = evaluate(model, ids, batch_size, bptt), evaluate(numpy_twin(model), ids, batch_size, bptt)
    assert a["tokens"] == b["tokens"] == (61 // batch_size - 1) * batch_size
    for key in ("loss", "ppl", "bits_per_token", "nll"):
        assert b[key] == pytest.approx(a[key], rel=1e-12, abs=0), key


def test_numpy_stream_carries_state_and_matches_a_hand_computed_pass():
    twin = numpy_twin(torch_model(WORDS, dtype=torch.float64))
    ids = np.random.default_rng(2).integers(0, len(WORDS), size=41)
    short, whole = evaluate(twin, ids, batch_size=1, bptt=3), evaluate(twin, ids, batch_size=1, bptt=100)
    logits, _ = twin.forward(ids[:-1].reshape(-1, 1))
    logits = logits[:, 0] - logits[:, 0].max(axis=1, keepdims=True)
    by_hand = float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(40), ids[1:]]))
    assert short["tokens"] == 40
    assert short["loss"] == pytest.approx(by_hand, rel=1e-12) and whole["loss"] == pytest.approx(by_hand, rel=1e-12)
    assert short["bits_per_token"] == pytest.approx(by_hand / math.log(2), rel=1e-12)
    assert short["nll"] == pytest.approx(by_hand * 40, rel=1e-12)
    chunks = [(ids[i:i + 4, None], ids[i + 1:i + 5, None], None) for i in range(0, 40, 4)]
    assert mean_loss(twin, chunks, carry_state=True) == pytest.approx(by_hand, rel=1e-12)
    assert abs(mean_loss(twin, chunks) - by_hand) > 1e-6  # a zero state at each window differs


def test_mean_loss_weights_tokens_not_batches():
    twin = numpy_twin(torch_model(WORDS, dtype=torch.float64))
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, len(WORDS), size=(2, 6, 2))
    mask = np.ones((6, 2))
    mask[2:, 1] = 0  # the second batch has 8 real tokens, the first 12
    one = twin.loss(x, y, None)[0], twin.loss(x, y, mask)[0]
    assert mean_loss(twin, [(x, y, None), (x, y, mask)]) == pytest.approx((12 * one[0] + 8 * one[1]) / 20, rel=1e-14)
    assert mean_loss(twin, [(x, y, None), (x, y, mask)]) != pytest.approx((one[0] + one[1]) / 2, rel=1e-6)


def test_bad_requests_are_errors_not_tracebacks():
    twin = numpy_twin(torch_model(WORDS, dtype=torch.float64))
    with pytest.raises(UnrollError, match="NumPy engine has no bf16"):
        evaluate(twin, np.arange(20) % len(WORDS), precision="bf16")
    for model in (twin, torch_model(WORDS)):
        with pytest.raises(DataError, match="too few to evaluate with batch size 10"):
            evaluate(model, np.arange(15) % len(WORDS), batch_size=10)


class FirstTokenClassifier(torch.nn.Module):
    """Predicts class ``x[0] % 3`` with certainty: a classifier whose errors are known."""

    cfg = type("cfg", (), {"num_classes": 3})

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.scale * torch.nn.functional.one_hot(x[0] % 3, 3).float()


def test_classification_error_probabilities_and_confusion_keep_input_order():
    seqs = [np.array([0, 1, 2]), np.array([4]), np.array([2, 2]), np.array([5, 0, 0, 0])]  # classes 0 1 2 2
    y = np.array([0, 2, 2, 1])  # the second and the last are wrong
    probs = predict_probs(FirstTokenClassifier(), seqs, batch_size=2)
    assert probs.argmax(1).tolist() == [0, 1, 2, 2]  # in input order, though batched by length
    assert pred_error(FirstTokenClassifier(), seqs, y, batch_size=2) == 0.5
    report = classification_report(probs, y, ["a", "b", "c"])
    assert report["error"] == 0.5 and report["accuracy"] == 0.5 and report["examples"] == 4
    assert report["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert pred_error(FirstTokenClassifier(), [], np.array([])) == 0.0
