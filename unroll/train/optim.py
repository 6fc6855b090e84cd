"""Optimizers: the torch.optim ones by name, NT-ASGD, and a tail average of the weights.

NT-ASGD (Merity et al. 2017, AWD-LSTM) trains with plain SGD until the validation loss has not
improved on the best of all but the last ``nonmono`` evaluations, then switches to averaged SGD:
the update is still SGD, but the model that gets evaluated and saved is the running average of
the weights since the switch.

``TailAverage`` does the same from a fixed point of the run on (``--average-from 0.75``: the last
quarter), under any optimizer and schedule: stochastic weight averaging (Izmailov et al. 2018)
with the run's own learning rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch



def _can_fuse(params: list[torch.nn.Parameter]) -> bool | None:
    """Fused SGD / Adam (one kernel for all parameters) where torch has it: CPU and CUDA floats."""
    ok = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return True if ok else None


class NTASGD:
    """SGD that switches itself to averaged SGD when validation stalls (AWD-LSTM's NT-ASGD).

    Behaves like a ``torch.optim.Optimizer`` for the trainer (``step``, ``zero_grad``,
    ``param_groups``, ``state_dict``); the trainer reports each validation loss through
    :meth:`on_validation` and evaluates inside :meth:`averaged`.
    """

    def __init__(self, params: list[torch.nn.Parameter], lr: float, nonmono: int = 5, weight_decay: float = 0.0):
        self.params = params
        self.nonmono = nonmono
        self.weight_decay = weight_decay
        self.history: list[float] = []  # validation losses seen so far
        self.inner: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)

    @property
    def switched(self) -> bool:
        return isinstance(self.inner, torch.optim.ASGD)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    def step(self) -> None:
        self.inner.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def on_validation(self, loss: float) -> bool:
        """Record a validation loss; switch to averaging when it is no better than ``nonmono`` ago."""
        trigger = (
            not self.switched
            and len(self.history) > self.nonmono
            and loss > min(self.history[: -self.nonmono])
        )
        self.history.append(loss)
        if trigger:
            self._switch()
        return trigger

    def _switch(self) -> None:
        lr = self.inner.param_groups[0]["lr"]
        # t0=0, lambd=0: plain SGD steps, and ax averages every iterate from now on.
        self.inner = torch.optim.ASGD(self.params, lr=lr, t0=0, lambd=0.0, weight_decay=self.weight_decay)

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Inside the block the parameters hold their average since the switch (if switched)."""
        if not self.switched:
            yield
            return
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p in self.params:
                if p in self.inner.state and "ax" in self.inner.state[p]:
                    p.copy_(self.inner.state[p]["ax"])
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup):
                    p.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "history": list(self.history), "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [float(x) for x in state["history"]]
        if state["switched"] and not self.switched:
            self._switch()
        self.inner.load_state_dict(state["inner"])


@contextmanager
def averaged_weights(optimizer: torch.optim.Optimizer | NTASGD) -> Iterator[None]:
    """Evaluate with the weights the optimizer wants evaluated (NT-ASGD's average; else as is)."""
    if isinstance(optimizer, NTASGD):
        with optimizer.averaged():
            yield
    else:
        yield


class TailAverage:
    """The running mean of a model's weights over the updates since :meth:`update` was first called.

    ``model`` holds the mean (a copy made by ``torch.optim.swa_utils.AveragedModel``, tied weights
    still tied): evaluate and save it; the trained model itself goes on untouched.
    """

    def __init__(self, model: torch.nn.Module):
        self.averaged = torch.optim.swa_utils.AveragedModel(model, use_buffers=False)

    @property
    def model(self) -> torch.nn.Module:
        return self.averaged.module

    @property
    def count(self) -> int:
        """Updates averaged so far (0: not started)."""
        return int(self.averaged.n_averaged)

    def update(self, model: torch.nn.Module) -> None:
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """The count and the mean weights, a tied matrix once (``parameters()`` lists it once)."""
        return {"count": self.count, "weights": [p.detach().clone() for p in self.model.parameters()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        params = list(self.model.parameters())
        if len(state["weights"]) != len(params):
            raise ValueError(f"{len(state['weights'])} averaged weights for {len(params)} parameters")
        with torch.no_grad():
            for p, saved in zip(params, state["weights"]):
                p.copy_(saved)
        self.averaged.n_averaged.fill_(int(state["count"]))


# The optimizers both tasks choose from: name -> (constructor, the shared settings it takes,
# fixed arguments). A task's own tuning (the sentiment tutorial's adadelta rho) comes as options.
OPTIMIZERS: dict[str, tuple[Any, tuple[str, ...], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, ("weight_decay", "fused"), {}),
    "momentum": (torch.optim.SGD, ("momentum", "weight_decay", "fused"), {"nesterov": False}),
    "nesterov": (torch.optim.SGD, ("momentum", "weight_decay", "fused"), {"nesterov": True}),
    "adagrad": (torch.optim.Adagrad, ("weight_decay",), {}),
    "adadelta": (torch.optim.Adadelta, ("weight_decay",), {}),
    "rmsprop": (torch.optim.RMSprop, ("weight_decay",), {}),
    "adam": (torch.optim.Adam, ("betas", "weight_decay", "fused"), {}),
    "adamw": (torch.optim.AdamW, ("betas", "weight_decay", "fused"), {}),
    "ntasgd": (NTASGD, ("nonmono", "weight_decay"), {}),
}


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    *,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    nonmono: int = 5,
    fuse: bool = True,
    sparse_grads: bool = False,
    **options: Any,
) -> torch.optim.Optimizer | NTASGD:
    """The optimizer ``name`` from :data:`OPTIMIZERS`, with the settings it takes and ``options``.

    ``fuse``: one kernel for all parameters where torch has it (SGD, Adam). ``sparse_grads``: some
    gradients will be sparse (plain SGD only), so SGD runs its multi-tensor path, which takes
    them, instead of the fused kernel, which does not.
    """
    params = list(params)
    if sparse_grads and (name != "sgd" or weight_decay):
        raise ValueError("sparse gradients need plain SGD without weight decay")
    constructor, takes, fixed = OPTIMIZERS[name]
    shared = dict(weight_decay=weight_decay, momentum=momentum, betas=betas, nonmono=nonmono,
                  fused=_can_fuse(params) if fuse and not sparse_grads else None)
    return constructor(params, lr=lr, **{k: shared[k] for k in takes}, **fixed, **options)
