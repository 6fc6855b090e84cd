"""Initial parameters from ``ModelConfig``: one rule for both engines.

The PyTorch engine draws its seed from torch's generator and copies these arrays in, so
``torch.manual_seed`` still makes a model reproducible and both engines start alike.

- ``init="fan_in"``: every weight matrix ``[out, in]`` is uniform in +-1/sqrt(in), as the word-RNN
  tutorial does (its ``U`` [H, V] uses 1/sqrt(V): so does ``embedding.weight``, whose input is a
  one-hot vector of size V). Biases start at zero.
- ``init="uniform"``: every parameter, biases included, uniform in +-``init_scale``, as Zaremba
  et al. 2014's code initializes all its variables.
- ``orthogonal_recurrent``: each [H, H] gate block of ``weight_hh`` is a random orthogonal matrix,
  so the recurrence neither grows nor shrinks the state at the start of training.
- ``forget_bias`` (cells with a forget gate, ``Cell.forget_gate``: LSTM, QRNN): added to the
  forget-gate block of ``bias_ih`` (the model uses ``bias_ih + bias_hh``), so the cell starts by
  remembering.
"""

from __future__ import annotations

import numpy as np

from unroll import cells
from unroll.checkpoint import parameter_shapes
from unroll.config import ModelConfig


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random n x n orthogonal matrix (QR of a Gaussian, signs fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype: np.dtype = np.float64) -> dict[str, np.ndarray]:
    """Fresh parameters with exactly the names and shapes of ``parameter_shapes(cfg)``."""
    params: dict[str, np.ndarray] = {}
    for name, shape in parameter_shapes(cfg).items():
        if cfg.init == "uniform":
            value = rng.uniform(-cfg.init_scale, cfg.init_scale, shape)
        elif len(shape) == 2:
            bound = 1 / np.sqrt(cfg.vocab_size if name == "embedding.weight" else shape[1])
            value = rng.uniform(-bound, bound, shape)
        else:
            value = np.zeros(shape)
        params[name] = value
    h = cfg.hidden_size
    for k in range(cfg.num_layers):
        if cfg.orthogonal_recurrent:
            w_hh = params[f"rnn.weight_hh_l{k}"]
            for gate in range(cfg.gates):
                w_hh[gate * h : (gate + 1) * h] = orthogonal(h, rng)
        if cells.get(cfg.cell).forget_gate:  # the forget gate is gate block 1
            params[f"rnn.bias_ih_l{k}"][h : 2 * h] += cfg.forget_bias
    return {name: value.astype(dtype) for name, value in params.items()}
