"""The qrnn cell: its scan against autograd, whole windows against chunks, padding, checkpoints."""

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


def naive_qrnn(model: LanguageModel, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same network written step by step with plain autograd (no custom backward)."""
    h = model.embedding(x)
    finals = []
    for k in range(model.cfg.num_layers):
        w, b = getattr(model.rnn, f"weight_ih_l{k}"), getattr(model.rnn, f"bias_ih_l{k}")
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


def test_checkpoint_round_trip_and_the_reference_engine_refuses_it_clearly(tmp_path):
    from unroll.reference import load_model as load_reference

    model = make(dtype=torch.float32).eval()
    save_model(model, tmp_path / "ckpt", {"itos": [f"w{i}" for i in range(V)]})
    assert load_checkpoint(tmp_path / "ckpt").model.cell == "qrnn"
    loaded, _ = load_model(tmp_path / "ckpt")
    x = tokens(5, 2)
    assert torch.equal(loaded(x)[0], model(x)[0])
    with pytest.raises(UnrollError, match="reference engine has no 'qrnn' cell"):
        load_reference(tmp_path / "ckpt")


def test_config_rejects_orthogonal_recurrent_for_qrnn():
    with pytest.raises(UnrollError, match="no recurrent weight"):
        ModelConfig(vocab_size=V, cell="qrnn", orthogonal_recurrent=True)


def test_bf16_autocast_stays_close_to_float32():
    model = make(dtype=torch.float32, init_scale=0.1).eval()
    x, y = tokens(8, 4), tokens(8, 4, seed=2)
    ref, _ = model(x, targets=y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, state = model(x, targets=y)
    assert state.dtype == torch.float32
    assert abs(low.item() - ref.item()) < 0.02 * ref.item()
    assert np.isfinite(low.item())
