"""Training the reference engine: SGD over batches with the word-RNN tutorial's schedule.

The tutorial's ``train_with_sgd``: every ``evaluate_every`` epochs (starting before the first),
compute the loss; if it went up since the previous evaluation, halve the learning rate; then
take one SGD step per example. Here an example is a batch ``(inputs [T, B], targets [T, B],
mask [T, B] or None)``, and the step can add momentum and gradient-norm clipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from unroll.errors import TrainingDiverged, UnrollError
from unroll.evaluate.stream import Batch, mean_loss
from unroll.reference.model import LanguageModel


class SGD:
    """``v <- momentum * v + g``; ``p <- p - lr * v`` (momentum 0 is plain SGD: ``p <- p - lr * g``).

    With ``clip``, the gradient is first rescaled so that its global L2 norm (over all
    parameters together) is at most ``clip`` (Pascanu et al. 2013): exploding gradients then take
    a bounded step in the same direction instead of a huge one.
    """

    def __init__(
        self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0, clip: float | None = None
    ) -> None:
        self.params, self.lr, self.momentum, self.clip = params, lr, momentum, clip
        self.velocity = {name: np.zeros_like(p) for name, p in params.items()} if momentum else {}

    def step(self, grads: dict[str, np.ndarray]) -> float:
        """Update the parameters in place; return the gradient norm before clipping."""
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        scale = self.clip / norm if self.clip is not None and norm > self.clip else 1.0
        for name, p in self.params.items():
            g = grads[name] * scale
            if self.momentum:
                g = self.velocity[name] = self.momentum * self.velocity[name] + g
            p -= self.lr * g
        return norm


def train_sgd(
    model: LanguageModel,
    batches: Sequence[Batch],
    *,
    epochs: int,
    lr: float = 0.005,
    evaluate_every: int = 1,
    eval_batches: Sequence[Batch] | None = None,
    momentum: float = 0.0,
    clip: float | None = None,
    truncate: int | None = None,
    carry_state: bool = False,
    rng: np.random.Generator | None = None,
    on_evaluate: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` in place; return one record per evaluation.

    Each record is ``{"epoch", "examples_seen", "loss", "lr"}``; the loss is on ``eval_batches``
    (the training batches, as in the tutorial, when None). ``carry_state`` passes each batch's
    final state to the next (consecutive windows of a token stream); otherwise each batch starts
    from zero and, with ``rng``, the batch order is shuffled every epoch. A final evaluation
    after the last epoch closes the history.
    """
    if model.cfg.regularized:
        raise UnrollError("the NumPy reference engine has no dropout: set every dropout setting to 0")
    optimizer = SGD(model.params, lr, momentum, clip)
    history: list[dict] = []
    seen = 0

    def record(epoch: int) -> None:
        loss = mean_loss(model, eval_batches if eval_batches is not None else batches, carry_state)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss} at epoch {epoch}; lower the learning rate or clip gradients")
        if history and loss > history[-1]["loss"]:
            optimizer.lr *= 0.5  # the tutorial's schedule: the loss went up, so halve the step
        history.append({"epoch": epoch, "examples_seen": seen, "loss": loss, "lr": optimizer.lr})
        if on_evaluate:
            on_evaluate(history[-1])

    for epoch in range(epochs):
        if epoch % evaluate_every == 0:
            record(epoch)
        order = np.arange(len(batches))
        if rng is not None and not carry_state:
            rng.shuffle(order)
        state = None
        for i in order:
            inputs, targets, mask = batches[i]
            _, grads, final = model.loss_and_grads(inputs, targets, mask, state, truncate)
            optimizer.step(grads)
            state = final if carry_state else None
            seen += np.shape(inputs)[1]
    record(epochs)
    return history
