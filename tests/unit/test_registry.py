"""Adding a cell is its two modules and one registry line: a toy cell registered here builds,
agrees between the engines and trains in both, with no other file knowing its name."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from unroll import cells, reference
from unroll.checkpoint import Checkpoint
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.models import LanguageModel
from unroll.reference.gradcheck import check_gradients, random_problem

V, E, H, T, B = 9, 4, 5, 6, 3


class ToyRNN(nn.Module):
    """The toy cell's PyTorch stack, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, one step at a time."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(hidden_size, n_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(hidden_size)))

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> ToyRNN:
        return cls(cfg.emb_size, cfg.hidden_size, cfg.num_layers)

    def init_state(self, batch_size: int, dtype: torch.dtype, device: torch.device | str) -> Tensor:
        return torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=dtype, device=device)

    def forward(self, x: Tensor, state: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if state is None:
            state = self.init_state(x.size(1), x.dtype, x.device)
        finals = []
        for k in range(self.num_layers):
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{name}_l{k}") for name in names)
            h, outputs = state[k], []
            for t in range(x.size(0)):
                new = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
                h = new if lengths is None else torch.where((t < lengths.to(x.device))[:, None], new, h)
                outputs.append(new)
            x = torch.stack(outputs)
            finals.append(h)
        return x, torch.stack(finals)


class ToyCell:
    """The toy cell's NumPy step: ``h_t = tanh(z_t)``, ``dz_t = dh_t (1 - h_t^2)``."""

    gates = 1
    state_names = ("h",)

    def step(self, zx: np.ndarray, state: tuple, w_hh: np.ndarray, b_hh: np.ndarray) -> tuple[tuple, tuple]:
        (h_prev,) = state
        h = np.tanh(zx + h_prev @ w_hh.T + b_hh)
        return (h,), (h,)

    def step_backward(self, d_state: tuple, cache: tuple, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        (dh,), (h,) = d_state, cache
        dz = dh * (1 - h * h)
        return dz, dz, (dz @ w_hh,)


@pytest.fixture
def toy() -> Iterator[str]:
    """The toy cell, registered for one test only."""
    cells.register(cells.Cell("toy", gates=1, recurrent=True, state=("h",), torch_layer=f"{__name__}:ToyRNN",
                              numpy_cell=f"{__name__}:ToyCell"))
    yield "toy"
    cells.unregister("toy")


def both_engines(cell: str, num_layers: int = 2, seed: int = 0):
    cfg = ModelConfig(vocab_size=V, cell=cell, emb_size=E, hidden_size=H, num_layers=num_layers, init_scale=0.5)
    rng = np.random.default_rng(seed)
    params = {name: rng.uniform(-0.5, 0.5, value.shape) for name, value in reference.init_params(cfg, rng).items()}
    fast = LanguageModel.from_checkpoint(Checkpoint(params, cfg, {}), dtype=torch.float64)
    return reference.LanguageModel(cfg, params), fast, rng


def torch_loss(model: LanguageModel, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> Tensor:
    logits, _ = model(torch.from_numpy(inputs), lengths=torch.from_numpy(mask.sum(0).astype(np.int64)))
    losses = nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1), reduction="none")
    weights = torch.from_numpy(mask).reshape(-1)
    return (losses * weights).sum() / weights.sum()


def test_the_toy_cell_agrees_between_engines(toy):
    ref, fast, rng = both_engines(toy)
    inputs, targets = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    mask = (np.arange(T)[:, None] < np.array([T, 2, 4])[None, :]).astype(np.float64)
    ref_loss, ref_grads, _ = ref.loss_and_grads(inputs, targets, mask)
    loss = torch_loss(fast, inputs, targets, mask)
    loss.backward()
    assert loss.item() == pytest.approx(ref_loss, rel=1e-12, abs=0)
    grads = {name: p.grad.numpy() for name, p in fast.named_parameters()}
    assert sorted(grads) == sorted(ref_grads)
    for name, g in ref_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
        assert np.abs(g).max() > 1e-4, f"{name}: gradient too small to test anything"


def test_the_toy_cells_gradients_match_finite_differences(toy):
    ref, _, rng = both_engines(toy)
    inputs, targets, mask, state = random_problem(ref, T, B, rng)
    for objective in ("loss", "outputs"):
        errors = check_gradients(ref, inputs, targets, mask, state, None, objective, rng=rng)
        assert max(errors.values()) < 1e-6, (objective, errors)


def test_the_toy_cell_carries_its_state_across_chunks(toy):
    """Two chunks with the state carried over give what the whole sequence gives."""
    _, fast, rng = both_engines(toy)
    inputs = torch.from_numpy(rng.integers(0, V, (T, B)))
    whole, whole_state = fast(inputs)
    first, state = fast(inputs[:2], fast.init_state(B))
    second, chunked_state = fast(inputs[2:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(chunked_state, whole_state, rtol=0, atol=1e-12)


def test_the_toy_cell_computes_what_rnn_tanh_does(toy):
    """Same recurrence, other code: the same weights give the same logits as the registered rnn_tanh."""
    _, fast, rng = both_engines(toy)
    _, tanh, _ = both_engines("rnn_tanh")
    inputs = torch.from_numpy(rng.integers(0, V, (T, B)))
    np.testing.assert_allclose(fast(inputs)[0].detach().numpy(), tanh(inputs)[0].detach().numpy(), rtol=0, atol=1e-12)


def test_the_toy_cell_trains_alike_in_both_engines(toy):
    ref, fast, rng = both_engines(toy)
    batches = [(x, x) for x in (rng.integers(0, V, (T, B)) for _ in range(4))]  # learnable: echo each token
    mask = np.ones((T, B))
    ref_sgd = reference.SGD(ref.params, lr=0.5)
    torch_sgd = torch.optim.SGD(fast.parameters(), lr=0.5)
    ref_losses, torch_losses = [], []
    for _ in range(5):
        for inputs, targets in batches:
            loss, grads, _ = ref.loss_and_grads(inputs, targets, mask)
            ref_sgd.step(grads)
            ref_losses.append(loss)
            torch_sgd.zero_grad()
            fast_loss = torch_loss(fast, inputs, targets, mask)
            fast_loss.backward()
            torch_sgd.step()
            torch_losses.append(fast_loss.item())
    np.testing.assert_allclose(torch_losses, ref_losses, rtol=1e-10)
    assert np.mean(ref_losses[-4:]) < np.mean(ref_losses[:4]) - 0.2  # it learns
    for name, p in fast.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), ref.params[name], rtol=0, atol=1e-10, err_msg=name)


def test_the_registry_drives_settings_and_shapes(toy):
    with pytest.raises(UnrollError, match="forget_bias applies"):
        ModelConfig(vocab_size=V, cell=toy, forget_bias=1.0)
    ModelConfig(vocab_size=V, cell=toy, orthogonal_recurrent=True)
    assert toy not in cells.names(classifier=True)
    with pytest.raises(UnrollError, match="unknown cell 'nope'; choose one of .*toy"):
        ModelConfig(vocab_size=V, cell="nope")


def test_unregistered_cells_are_gone():
    assert "toy" not in cells.names()
    with pytest.raises(ValueError, match="already registered"):
        cells.register(cells.get("lstm"))
