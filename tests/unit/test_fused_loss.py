"""The fused decoder + cross-entropy against the unfused computation, and the model's targets= path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unroll.config import ModelConfig
from unroll.models import LanguageModel
from unroll.models.loss import linear_cross_entropy


def leaves(*shapes, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, dtype=dtype, generator=g).requires_grad_() for s in shapes]


def test_loss_and_gradients_equal_cross_entropy_of_the_linear_layer_in_float64():
    h, w, b = leaves((12, 5), (9, 5), (9,))
    y = torch.randint(0, 9, (12,), generator=torch.Generator().manual_seed(1))
    loss = linear_cross_entropy(h, w, b, y)
    ref = F.cross_entropy(F.linear(h, w, b), y)
    assert abs(loss.item() - ref.item()) < 1e-12
    for got, want in zip(torch.autograd.grad(3.0 * loss, (h, w, b)), torch.autograd.grad(3.0 * ref, (h, w, b))):
        assert torch.allclose(got, want, atol=1e-12)


def test_gradcheck():
    h, w, b = leaves((4, 3), (6, 3), (6,))
    y = torch.tensor([0, 5, 2, 5])
    assert torch.autograd.gradcheck(lambda h, w, b: linear_cross_entropy(h, w, b, y), (h, w, b))


def test_bf16_autocast_is_as_close_to_float64_as_the_unfused_path():
    h, w, b = leaves((64, 16), (50, 16), (50,), dtype=torch.float32)
    y = torch.randint(0, 50, (64,), generator=torch.Generator().manual_seed(1))
    exact = F.cross_entropy(F.linear(h.double(), w.double(), b.double()), y)
    g_exact = torch.autograd.grad(exact, (h, w, b))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = linear_cross_entropy(h, w, b, y)
        unfused = F.cross_entropy(F.linear(h, w, b).float(), y)
    assert fused.dtype == torch.float32
    err = abs(fused.item() - exact.item())
    assert err < 0.01 * exact.item() and err <= 3 * abs(unfused.item() - exact.item()) + 1e-3
    for got, want in zip(torch.autograd.grad(fused, (h, w, b)), g_exact):
        assert got.dtype == torch.float32
        assert (got.double() - want).norm() < 0.02 * want.norm()


@pytest.mark.parametrize("cell,tie", [("lstm", False), ("gru", True), ("qrnn", True)])
def test_model_targets_path_equals_the_logits_path(cell, tie):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=11, cell=cell, emb_size=6, hidden_size=6, num_layers=2, tie_weights=tie)
    model = LanguageModel(cfg).double()
    x = torch.randint(0, 11, (5, 3))
    y = torch.randint(0, 11, (5, 3))
    loss, state = model(x, targets=y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    logits, ref_state = model(x)
    ref = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert abs(loss.item() - ref.item()) < 1e-12
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-12)
    for a, b in zip(state if isinstance(state, tuple) else [state], ref_state if isinstance(ref_state, tuple) else [ref_state]):
        assert torch.equal(a, b)
