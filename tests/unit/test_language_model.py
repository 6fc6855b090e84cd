"""The PyTorch language model: shapes, state handling, dropout, initializers, bf16, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unroll.checkpoint import parameter_shapes
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.models import LanguageModel, detach_state, load_model, resolve_device, save_model
from unroll.models import device as device_module
from unroll.models import dropout as dropout_module
from unroll.models import language_model as lm_module
from unroll.models.device import bf16_is_native, bf16_kernels, resolve_precision
from tests.support.hardware import needs_bf16_kernels

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
V = 13


def make(cell: str = "lstm", dtype=torch.float64, seed: int = 0, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    settings = dict(vocab_size=V, cell=cell, emb_size=5, hidden_size=6, num_layers=2, init_scale=0.5)
    settings.update(kw)
    return LanguageModel(ModelConfig(**settings)).to(dtype)


def tokens(T: int, B: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


def states(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_state_layout(cell):
    model = make(cell).eval()
    logits, state = model(tokens(7, 3))
    assert logits.shape == (7, 3, V)
    expected = [(2, 3, 6)] * (2 if cell == "lstm" else 1)
    assert [s.shape for s in states(state)] == expected
    assert [s.shape for s in states(model.init_state(3))] == expected
    assert all(not s.any() for s in states(model.init_state(3)))
    assert list(model.state_dict()) == list(parameter_shapes(model.cfg))


def test_loss_at_init_is_log_vocab():
    model = make(init_scale=0.01).eval()
    logits, _ = model(tokens(20, 4))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tokens(20, 4, seed=2).reshape(-1))
    assert loss.item() == pytest.approx(math.log(V), rel=0.01)


@pytest.mark.parametrize("cell", CELLS)
def test_whole_equals_chunked(cell):
    model = make(cell).eval()
    x = tokens(12, 3)
    whole, whole_state = model(x)
    parts, state = [], None
    for chunk in x.split(5):
        logits, state = model(chunk, state)
        parts.append(logits)
        state = detach_state(state)
    torch.testing.assert_close(torch.cat(parts), whole, rtol=0, atol=1e-12)
    for a, b in zip(states(state), states(whole_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_no_peeking_at_the_future(cell):
    model = make(cell).eval()
    x = tokens(10, 2)
    y = x.clone()
    y[6:] = (y[6:] + 1) % V
    a, _ = model(x)
    b, _ = model(y)
    assert torch.equal(a[:6], b[:6])
    assert not torch.allclose(a[6:], b[6:])


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_batched_equals_one_by_one(cell):
    model = make(cell).eval()
    lengths = [4, 9, 1, 6]
    x = tokens(9, 4)
    start = tuple(torch.randn_like(s) for s in states(model.init_state(4)))
    start = start if cell == "lstm" else start[0]
    logits, state = model(x, start, lengths=lengths)
    for b, n in enumerate(lengths):
        one_start = tuple(s[:, b : b + 1] for s in states(start))
        one_logits, one_state = model(x[:n, b : b + 1], one_start if cell == "lstm" else one_start[0])
        torch.testing.assert_close(logits[:n, b : b + 1], one_logits, rtol=0, atol=1e-12)
        for s, one in zip(states(state), states(one_state)):
            torch.testing.assert_close(s[:, b : b + 1], one, rtol=0, atol=1e-12)


def test_tied_weights_share_storage_and_save_once(tmp_path):
    model = make(emb_size=6, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    assert "decoder.weight" not in model.checkpoint_params()
    logits, _ = model(tokens(5, 2))
    logits.sum().backward()
    assert model.embedding.weight.grad is not None
    save_model(model, tmp_path / "ckpt", vocab={"itos": []})
    loaded, ckpt = load_model(tmp_path / "ckpt", dtype=torch.float64)
    assert "decoder.weight" not in ckpt.params
    assert loaded.decoder.weight is loaded.embedding.weight
    torch.testing.assert_close(loaded(tokens(5, 2))[0], model.eval()(tokens(5, 2))[0], rtol=0, atol=0)


@pytest.mark.parametrize("cell", ["lstm", "qrnn"])
def test_tied_across_sizes_projects_to_the_embedding(cell, tmp_path):
    """E != H tied: a bias-free [E, H] projection feeds the tied decoder; the fused training loss
    (with every regularizer on) is the cross-entropy of the returned logits; a checkpoint keeps it."""
    model = make(cell, emb_size=4, hidden_size=6, tie_weights=True, dropout=0.3, locked_dropout=True,
                 weight_dropout=0.2, emb_dropout=0.1)
    assert model.projection.weight.shape == (4, 6) and model.decoder.weight is model.embedding.weight
    assert "projection.weight" in parameter_shapes(model.cfg) and model.projection.bias is None
    x, y = tokens(7, 3), tokens(7, 3, seed=2)
    torch.manual_seed(5)
    loss, _, penalty = model(x, targets=y, activation_reg=(1.0, 1.0))
    (loss + penalty).backward()
    assert model.projection.weight.grad.abs().max() > 0
    torch.manual_seed(5)
    logits, _ = model(x)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    model.eval()
    save_model(model, tmp_path / "ckpt", vocab={"itos": []})
    loaded, ckpt = load_model(tmp_path / "ckpt", dtype=torch.float64)
    assert ckpt.params["projection.weight"].shape == (4, 6) and "decoder.weight" not in ckpt.params
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)
    assert make(cell, emb_size=4, hidden_size=6).projection is None  # untied: the decoder reads H


@pytest.mark.parametrize("cell", CELLS)
def test_checkpoint_round_trip(cell, tmp_path):
    model = make(cell, dtype=torch.float32).eval()
    save_model(model, tmp_path / "ckpt", vocab={"itos": ["a"]}, extra={"text": {"level": "char"}})
    loaded, ckpt = load_model(tmp_path / "ckpt")
    assert ckpt.vocab == {"itos": ["a"]} and ckpt.extra == {"text": {"level": "char"}}
    assert loaded.cfg == model.cfg and not loaded.training
    for name, value in model.checkpoint_params().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(ckpt.params[name], value)
    x = tokens(6, 2)
    assert torch.equal(loaded(x)[0], model(x)[0])


def test_uniform_init_bounds():
    model = make(init_scale=0.05)
    for name, p in model.named_parameters():
        assert p.abs().max() <= 0.05, name
        assert p.abs().max() > 0.04, name  # filled, not left at a default


def test_fan_in_init_bounds():
    model = make(init="fan_in", emb_size=20, hidden_size=30)
    # weights +-1/sqrt(fan-in); the embedding +-1/sqrt(V) (the tutorial's one-hot U); biases zero
    bounds = {"embedding.weight": V**-0.5, "rnn.weight_ih_l0": 20**-0.5, "rnn.weight_ih_l1": 30**-0.5,
              "rnn.weight_hh_l0": 30**-0.5, "decoder.weight": 30**-0.5}
    params = dict(model.named_parameters())
    for name, bound in bounds.items():
        assert params[name].abs().max() <= bound, name
        assert params[name].abs().max() > 0.8 * bound, name
    assert not params["rnn.bias_ih_l0"].any() and not params["decoder.bias"].any()


def test_init_is_reproducible_from_the_torch_seed():
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert not torch.equal(c.embedding.weight, a.embedding.weight)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_orthogonal_recurrent_per_gate_block(cell):
    model = make(cell, orthogonal_recurrent=True)
    eye = torch.eye(6, dtype=torch.float64)
    for k in range(2):
        blocks = getattr(model.rnn, f"weight_hh_l{k}").detach().split(6)
        assert len(blocks) == model.cfg.gates
        for w in blocks:
            torch.testing.assert_close(w @ w.T, eye, rtol=0, atol=1e-5)  # built in float32


def test_forget_gate_bias():
    model = make(forget_bias=1.0, init_scale=0.1)
    for k in range(2):
        b = (getattr(model.rnn, f"bias_ih_l{k}") + getattr(model.rnn, f"bias_hh_l{k}")).detach()
        forget, others = b[6:12], torch.cat([b[:6], b[12:]])  # gate order i, f, g, o
        assert forget.min() >= 0.8 and forget.max() <= 1.2
        assert others.abs().max() <= 0.2
    with pytest.raises(UnrollError, match="forget_bias"):
        make("gru", forget_bias=1.0)


@pytest.mark.parametrize("locked", [False, True])
def test_dropout_only_in_training(locked):
    model = make(dropout=0.5, emb_dropout=0.3, locked_dropout=locked)
    plain = make(dropout=0.0)  # same seed: same weights
    x = tokens(8, 3)
    model.eval()
    assert torch.equal(model(x)[0], plain.eval()(x)[0])
    model.train()
    torch.manual_seed(3)
    a = model(x)[0]
    b = model(x)[0]
    assert not torch.allclose(a, b)


def test_locked_mask_is_constant_over_time():
    torch.manual_seed(0)
    out = dropout_module.locked_dropout(torch.ones(9, 4, 50), 0.5, training=True)
    assert torch.equal(out, out[:1].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    per_step = torch.nn.functional.dropout(torch.ones(9, 4, 50), 0.5, training=True)
    assert not torch.equal(per_step, per_step[:1].expand_as(per_step))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_per_step_dropout_keeps_one_minus_p_and_rescales(p):
    torch.manual_seed(0)
    x = torch.ones(50, 20, 100)
    out = dropout_module.dropout(x, p, training=True)
    scale = torch.tensor(1 / (1 - p))
    assert all(v == 0 or torch.isclose(v, scale) for v in out.unique())
    kept = (out > 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.01  # 100,000 draws: the standard error is below 0.002
    assert torch.equal(dropout_module.dropout(x, p, training=False), x)
    grad = torch.autograd.grad(dropout_module.dropout(x.requires_grad_(), p, training=True).sum(), x)[0]
    assert all(v == 0 or torch.isclose(v, scale) for v in grad.unique())


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_mask_is_bernoulli_scaled_and_follows_torch_seed(p):
    like = torch.zeros(2, dtype=torch.float64)
    torch.manual_seed(7)
    a, b = dropout_module.keep_mask((300, 400), p, like), dropout_module.keep_mask((300, 400), p, like)
    torch.manual_seed(7)
    assert torch.equal(dropout_module.keep_mask((300, 400), p, like), a)  # torch's seed reproduces it
    assert not torch.equal(a, b)  # each call draws a fresh mask
    assert a.dtype == torch.float64 and a.shape == (300, 400)
    assert a.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    assert abs((a > 0).double().mean().item() - (1 - p)) < 0.005  # 120,000 draws: standard error < 0.0015
    # no structure across the mask: rows and columns keep alike
    assert (a > 0).double().mean(0).std() < 0.1 and (a > 0).double().mean(1).std() < 0.1


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    weight = torch.randn(V, 4)
    x = tokens(30, 5)
    out = dropout_module.embedding_dropout(weight, x, 0.5, training=True)
    for word in x.unique():
        rows = out[x == word]
        assert torch.equal(rows, torch.zeros_like(rows)) or torch.allclose(rows, 2 * weight[word].expand_as(rows))
    dropped = [w for w in x.unique() if not out[x == w].any()]
    assert 0 < len(dropped) < len(x.unique())


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_layer_by_layer_path_matches_fused_stack(cell, monkeypatch):
    """With all-ones masks, training with locked dropout must compute exactly the fused module's numbers."""
    model = make(cell, dropout=0.5, locked_dropout=True)
    ones = lambda batch, size, p, like: like.new_ones(batch, size)  # noqa: E731
    monkeypatch.setattr(lm_module, "locked_mask", ones)
    monkeypatch.setattr(dropout_module, "locked_mask", ones)
    x, lengths = tokens(7, 3), [7, 2, 5]
    start = model.init_state(3)
    start = tuple(torch.randn_like(s) for s in start) if cell == "lstm" else torch.randn_like(start)
    for kw in ({}, {"lengths": lengths}):
        fused, fused_state = model.eval()(x, start, **kw)
        split, split_state = model.train()(x, start, **kw)
        mask = torch.arange(7)[:, None] < torch.tensor(lengths if kw else [7] * 3)[None, :]
        torch.testing.assert_close(split[mask], fused[mask], rtol=0, atol=1e-12)
        for a, b in zip(states(split_state), states(fused_state)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@needs_bf16_kernels
def test_bf16_autocast_close_to_fp32_with_fp32_master_weights():
    model = make(dtype=torch.float32, emb_size=16, hidden_size=16, init_scale=0.3).eval()
    x = tokens(10, 4)
    ref, _ = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, state = model(x)
    assert low.dtype == torch.bfloat16
    assert all(s.dtype == torch.float32 for s in states(state))  # the carried state stays fp32
    torch.testing.assert_close(low.float(), ref, rtol=0.05, atol=0.05)
    assert not torch.equal(low.float(), ref)  # bf16 really ran
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(x)
    logits.float().sum().backward()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(UnrollError, match="not a device name"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(UnrollError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("kernels, native", [(True, True), (True, False), (False, False)])
def test_precision_auto_is_bf16_only_where_the_hardware_computes_in_it(monkeypatch, kernels, native):
    monkeypatch.setattr(device_module, "bf16_kernels", lambda device: kernels)
    monkeypatch.setattr(device_module, "bf16_is_native", lambda device: native)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    if kernels:  # asked for explicitly: kept, emulated or not
        assert resolve_precision("bf16", cpu) == "bf16"
    else:  # where it would crawl (or crash, for nn.LSTM): a clear error
        with pytest.raises(UnrollError, match="bf16 has no fast kernels on this cpu"):
            resolve_precision("bf16", cpu)
    with pytest.raises(UnrollError, match="precision 'fp16'"):
        resolve_precision("fp16", cpu)


@pytest.mark.parametrize("kernels, avx512_bf16, amx", [(k, a, m) for k in (True, False) for a in (True, False)
                                                         for m in (True, False)])
def test_bf16_probes_combine_the_backend_answers(monkeypatch, kernels, avx512_bf16, amx):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: kernels, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    cpu = torch.device("cpu")
    assert bf16_kernels(cpu) is kernels
    assert bf16_is_native(cpu) is (kernels and (avx512_bf16 or amx))  # native units need the kernels too
    assert not bf16_kernels(torch.device("meta")) and not bf16_is_native(torch.device("meta"))


def test_a_missing_private_probe_reads_as_no(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert bf16_kernels(torch.device("cpu")) and not bf16_is_native(torch.device("cpu"))
