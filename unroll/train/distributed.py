"""Data-parallel training over several processes and machines, as ``torchrun`` launches it.

    torchrun --nproc_per_node=N -m unroll train --preset ptb-small --out runs/small

Every process (rank) holds a full replica of the model and trains on its own columns of the
batch; DistributedDataParallel averages the gradients, so every replica takes the same step::

    train ids ──batchify(batch_size)──► [N, B] ──split by columns──► rank 0: [:, 0:b]
                                                                     rank 1: [:, b:2b]  ...  b = B / world
    each rank: its windows x, y [T, b], its own carried hidden state, mean loss over its T*b tokens
                 └─────────── DDP all-reduce: mean of the ranks' gradients ───────────┘
                 = the gradient of one process with batch B (every rank has T*b tokens)

Classification (``unroll classify train``) splits each batch of examples the same way, by
examples instead of columns, and weights each rank's mean loss by its share (:meth:`Distributed.share`).

So ``batch_size`` is the GLOBAL batch: a preset is the same recipe on 1 or 8 processes, and
N processes with ``batch_size`` B follow one process with batch B step for step (up to the
order of floating-point sums). Clipping sees the global gradient norm: DDP has already
averaged the gradients when the trainer clips.

Rank 0 alone evaluates (so perplexity is exactly a single process's), prints, draws progress
bars and writes files; the others wait for its result. Each rank's hidden state and dropout
random stream go into rank 0's checkpoint, the states concatenated in batch order, so a
checkpoint looks like a one-process run's and resumes on any number of processes that divides
the batch.

Without torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) everything here is a no-op and training runs in one process as before.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from unroll.errors import UnrollError
from unroll.models import resolve_device

T = TypeVar("T")
# Rank 0 evaluates alone while the others wait in a collective: allow long evaluations.
TIMEOUT = timedelta(hours=2)
# Why a run stops, by precedence when ranks disagree (a Ctrl-C on any rank stops them all).
_STOP_REASONS = (None, "max_steps", "time_budget", "interrupted")


def launched() -> bool:
    """Whether torchrun (or another launcher that sets the same variables) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


@contextmanager
def session(device: str | None = None) -> Iterator[None]:
    """Join the process group torchrun describes for the duration of a command, then leave it.

    nccl when the device is CUDA (each process takes the GPU of its ``LOCAL_RANK``), gloo on the
    CPU. Nothing happens outside torchrun or when the group already exists (then its owner
    leaves it).
    """
    if not launched() or dist.is_initialized():
        yield
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = resolve_device(device).type
    if kind == "mps":
        raise UnrollError("distributed training runs on CUDA (nccl) or the CPU (gloo), not MPS; pass --device cpu")
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UnrollError(f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                              f"lower --nproc_per_node")
        torch.cuda.set_device(local_rank)
    # torchrun's store outlives a restart of the workers (--max-restarts), and with it the
    # addresses the dead workers published; each attempt keeps to keys of its own, or a restarted
    # gloo worker may read a dead peer's address and fail to connect.
    store, rank, world_size = next(dist.rendezvous("env://", timeout=TIMEOUT))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group("nccl" if kind == "cuda" else "gloo", store=dist.PrefixStore(f"unroll/attempt-{attempt}", store),
                            rank=rank, world_size=world_size, timeout=TIMEOUT)
    try:
        yield
    except BaseException:
        dist.destroy_process_group()
        raise
    _leave()


