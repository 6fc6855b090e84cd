"""The qrnn cell: its scan against autograd, whole windows against chunks, padding, checkpoints,
and the first layer's window over past inputs (state carried, generation and scoring)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unroll.checkpoint import load_checkpoint, parameter_shapes
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.models import LanguageModel, load_model, save_model
from unroll.models.qrnn import linear_scan

V = 13


def make(seed: int = 0, dtype=torch.float64, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    settings = dict(vocab_size=V, cell="qrnn", emb_size=5, hidden_size=6, num_layers=2, init_scale=0.5)
    settings.update(kw)
    return LanguageModel(ModelConfig(**settings)).to(dtype)


def tokens(T: int, B: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


def naive_qrnn(
    model: LanguageModel, x: torch.Tensor, c: torch.Tensor, past: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same network written step by step with plain autograd (no custom backward).

    ``past [w - 1, B, E]``: the inputs before ``x`` (oldest first) for a first-layer window w.
    """
    h = model.embedding(x)
    finals = []
    for k in range(model.cfg.num_layers):
        w, b = getattr(model.rnn, f"weight_ih_l{k}"), getattr(model.rnn, f"bias_ih_l{k}")
        if k == 0 and past is not None:  # step t reads [x_t, x_{t-1}, ...], reaching into past
            seq = torch.cat([past, h])
            n = past.size(0)
            h = torch.stack([torch.cat([seq[n + t - j] for j in range(n + 1)], -1) for t in range(x.size(0))])
        z, f, o = F.linear(h, w, b).chunk(3, dim=-1)
        ck, outs = c[k], []
        for t in range(x.size(0)):
            ck = torch.sigmoid(f[t]) * ck + (1 - torch.sigmoid(f[t])) * torch.tanh(z[t])
            outs.append(torch.sigmoid(o[t]) * ck)
        h = torch.stack(outs)
        finals.append(ck)
    return model.decoder(h), torch.stack(finals)


