"""Learning-rate schedules.

A schedule answers "what is the lr for this update?" from where training is (epoch, step,
fraction of the run done) and, for the plateau schedule, from the validation losses it was told.

- ``constant``: the initial lr throughout.
- ``zaremba``: Zaremba et al. 2014 / the TensorFlow PTB tutorial: the initial lr for the first
  ``max_epoch`` epochs, then multiplied by ``lr_decay`` each epoch:
  ``lr * lr_decay ** max(epoch + 1 - max_epoch, 0)`` (epoch counted from 0).
- ``plateau``: multiply by ``lr_decay`` when validation has not improved for more than
  ``plateau_patience`` evaluations (pytorch/examples divides by 4: ``lr_decay = 0.25``).
- ``cosine``: linear warmup over ``warmup_steps`` updates, then a half cosine down to ``min_lr``
  at the end of the run. The end is the last epoch, ``max_steps`` or the time budget, whichever
  comes first, so the schedule knows its budget.
"""

from __future__ import annotations

import math
from typing import Any

from unroll.config import TrainConfig


class Schedule:
    """lr = f(epoch, step, progress); stateful only for the plateau rule."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.scale = 1.0  # plateau: product of the decays so far
        self.best = math.inf  # plateau: best validation loss
        self.bad_evals = 0  # plateau: evaluations since the best

    def lr(self, epoch: int, step: int, progress: float) -> float:
        """The lr for update number ``step`` (from 0) in ``epoch`` (from 0); progress in [0, 1]."""
        c = self.cfg
        if c.schedule == "zaremba":
            return c.lr * c.lr_decay ** max(epoch + 1 - c.max_epoch, 0)
        if c.schedule == "plateau":
            return max(c.lr * self.scale, c.min_lr)
        if c.schedule == "cosine":
            if step < c.warmup_steps:
                return c.lr * (step + 1) / c.warmup_steps
            return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return c.lr

    def on_validation(self, loss: float) -> None:
        """Tell the schedule a validation loss (only the plateau rule listens)."""
        if self.cfg.schedule != "plateau":
            return
        if loss < self.best:
            self.best, self.bad_evals = loss, 0
            return
        self.bad_evals += 1
        if self.bad_evals > self.cfg.plateau_patience:
            self.scale *= self.cfg.lr_decay
            self.bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best if math.isfinite(self.best) else None,
                "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad_evals = int(state["bad_evals"])