def _leave() -> None:
    """Wait for every rank, then leave the group.

    After a collective returns, a gloo worker thread still has to drop its reference to the
    collective's tensors, and for a tensor Python has already freed that takes the GIL. Were the
    interpreter shutting down by then, the process would abort ("terminate called without an
    active exception") after a successful run. The barrier waits with the GIL released, so those
    threads finish while the interpreter is whole; a barrier holds no tensors of its own. Runs
    caught in reference cycles (a DDP wrapper and its reducer's pending work among them) are
    collected first, so none of their tensors is left for the shutdown to free.
    """
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@dataclass(frozen=True)
class Distributed:
    """This process's place among the ranks, and the few collectives the trainer needs.

    With one process (``world_size == 1``) every method returns its input or does nothing.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, logs and writes checkpoints."""
        return self.rank == 0

    # ---- data and model ------------------------------------------------------------------
    def shard_columns(self, data: np.ndarray) -> np.ndarray:
        """This rank's contiguous block of columns of a batchified stream ``[N, B]`` (a view:
        every rank reads the one token cache)."""
        if not self.enabled:
            return data
        b = self.columns(data.shape[1])
        return data[:, self.rank * b : (self.rank + 1) * b]

    def columns(self, batch_size: int) -> int:
        """Columns per rank; the global batch must split evenly (equal tokens per rank keep the
        averaged gradient equal to the whole batch's mean gradient)."""
        if batch_size % self.world_size:
            lo = batch_size // self.world_size * self.world_size
            hint = f"{lo} or {lo + self.world_size}" if lo else str(self.world_size)
            raise UnrollError(
                f"batch size {batch_size} does not split among {self.world_size} processes (it is the global "
                f"batch; each process takes an equal share); use a multiple of {self.world_size} such as {hint}"
            )
        return batch_size // self.world_size

    def share(self, n: int) -> tuple[np.ndarray, float]:
        """This rank's examples of a global batch of ``n`` (classification): positions rank,
        rank + world, ... (a batch sorted by length gives every rank similar lengths), and the
        weight ``n_rank * world / n`` of its mean loss, which makes DDP's average of the ranks'
        gradients the whole batch's mean gradient even when n does not split evenly. A rank left
        without an example gets example 0 with weight 0: DDP needs every rank's backward."""
        if not self.enabled:
            return np.arange(n), 1.0
        mine = np.arange(self.rank, n, self.world_size)
        if not len(mine):
            return np.arange(1), 0.0
        return mine, len(mine) * self.world_size / n

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training forward goes through: DDP averages gradients in backward."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def reseed(self, seed: int) -> None:
        """Give each rank its own dropout stream (the same seed would drop the same units in
        every rank's columns). Call after building the model: initial weights stay equal."""
        if self.rank:
            torch.manual_seed(seed + self.rank)

    # ---- agreement between ranks ---------------------------------------------------------
    def mean_item(self, loss: torch.Tensor) -> float:
        """The loss averaged over the ranks (the whole batch's mean): logged, and checked for
        non-finite values the same way on every rank."""
        if not self.enabled:
            return loss.item()
        total = loss.detach().clone()
        dist.all_reduce(total)
        return total.item() / self.world_size

    def agree(self, reason: str | None) -> str | None:
        """One stop decision for all ranks (clocks and Ctrl-C differ between processes)."""
        if not self.enabled:
            return reason
        code = torch.tensor(_STOP_REASONS.index(reason), device=self.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return _STOP_REASONS[int(code)]

    def same(self, value: float) -> float:
        """Rank 0's value of a number each rank computes from its own clock (the lr when the
        schedule follows the time budget): replicas must take identical steps."""
        if not self.enabled:
            return value
        t = torch.tensor(value, dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t)

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed on rank 0 only and sent to every rank; a user error there is raised
        on every rank."""
        if not self.enabled:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = (fn(), None)
            except UnrollError as e:
                box[0] = (None, e)
        dist.broadcast_object_list(box, src=0)
        value, error = box[0]
        if error is not None:
            raise error
        return value

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block (e.g. downloads a dataset into the cache) before the others."""
        if not self.enabled:
            yield
            return
        if not self.is_main:
            dist.barrier()
        try:
            yield
        finally:
            if self.is_main:
                dist.barrier()

    # ---- checkpoints ---------------------------------------------------------------------
    def gather_state(self, state: Any) -> Any:
        """Every rank's carried hidden state concatenated along the batch (rank order), on the
        CPU: the state a single process with the whole batch would carry."""
        if not self.enabled or state is None:
            return state
        parts = self._all_gather(_map(state, lambda t: t.detach().cpu()))
        if isinstance(state, torch.Tensor):
            return torch.cat(parts, dim=1)
        return type(state)(torch.cat([p[i] for p in parts], dim=1) for i in range(len(state)))

    def shard_state(self, state: Any) -> Any:
        """This rank's columns of a saved hidden state (``[L, B, H]`` or a list/tuple of them)."""
        if not self.enabled or state is None:
            return state

        def mine(t: torch.Tensor) -> torch.Tensor:
            b = self.columns(t.size(1))
            return t[:, self.rank * b : (self.rank + 1) * b].contiguous()

        return _map(state, mine)

    def gather_rng(self) -> list[dict[str, torch.Tensor]] | None:
        """Each rank's torch random state (dropout), for rank 0's checkpoint."""
        if not self.enabled:
            return None
        state = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return self._all_gather(state)

    def restore_rng(self, states: list[dict[str, torch.Tensor]] | None, seed: int, step: int) -> None:
        """Restore this rank's own random state (after the run-wide one, which is rank 0's).

        From a checkpoint of another number of processes rank 0 keeps the saved stream and the
        others start fresh ones: dropout masks then differ from an uninterrupted run, nothing else.
        """
        if not self.enabled:
            return
        if states is not None and len(states) == self.world_size:
            mine = states[self.rank]
            torch.set_rng_state(mine["torch"])
            if "cuda" in mine and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        elif self.rank:
            torch.manual_seed(seed + self.rank + 1_000_003 * (step + 1))

    def _all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def current(device: str | None = None) -> Distributed:
    """Where this process stands: its rank and device in the process group, or a single process
    on ``device`` when there is no group. A rank uses the GPU of its ``LOCAL_RANK``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return Distributed(device=resolve_device(device))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        if device not in (None, "auto", "cuda"):
            raise UnrollError(
                f"--device {device}: under torchrun each process uses the GPU of its local rank; pass --device cuda"
            )
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return Distributed(dist.get_rank(), dist.get_world_size(), resolved)


def _map(state: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(state, torch.Tensor):
        return fn(state)
    return type(state)(fn(t) for t in state)
