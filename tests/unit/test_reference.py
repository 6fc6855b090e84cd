"""The NumPy reference engine: known numbers, state handling, masks, truncation, save/load."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from unroll.checkpoint import parameter_shapes
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.init import init_params
from unroll.reference import LanguageModel, load_model, next_token_distribution, sample_sentence, save_model
from unroll.reference.gradcheck import random_problem

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def tiny(cell: str = "lstm", layers: int = 2, tied: bool = False, dtype=np.float64, **kw) -> LanguageModel:
    cfg = ModelConfig(vocab_size=13, cell=cell, emb_size=6, hidden_size=6, num_layers=layers,
                      tie_weights=tied, init="uniform", init_scale=0.5, **kw)
    return LanguageModel(cfg, dtype=dtype, seed=3)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("init", ["fan_in", "uniform"])
def test_loss_at_init_is_log_vocab(cell, init):
    cfg = ModelConfig(vocab_size=500, cell=cell, emb_size=32, hidden_size=32, num_layers=2, init=init)
    model = LanguageModel(cfg, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 500, (20, 8)), rng.integers(0, 500, (20, 8))
    loss, _ = model.loss(x, y)
    assert abs(loss - math.log(500)) / math.log(500) < 0.01


@pytest.mark.parametrize("tied", [False, True])
def test_parameters_have_checkpoint_names_and_shapes(tied):
    model = tiny(tied=tied)
    assert {k: v.shape for k, v in model.params.items()} == parameter_shapes(model.cfg)
    _, grads, _ = model.loss_and_grads(np.zeros((3, 2), np.int64), np.ones((3, 2), np.int64))
    assert list(grads) == list(parameter_shapes(model.cfg))


def test_init_options():
    cfg = ModelConfig(vocab_size=10, cell="lstm", emb_size=4, hidden_size=4, num_layers=1, init="fan_in",
                      orthogonal_recurrent=True, forget_bias=1.0)
    p = LanguageModel(cfg).params
    for gate in range(4):
        block = p["rnn.weight_hh_l0"][4 * gate : 4 * gate + 4]
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(p["rnn.bias_ih_l0"], [0] * 4 + [1] * 4 + [0] * 8)
    assert np.abs(p["embedding.weight"]).max() <= 1 / math.sqrt(10)
    assert np.abs(p["rnn.weight_ih_l0"]).max() <= 1 / math.sqrt(4)


@pytest.mark.parametrize("cell", CELLS)
def test_whole_equals_chunked_with_carried_state(cell):
    model = tiny(cell)
    rng = np.random.default_rng(1)
    x, _, mask, state = random_problem(model, 9, 4, rng)
    whole, final = model.forward(x, state, mask)
    chunks, s = [], state
    for a, b in [(0, 4), (4, 5), (5, 9)]:
        logits, s = model.forward(x[a:b], s, mask[a:b])
        chunks.append(logits)
    np.testing.assert_allclose(np.concatenate(chunks), whole, rtol=0, atol=1e-14)
    for u, v in zip(final, s):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_masked_steps_carry_state_unchanged_and_add_nothing(cell):
    model = tiny(cell)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 13, (7, 3)), rng.integers(0, 13, (7, 3))
    mask = np.ones((7, 3))
    mask[4:, 1] = 0  # sequence 1 has 4 real tokens
    _, final = model.forward(x, mask=mask)
    _, at_4 = model.forward(x[:4], mask=mask[:4])
    _, alone = model.forward(x[:4, 1:2])
    for a, b, c in zip(final, at_4, alone):  # layer by layer, h (and c) of sequence 1
        np.testing.assert_array_equal(np.asarray(a)[..., 1, :], np.asarray(b)[..., 1, :])
        np.testing.assert_allclose(np.asarray(a)[..., 1, :], np.asarray(c)[..., 0, :], rtol=0, atol=1e-15)
    # the padding's tokens and targets change nothing: not the loss, not a gradient
    x2, y2 = x.copy(), y.copy()
    x2[4:, 1], y2[4:, 1] = 0, 0
    l1, g1, _ = model.loss_and_grads(x, y, mask)
    l2, g2, _ = model.loss_and_grads(x2, y2, mask)
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("cell", CELLS)
def test_batched_equals_one_by_one(cell):
    model = tiny(cell)
    rng = np.random.default_rng(3)
    lengths = [6, 2, 4]
    x, y = rng.integers(0, 13, (6, 3)), rng.integers(0, 13, (6, 3))
    mask = (np.arange(6)[:, None] < np.array(lengths)).astype(float)
    total, grads, _ = model.loss_and_grads(x, y, mask)
    n = sum(lengths)
    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    loss_sum = 0.0
    for b, length in enumerate(lengths):
        loss, g, _ = model.loss_and_grads(x[:length, b : b + 1], y[:length, b : b + 1])
        loss_sum += loss * length / n
        for k in g:
            summed[k] += g[k] * length / n
    assert total == pytest.approx(loss_sum, rel=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-10, atol=1e-15)


def test_no_peeking_at_the_future():
    model = tiny("lstm")
    rng = np.random.default_rng(4)
    x = rng.integers(0, 13, (8, 2))
    logits, _ = model.forward(x)
    x2 = x.copy()
    x2[5:] = rng.integers(0, 13, (3, 2))
    logits2, _ = model.forward(x2)
    np.testing.assert_array_equal(logits[:5], logits2[:5])
    assert not np.allclose(logits[5:], logits2[5:])


@pytest.mark.parametrize("cell", CELLS)
def test_truncation(cell):
    model = tiny(cell)
    rng = np.random.default_rng(5)
    x, y, mask, state = random_problem(model, 7, 3, rng)
    _, full, _ = model.loss_and_grads(x, y, mask, state)
    _, long, _ = model.loss_and_grads(x, y, mask, state, truncate=6)  # T-1: nothing is cut
    _, short, _ = model.loss_and_grads(x, y, mask, state, truncate=1)
    for k in full:
        np.testing.assert_allclose(long[k], full[k], rtol=1e-12, atol=1e-16)
    # the cut paths only reach the recurrence: the decoder's gradient is the same
    np.testing.assert_array_equal(short["decoder.bias"], full["decoder.bias"])
    assert not np.allclose(short["rnn.weight_hh_l0"], full["rnn.weight_hh_l0"])


def _tutorial():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "reference_speed.py"
    spec = importlib.util.spec_from_file_location("reference_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("truncate", [0, 2, 4, None])
def test_matches_the_tutorials_bptt(truncate):
    """One-hot embedding and zero biases make our model the tutorial's: U = W_ih, W = W_hh, V = decoder."""
    V, H, T = 9, 4, 8
    tutorial = _tutorial().RNNNumpy(V, H, bptt_truncate=T if truncate is None else truncate, seed=1)
    cfg = ModelConfig(vocab_size=V, cell="rnn_tanh", emb_size=V, hidden_size=H, num_layers=1)
    params = {name: np.zeros(shape) for name, shape in parameter_shapes(cfg).items()}
    params["embedding.weight"] = np.eye(V)
    params["rnn.weight_ih_l0"], params["rnn.weight_hh_l0"] = tutorial.U, tutorial.W
    params["decoder.weight"] = tutorial.V
    model = LanguageModel(cfg, params)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, V, T), rng.integers(0, V, T)
    loss, grads, _ = model.loss_and_grads(x[:, None], y[:, None], truncate=truncate)
    assert loss * T == pytest.approx(tutorial.calculate_total_loss(x, y), rel=1e-13)
    dU, dV, dW = tutorial.bptt(x, y)  # gradients of the summed loss
    np.testing.assert_allclose(grads["rnn.weight_ih_l0"] * T, dU, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["rnn.weight_hh_l0"] * T, dW, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["decoder.weight"] * T, dV, rtol=1e-10, atol=1e-14)


