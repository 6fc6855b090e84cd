"""The two engines give the same numbers: same float64 weights in, same logits, state, loss and
every gradient out (to 1e-12, as the README says), and checkpoints move between them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unroll import reference
from unroll.checkpoint import Checkpoint
from unroll.config import ModelConfig
from unroll.models import LanguageModel, load_model, save_model

V, E, H, T, B = 11, 4, 4, 7, 3


def setup(cell: str, num_layers: int, tied: bool, seed: int = 0, window: int = 1, emb: int = E):
    """One config, its weights (non-zero everywhere, decoder bias included) in both engines.

    Tied with ``emb != H``: the decoder reads a projection of the last layer's output."""
    cfg = ModelConfig(vocab_size=V, cell=cell, emb_size=emb, hidden_size=H, num_layers=num_layers,
                      tie_weights=tied, init_scale=0.5, qrnn_window=window)
    rng = np.random.default_rng(seed)
    params = {name: rng.uniform(-0.5, 0.5, value.shape) for name, value in reference.init_params(cfg, rng).items()}
    ref = reference.LanguageModel(cfg, params)
    fast = LanguageModel.from_checkpoint(Checkpoint(params, cfg, {}), dtype=torch.float64)
    return ref, fast, rng


def random_state(cell: str, num_layers: int, rng: np.random.Generator, window: int = 1, emb: int = E):
    """A carried (non-zero) start state, in the reference layout and the torch layout.

    The qrnn carries only c in torch; the reference carries (h, c), h being the output, which
    the next step does not read. With a window, both carry the past inputs (batch first in the
    reference, ``[w - 1, B, E]`` in torch).
    """
    parts = 2 if cell in ("lstm", "qrnn") else 1
    arrays = rng.uniform(-0.9, 0.9, (parts, num_layers, B, H))
    ref_state = [tuple(a[k] for a in arrays) if parts == 2 else arrays[0][k] for k in range(num_layers)]
    if cell == "lstm":
        return ref_state, tuple(torch.from_numpy(a) for a in arrays)
    torch_state = torch.from_numpy(arrays[-1])
    if window > 1:
        past = rng.uniform(-0.9, 0.9, (B, window - 1, emb))
        return ref_state + [past], (torch_state, torch.from_numpy(past.transpose(1, 0, 2).copy()))
    return ref_state, torch_state


def as_reference_state(state, cell: str) -> list:
    """torch's final state in the reference's per-layer layout; for the qrnn, the parts torch
    carries (c, and the past inputs batch first)."""
    if cell == "lstm":
        return [(h.detach().numpy(), c.detach().numpy()) for h, c in zip(*state)]
    if cell == "qrnn":
        c, past = state if isinstance(state, tuple) else (state, None)
        return list(c.detach().numpy()) + ([] if past is None else [past.detach().numpy().transpose(1, 0, 2)])
    return list(state.detach().numpy())


def comparable(ref_state: list, cell: str) -> list:
    """The reference's final state, less what torch does not carry (the qrnn's h)."""
    return [s[1] if cell == "qrnn" and isinstance(s, tuple) else s for s in ref_state]


@pytest.mark.parametrize("cell,window", [("rnn_tanh", 1), ("rnn_relu", 1), ("lstm", 1), ("gru", 1), ("qrnn", 1),
                                         ("qrnn", 3)])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("tied,emb", [(False, E), (True, E), (True, 3)])  # (True, 3): through a projection
@pytest.mark.parametrize("masked", [False, True])
def test_loss_gradients_and_state_agree(cell, window, num_layers, tied, emb, masked):
    ref, fast, rng = setup(cell, num_layers, tied, window=window, emb=emb)
    inputs = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))
    lengths = np.array([T, 1, 5]) if masked else np.full(B, T)
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)  # trailing padding
    ref_state, torch_state = random_state(cell, num_layers, rng, window, emb)

    ref_loss, ref_grads, ref_final = ref.loss_and_grads(inputs, targets, mask if masked else None, ref_state)

    logits, final = fast(torch.from_numpy(inputs), torch_state, lengths=torch.from_numpy(lengths) if masked else None)
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1), reduction="none"
    )
    weights = torch.from_numpy(mask).reshape(-1)
    loss = (losses * weights).sum() / weights.sum()
    loss.backward()

    assert loss.item() == pytest.approx(ref_loss, rel=1e-12, abs=0)
    grads = {name: p.grad.numpy() for name, p in fast.named_parameters()}
    assert sorted(grads) == sorted(ref_grads)  # tied: one embedding.weight, no decoder.weight
    for name, g in ref_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
        assert np.abs(g).max() > 1e-4, f"{name}: gradient too small to test anything"
    ours = as_reference_state(final, cell)
    assert len(ours) == len(ref_final)
    for a, b in zip(ours, comparable(ref_final, cell)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    ref_logits, _ = ref.forward(inputs, ref_state, mask if masked else None)
    keep = mask.astype(bool)
    np.testing.assert_allclose(logits.detach().numpy()[keep], ref_logits[keep], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell,window,emb", [("rnn_tanh", 1, E), ("lstm", 1, E), ("gru", 1, E), ("qrnn", 2, E),
                                             ("lstm", 1, 3)])
def test_checkpoints_move_between_engines(cell, window, emb, tmp_path):
    ref, fast, rng = setup(cell, 2, tied=True, window=window, emb=emb)
    inputs = rng.integers(0, V, (T, B))
    reference.save_model(ref, tmp_path / "from_numpy", {"itos": []})
    from_numpy, _ = load_model(tmp_path / "from_numpy", dtype=torch.float64)
    save_model(fast, tmp_path / "from_torch", {"itos": []})
    from_torch, _ = reference.load_model(tmp_path / "from_torch")
    expected, _ = ref.forward(inputs)
    np.testing.assert_allclose(from_numpy(torch.from_numpy(inputs))[0].detach().numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(from_torch.forward(inputs)[0], expected, rtol=0, atol=1e-12)
