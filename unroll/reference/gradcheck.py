"""Gradient checking: the hand-written backward pass against central finite differences.

For every entry x of every parameter, ``(J(x + eps) - J(x - eps)) / (2 eps)`` is compared with the
analytic gradient by the relative error ``|a - b| / (|a| + |b|)`` (0 when both are 0). Two
objectives are checked (see TESTING.md): the model's loss, and a random weighted sum of all
outputs ``J = sum(R * logits)``, which sends a gradient into every output element, not only the
target's.

Truncated BPTT computes the exact gradient of a different function, the *truncated objective*
``J = sum_t J_t`` where ``J_t`` (the output term of step t) is recomputed by restarting the
recurrence at step ``t - k`` from the state of step ``t - k - 1``, that state being computed once
at the unperturbed parameters and then held constant. Finite differences of that function
(built here from the public ``forward`` only) give an independent check of the truncated gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unroll.reference.model import LanguageModel, State


def relative_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b| / (|a| + |b|)`` per entry, 0 where both are 0."""
    den = np.abs(a) + np.abs(b)
    return np.divide(np.abs(a - b), den, out=np.zeros_like(den), where=den > 0)


def numerical_gradient(f: Callable[[], np.floating], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences of ``f()`` for every entry of ``x``, which is perturbed in place and restored."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = f()
        x[idx] = old - eps
        minus = f()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def random_problem(
    model: LanguageModel, steps: int, batch_size: int, rng: np.random.Generator, masked: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, State]:
    """``(inputs, targets, mask, state)``: random tokens, trailing padding of random length
    (the first sequence is never padded), and a random nonzero initial state."""
    V, H = model.cfg.vocab_size, model.cfg.hidden_size
    inputs = rng.integers(0, V, (steps, batch_size))
    targets = rng.integers(0, V, (steps, batch_size))
    mask = None
    if masked:
        lengths = rng.integers(1, steps + 1, batch_size)
        lengths[0] = steps
        mask = (np.arange(steps)[:, None] < lengths[None, :]).astype(model.dtype)
    state = [
        tuple(rng.uniform(-0.5, 0.5, (batch_size, H)) for _ in model.cell.state_names)
        for _ in range(model.cfg.num_layers)
    ]
    n_past = model.cfg.qrnn_window - 1  # a qrnn window reads inputs from before this batch too
    past = rng.uniform(-0.5, 0.5, (batch_size, n_past, model.cfg.emb_size)) if n_past else None
    return inputs, targets, mask, model._external(state, past)


def check_gradients(
    model: LanguageModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    state: State | None = None,
    truncate: int | None = None,
    objective: str = "loss",
    eps: float = 1e-5,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Max relative error per parameter between ``model.backward`` and finite differences.

    ``objective`` is ``"loss"`` (mean cross-entropy over unmasked tokens) or ``"outputs"``
    (``sum(R * logits)`` with a random R drawn from ``rng``). The finite differences run on a
    copy of the model in extended precision (``np.longdouble``, 64-bit mantissa on x86): in
    float64 the rounding error of J, divided by 2 eps, swamps the smallest gradient entries
    (1e-7 and below in a two-layer LSTM) at the 1e-6 level.
    """
    T, B = np.shape(inputs)
    probe = LanguageModel(model.cfg, model.params, dtype=np.longdouble)
    if objective == "loss":
        weights = np.ones((T, B), np.longdouble) if mask is None else np.asarray(mask, np.longdouble)
        weights = weights / weights.sum()

        def term(logits: np.ndarray, t: slice) -> np.longdouble:
            z = logits - logits.max(axis=-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            return -np.sum(weights[t] * np.take_along_axis(log_p, targets[t][..., None], axis=-1)[..., 0])

        analytic = model.loss_and_grads(inputs, targets, mask, state, truncate)[1]
    elif objective == "outputs":
        R = (rng or np.random.default_rng(0)).standard_normal((T, B, model.cfg.vocab_size))

        def term(logits: np.ndarray, t: slice) -> np.longdouble:
            return np.sum(R[t] * logits)

        analytic = model.backward(model.run(inputs, state, mask), R.astype(model.dtype), truncate)
    else:
        raise ValueError(f"objective must be 'loss' or 'outputs', got {objective!r}")

    if truncate is None:

        def f() -> np.longdouble:
            return term(probe.forward(inputs, state, mask)[0], slice(None))

    else:
        f = _truncated_objective(probe, inputs, mask, state, truncate, term)
    errors = {}
    for name, p in probe.params.items():
        numeric = numerical_gradient(f, p, eps)
        errors[name] = float(relative_error(analytic[name].astype(np.longdouble), numeric).max())
    return errors


def _truncated_objective(
    model: LanguageModel,
    inputs: np.ndarray,
    mask: np.ndarray | None,
    state: State | None,
    k: int,
    term: Callable[[np.ndarray, slice], np.longdouble],
) -> Callable[[], np.longdouble]:
    """``f() = sum_t term(logits_t)``, each logits_t from a restart at step t-k from a frozen state."""
    T = len(inputs)
    sub_mask = (lambda a, b: None) if mask is None else (lambda a, b: mask[a:b])
    # starts[j]: the state before step j, at the current (unperturbed) parameters; now constants
    starts = [state] + [model.forward(inputs[: j + 1], state, sub_mask(0, j + 1))[1] for j in range(T - 1)]

    def f() -> np.longdouble:
        total = np.longdouble(0)
        for t in range(T):
            s = max(0, t - k)
            logits = model.forward(inputs[s : t + 1], starts[s], sub_mask(s, t + 1))[0]
            total += term(logits[-1:], slice(t, t + 1))
        return total

    return f