def test_tied_weights_share_the_embedding():
    model = tiny("rnn_tanh", tied=True)
    assert "decoder.weight" not in model.params
    logits, _ = model.forward(np.array([[3]]), [np.zeros((1, 6))] * 2)
    h = np.tanh(np.tanh(model.params["rnn.bias_ih_l0"] + model.params["rnn.bias_hh_l0"]
                        + model.params["embedding.weight"][3] @ model.params["rnn.weight_ih_l0"].T)
                @ model.params["rnn.weight_ih_l1"].T + model.params["rnn.bias_ih_l1"] + model.params["rnn.bias_hh_l1"])
    np.testing.assert_allclose(logits[0, 0], model.params["embedding.weight"] @ h + model.params["decoder.bias"])


def test_float32_close_to_float64():
    m64 = tiny("lstm")
    m32 = LanguageModel(m64.cfg, m64.params, dtype=np.float32)
    rng = np.random.default_rng(6)
    x, y, mask, state = random_problem(m64, 6, 3, rng)
    l64, g64, _ = m64.loss_and_grads(x, y, mask, state, truncate=2)
    l32, g32, s32 = m32.loss_and_grads(x, y, mask, state, truncate=2)
    assert isinstance(l32, float) and l32 == pytest.approx(l64, rel=1e-5)
    assert all(g.dtype == np.float32 for g in g32.values()) and s32[0][0].dtype == np.float32
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5)