def test_linear_scan_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(5, 2, 3, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(5, 2, 3, dtype=torch.float64, generator=g).requires_grad_()
    c0 = torch.randn(2, 3, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(linear_scan, (a, b, c0))


def test_loss_and_every_gradient_match_a_step_by_step_autograd_model():
    model = make()
    x, y = tokens(6, 3), tokens(6, 3, seed=2)
    c0 = torch.randn(2, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    loss, state = model(x, c0, targets=y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    logits, ref_state = naive_qrnn(model, x, c0)
    ref_loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    assert abs(loss.item() - ref_loss.item()) < 1e-12
    assert torch.allclose(state, ref_state, atol=1e-12)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-10), name


def test_whole_window_equals_chunks_with_the_state_carried():
    model = make().eval()
    x = tokens(9, 2)
    whole, state = model(x)
    first, s1 = model(x[:4])
    second, s2 = model(x[4:], s1)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-12)
    assert torch.allclose(s2, state, atol=1e-12)


def test_padded_batch_gives_each_sequence_its_own_numbers():
    model = make().eval()
    x, lengths = tokens(7, 3), [7, 4, 2]
    logits, state = model(x, None, lengths)
    for b, n in enumerate(lengths):
        alone, s = model(x[:n, b : b + 1])
        assert torch.allclose(logits[:n, b : b + 1], alone, atol=1e-12)
        assert torch.allclose(state[:, b : b + 1], s, atol=1e-12)


def test_parameters_follow_the_checkpoint_names_and_forget_bias_lands_in_block_f():
    model = make(forget_bias=3.0, init_scale=0.1)
    cfg = model.cfg
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == parameter_shapes(cfg)
    assert "rnn.weight_hh_l0" not in parameter_shapes(cfg)
    bias = model.rnn.bias_ih_l0.detach()
    assert bias[6:12].min() > 2.8 and bias[:6].abs().max() <= 0.1 and bias[12:].abs().max() <= 0.1


def test_checkpoint_round_trip_and_the_reference_engine_reads_it(tmp_path):
    from unroll.reference import load_model as load_reference

    model = make(dtype=torch.float32).eval()
    save_model(model, tmp_path / "ckpt", {"itos": [f"w{i}" for i in range(V)]})
    assert load_checkpoint(tmp_path / "ckpt").model.cell == "qrnn"
    loaded, _ = load_model(tmp_path / "ckpt")
    x = tokens(5, 2)
    assert torch.equal(loaded(x)[0], model(x)[0])
    reference, _ = load_reference(tmp_path / "ckpt")  # same numbers: tests/test_reference_vs_torch.py
    np.testing.assert_allclose(reference.forward(x.numpy())[0], model(x)[0].detach().numpy(), atol=1e-5)


def test_config_rejects_orthogonal_recurrent_for_qrnn():
    with pytest.raises(UnrollError, match="no recurrent weight"):
        ModelConfig(vocab_size=V, cell="qrnn", orthogonal_recurrent=True)


def test_bf16_autocast_keeps_every_step_of_the_recurrence_close_to_float32():
    # large weights and a carried start state: outputs far from uniform, a state that matters
    model = make(dtype=torch.float32, init_scale=1.0, forget_bias=1.0, emb_size=16, hidden_size=16).eval()
    x = tokens(20, 4)
    c0 = torch.rand(2, 4, 16, generator=torch.Generator().manual_seed(3)) * 1.8 - 0.9
    with torch.no_grad():
        emb = model.embedding(x)
        h, c = model.rnn(emb, c0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_h, low_c = model.rnn(emb, c0)
        from_zero, _ = model.rnn(emb, None)
        probs = torch.softmax(model.decoder(h), -1)
    assert probs.max(-1).values.mean() > 3 / V  # far from uniform (1 / V)
    assert low_h.dtype == low_c.dtype == torch.float32  # the scan runs in fp32 under autocast
    assert not torch.equal(low_h, h)  # autocast did run the gates in bf16
    torch.testing.assert_close(low_h, h, rtol=0, atol=0.02)  # the last layer's output at every step
    torch.testing.assert_close(low_c, c, rtol=0, atol=0.02)
    assert (from_zero - h).abs().max() > 10 * 0.02  # a recurrence that lost its state would fail


# ---- a first layer that reads a window of inputs (qrnn_window) ---------------------------------

def test_window_loss_gradients_and_state_match_a_step_by_step_autograd_model():
    model = make(qrnn_window=2)
    assert model.rnn.weight_ih_l0.shape == (18, 10) and model.rnn.weight_ih_l1.shape == (18, 6)
    x, y = tokens(6, 3), tokens(6, 3, seed=2)
    g = torch.Generator().manual_seed(3)
    c0 = torch.randn(2, 3, 6, dtype=torch.float64, generator=g)
    past = torch.randn(1, 3, 5, dtype=torch.float64, generator=g)
    loss, (c, new_past) = model(x, (c0, past), targets=y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    logits, ref_c = naive_qrnn(model, x, c0, past)
    ref_loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    assert abs(loss.item() - ref_loss.item()) < 1e-12
    assert torch.allclose(c, ref_c, atol=1e-12)
    assert torch.equal(new_past, model.embedding(x[-1:]))  # the last input, carried
    for (name, _), g_, r in zip(model.named_parameters(), grads, ref_grads):
        assert torch.allclose(g_, r, atol=1e-10), name


@pytest.mark.parametrize("window", [2, 3])
def test_window_whole_equals_chunks_and_starts_from_zeros(window):
    model = make(qrnn_window=window).eval()
    x = tokens(9, 2)
    whole, (c, past) = model(x)
    assert past.shape == (window - 1, 2, 5)
    state = model.init_state(2)
    assert [tuple(s.shape) for s in state] == [(2, 2, 6), (window - 1, 2, 5)] and not any(s.any() for s in state)
    from_zeros, _ = model(x, state)
    assert torch.equal(from_zeros, whole)
    pieces, state = [], None
    for chunk in (x[:1], x[1:5], x[5:]):  # a chunk shorter than the window too
        logits, state = model(chunk, state)
        pieces.append(logits)
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-12)
    assert torch.allclose(state[0], c, atol=1e-12) and torch.equal(state[1], past)


def test_window_padded_batch_gives_each_sequence_its_own_numbers():
    model = make(qrnn_window=3).eval()
    x, lengths = tokens(7, 4), [7, 4, 1, 2]
    logits, (c, past) = model(x, None, lengths)
    for b, n in enumerate(lengths):
        alone, (c_b, past_b) = model(x[:n, b : b + 1])
        assert torch.allclose(logits[:n, b : b + 1], alone, atol=1e-12)
        assert torch.allclose(c[:, b : b + 1], c_b, atol=1e-12)
        assert torch.equal(past[:, b : b + 1], past_b)


def test_window_is_checked():
    with pytest.raises(UnrollError, match="qrnn_window applies to the qrnn cell only"):
        ModelConfig(vocab_size=V, cell="lstm", qrnn_window=2)
    with pytest.raises(UnrollError, match="at least 1"):
        ModelConfig(vocab_size=V, cell="qrnn", qrnn_window=0)


def test_window_checkpoint_generation_and_scoring(tmp_path):
    from tests.support.tiny_models import WORD_SPEC, WORDS

    from unroll.use.engine import LoadedModel, load
    from unroll.use.generate import generate
    from unroll.use.score import score

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(WORDS), cell="qrnn", emb_size=8, hidden_size=8, qrnn_window=2, init_scale=0.8)
    lm = LoadedModel(LanguageModel(cfg).eval(), WORDS, WORD_SPEC)
    options = dict(num_samples=3, max_tokens=12, seed=7)
    both = generate(lm, ["the cat", "a dog"], **options)
    assert both[3:] == generate(lm, ["a dog"], **options)  # alone or batched (padded prompts): the same
    lines = ["the cat sat on the mat .", "a dog"]
    batched = score(lm, lines, batch_size=2)
    for line, s in zip(lines, batched):
        np.testing.assert_allclose(s.logprobs, score(lm, [line], batch_size=1)[0].logprobs, atol=1e-5)
    save_model(lm.model, tmp_path / "ckpt", WORDS, extra={"text": WORD_SPEC.to_dict()})
    loaded = load(tmp_path / "ckpt")
    assert loaded.model.cfg.qrnn_window == 2
    assert generate(loaded, ["the cat", "a dog"], **options) == both