def test_predict_and_probabilities():
    model = tiny("lstm")
    x = np.random.default_rng(7).integers(0, 13, (5, 2))
    p, _ = model.probabilities(x)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    ids, _ = model.predict(x)
    np.testing.assert_array_equal(ids, p.argmax(-1))
    cold, _ = model.probabilities(x, temperature=1e-4)  # temperature -> 0 is greedy
    np.testing.assert_array_equal(cold.argmax(-1), ids)
    np.testing.assert_allclose(cold.max(-1), 1.0, atol=1e-9)


@pytest.mark.parametrize("tied", [False, True])
def test_save_load_roundtrip(tmp_path, tied):
    model = tiny("lstm", tied=tied)
    vocab = {"itos": [str(i) for i in range(13)]}
    save_model(model, tmp_path / "ckpt", vocab, extra={"text": {"level": "word"}})
    loaded, ckpt = load_model(tmp_path / "ckpt")
    assert ckpt.vocab == vocab and ckpt.extra == {"text": {"level": "word"}} and loaded.cfg == model.cfg
    x = np.arange(12).reshape(6, 2)
    np.testing.assert_array_equal(loaded.forward(x)[0], model.forward(x)[0])


def test_bad_configs_are_user_errors():
    window1 = ModelConfig(vocab_size=5, cell="qrnn", emb_size=3, hidden_size=2)
    with pytest.raises(UnrollError, match="weight_ih_l0 has shape"):  # window-1 weights, a window-2 config
        LanguageModel(replace(window1, qrnn_window=2), init_params(window1, np.random.default_rng(0)))
    with pytest.raises(UnrollError, match="no tokens"):
        tiny().loss(np.zeros((2, 1), np.int64), np.zeros((2, 1), np.int64), np.zeros((2, 1)))


def test_sampling():
    model = tiny("lstm")
    bos, eos, unk = 1, 2, 0
    rng = np.random.default_rng(8)
    for _ in range(20):
        ids = sample_sentence(model, bos, eos, unk_id=unk, rng=rng, min_length=2, max_length=30)
        assert 2 <= len(ids) <= 30 and unk not in ids and eos not in ids
    a = sample_sentence(model, bos, eos, rng=np.random.default_rng(9), max_length=50)
    b = sample_sentence(model, bos, eos, rng=np.random.default_rng(9), max_length=50)
    assert a == b  # seeded
    logits = np.array([1.0, 3.0, 2.0])
    np.testing.assert_array_equal(next_token_distribution(logits, 0.0), [0, 1, 0])
    np.testing.assert_array_equal(next_token_distribution(logits, 0.0, banned=1), [0, 0, 1])
    p = next_token_distribution(logits, 1.0, banned=1)
    assert p[1] == 0 and p[2] / p[0] == pytest.approx(math.e)
