"""One run lifecycle for every task: set-up, the epoch loop, clock and budget, stop reasons,
Ctrl-C, resumable state, progress bar and metrics log.

    Run.run():  set up ──► every epoch: for each item (window / batch):
                               stop? (Ctrl-C, max_steps, time budget: one decision for all ranks)
                               train_on(item) ──► evaluate when due ──► early stop?
                           ──► end of epoch (evaluate if the task does) ──► finish(stopped)

A task (``lm.py``: language models, ``classify.py``: classifiers) subclasses :class:`Run` and
supplies its model, its ``step``, its validation, the items of an epoch and a :class:`RunState`
dataclass with its own counters. Saving and restoring happen here, in one place: the state
dataclass, the optimizer, every random number generator and the task's extra tensors go into
``trainer_state.*`` (see ``state.py``) beside the task's model files, in a new
``checkpoint-<step>/`` that replaces the previous one only once it is whole (``unroll.rundir``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from unroll import rundir
from unroll.errors import CheckpointError, TrainingDiverged, UnrollError
from unroll.models.device import resolve_precision
from unroll.train import distributed
from unroll.train.distributed import Distributed
from unroll.train.metrics import CURVE, METRICS, MetricsLog, plot_curve, read_metrics
from unroll.train.state import (
    check_resume_overrides,
    existing_run_error,
    from_json_and_tensors,
    has_trainer_state,
    load_trainer_state,
    save_trainer_state,
    to_json_and_tensors,
)

LOG = logging.getLogger("unroll")
BEST = rundir.BEST
PLAIN_PROGRESS_EVERY = 60.0  # seconds between progress lines when stderr is not a terminal
PLOT_EVERY = 60.0  # seconds between redraws of the learning curve at evaluations (drawing takes a moment)
C = TypeVar("C")


@dataclass
class RunResult:
    """How a run ended and where its files are."""

    out: Path
    stopped: str  # finished | max_steps | time_budget | early_stopping | interrupted
    epoch: int
    steps: int
    elapsed: float  # seconds of training wall time, evaluations included, over all resumes
    signal: int = field(default=0, kw_only=True)  # the signal that interrupted the run, if one did

    @property
    def best_dir(self) -> Path:
        return rundir.best(self.out)

    @property
    def checkpoint(self) -> Path | None:
        """The run's latest resumable checkpoint."""
        return rundir.latest(self.out)

    @property
    def curve(self) -> Path:
        return self.out / CURVE


@dataclass
class RunState:
    """Where a run is, besides weights, optimizer and random generators: all of it is resumed.

    Subclasses add their task's counters. A field whose default is infinite ("no best yet") is
    stored as null, since JSON has no infinity.
    """

    epoch: int = 0  # current epoch, from 0
    step: int = 0  # updates done
    elapsed: float = 0.0  # wall seconds before this session
    stop_best: float = math.inf  # best validation figure for early stopping
    bad_evals: int = 0  # evaluations since stop_best improved
    eval_seconds: float = 0.0  # how long the last validation took (kept free at the time budget)
    lr_scale: float = 1.0  # halved at each rollback after a non-finite loss
    rollbacks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunState":
        """The fields of ``cls`` from ``d`` (a trainer state holds other keys too), cast to their
        defaults' types. The rollback counters, which older states kept only for language models,
        default to none so far."""
        values = {}
        for f in fields(cls):
            default = f.default_factory() if callable(f.default_factory) else f.default
            value = d.get(f.name, default) if f.name in _ADDED_LATER else d[f.name]
            if isinstance(default, float):
                value = math.inf if value is None and math.isinf(default) else float(value)
            elif isinstance(default, int):
                value = int(value)
            values[f.name] = value
        return cls(**values)


_ADDED_LATER = {"lr_scale", "rollbacks"}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Run:
    """The lifecycle both trainers share; subclasses fill in the task (see the module docstring)."""

    state: RunState
    model: torch.nn.Module
    optimizer: Any
    curve_axes: dict[str, Any] = {}  # plot_curve's metric / x / splits for this task
    evaluates_each_epoch = True  # also when evaluating every N updates

    def __init__(self, cfg: Any, out: Path, dist: Distributed, progress: bool, echo: Callable[[str], None] | None):
        self.cfg, self.out, self.dist = cfg, Path(out), dist
        self.device = dist.device
        # A bar on a terminal; elsewhere (a log file) a plain line every PLAIN_PROGRESS_EVERY seconds.
        self.progress = progress and dist.is_main
        self.progress_bar = self.progress and sys.stderr.isatty()
        # The run's messages: to ``echo`` (the CLI prints them), else to the "unroll" logger.
        self.echo = (echo or LOG.info) if dist.is_main else (lambda line: None)
        self.precision = resolve_precision(cfg.precision, self.device)  # "auto" -> bf16 where native, else fp32
        if cfg.precision == "auto":
            self.echo(f"precision: {self.precision} (auto, {self.device.type})")
        seed_everything(cfg.seed)
        self.metrics = MetricsLog(self.out / METRICS)
        self.interrupted = 0  # the signal that asked the run to stop (SIGINT, SIGTERM, SIGUSR1), once one did
        self._session_start = 0.0
        self._plotted = -math.inf  # when the learning curve was last drawn
        self._good: Any = None  # what a rollback restores (see snapshot)
        self._good_step = 0
        self._rolled_back = False

    def _adopt(self, model: torch.nn.Module) -> None:
        """Place the model; under torchrun wrap it in DDP (the training forward is ``self.ddp``)."""
        self.model = model.to(self.device)
        self.ddp = self.dist.wrap(self.model)
        self.dist.reseed(self.cfg.seed)

    # ---- what a task supplies ------------------------------------------------------------
    def step(self, *batch: Any) -> float | None:
        """One update; returns the loss (None when the update was not taken)."""
        raise NotImplementedError

    def epoch_items(self) -> Iterable[Any]:
        """The rest of this epoch's items, from where the run is."""
        raise NotImplementedError

    def train_on(self, item: Any) -> tuple[float | None, int]:
        """Train on one item, move the data position on; returns the loss and the bar's advance."""
        raise NotImplementedError

    def evaluate(self, kind: str) -> bool:
        """A scheduled evaluation (also saves); True when the run should stop early."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        self.state.epoch += 1

    def finish(self, stopped: str) -> None:
        """Inside the Ctrl-C guard, after the loop: the last evaluation and save."""
        raise NotImplementedError

    def result(self, stopped: str) -> RunResult:
        raise NotImplementedError

    def save_model(self, directory: Path) -> None:
        raise NotImplementedError

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)

    def extra_state(self, gathered: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The task's own entries of the trainer state (``gathered``: what :meth:`gather` returned)."""
        return {}

    def load_extra_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        pass

    def task_snapshot(self) -> Any:
        """What the task holds besides state, weights, optimizer and RNGs, for a rollback (the
        language model's carried state, schedule and weight average)."""
        return None

    def restore_task(self, snapshot: Any) -> None:
        pass

    def data_fingerprint(self) -> dict[str, str]:
        """A sha256 per split of what the run trains and validates on, so a resume notices changed data."""
        raise NotImplementedError

    def gather(self) -> Any:
        """Under torchrun, collect what every rank holds and rank 0 saves (before it writes)."""
        return None

    def rng_state(self) -> dict[str, Any]:
        """Every random number source training reads, in JSON-able form (torch's as tensors)."""
        np_state = np.random.get_state(legacy=False)
        np_state["state"]["key"] = np_state["state"]["key"].tolist()
        version, internal, gauss = random.getstate()
        state = {"torch": torch.get_rng_state(), "numpy": np_state, "python": [version, list(internal), gauss]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        np_state = dict(state["numpy"])
        np_state["state"] = {**np_state["state"], "key": np.asarray(np_state["state"]["key"], dtype=np.uint32)}
        np.random.set_state(np_state)
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    @property
    def max_steps(self) -> int | None:
        return self.cfg.max_steps

    def eval_reserve(self) -> float:
        """Seconds to keep free at the time budget for the last evaluation."""
        return self.state.eval_seconds

    def progress_text(self, loss: float) -> str:
        """The progress bar's postfix, given the smoothed training loss."""
        return f"step {self.state.step} loss {loss:.4f}"

    progress_every = 10  # updates between refreshes of the bar's postfix
    progress_unit = "step"

    def bar_position(self) -> tuple[int, int]:
        """The progress bar's total and done counts for the current epoch."""
        raise NotImplementedError

    # ---- the lifecycle -------------------------------------------------------------------
    def start(self) -> RunResult:
        """Run a new training: its metrics log starts empty."""
        if self.dist.is_main:
            self.metrics.truncate(0)
        return self.run()

    def run(self) -> RunResult:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.set_flush_denormal(True)  # denormals make a diverging run several times slower on x86
        self._session_start = self._plotted = time.perf_counter()
        self.on_start()
        self.snapshot()
        with interruptible(self):
            stopped = self._loop()
            self.finish(stopped)
        result = self.result(stopped)
        result.signal = int(self.interrupted) if stopped == "interrupted" else 0
        return result

    def on_start(self) -> None:
        pass

    def _loop(self) -> str:
        while self.state.epoch < self.cfg.epochs:
            stopped = self._epoch()
            if stopped == "rolled_back":  # the data position went back: draw that epoch's items again
                continue
            if stopped:
                return stopped
            self.end_epoch()
            if (self.evaluates_each_epoch or not self.cfg.eval_every) and self.evaluate("epoch"):
                return "early_stopping"
        return "finished"

    def _epoch(self) -> str | None:
        """The rest of the current epoch; a stop reason, "rolled_back", or None at its end."""
        items = iter(self.epoch_items())
        with _progress_bar(self) as bar:
            while True:
                stopped = self.dist.agree(self.should_stop())  # before drawing the next item: keeps RNGs exact
                if stopped:
                    return stopped
                item = next(items, None)
                if item is None:
                    return None
                loss, advance = self.train_on(item)
                if self._rolled_back:
                    self._rolled_back = False
                    return "rolled_back"
                bar.update(loss, advance)
                every = self.cfg.eval_every
                if loss is not None and every and self.state.step % every == 0 and self.evaluate("steps"):
                    return "early_stopping"
                if self.state.step - self._good_step >= self.cfg.rollback_every:
                    self.snapshot()

    def should_stop(self) -> str | None:
        if self.interrupted:
            return "interrupted"
        if self.max_steps is not None and self.state.step >= self.max_steps:
            return "max_steps"
        budget = self.cfg.time_budget
        if budget is not None and self.elapsed() + self.eval_reserve() >= budget:
            return "time_budget"
        return None

    def elapsed(self) -> float:
        """Training wall time over all sessions of this run, evaluations included."""
        return self.state.elapsed + time.perf_counter() - self._session_start

    def patience_ran_out(self, value: float) -> bool:
        """Early stopping: count evaluations since ``value`` (lower is better) last improved."""
        if value < self.state.stop_best:
            self.state.stop_best, self.state.bad_evals = value, 0
            return False
        self.state.bad_evals += 1
        return self.cfg.patience > 0 and self.state.bad_evals >= self.cfg.patience

    # ---- non-finite losses --------------------------------------------------------------
    def snapshot(self) -> None:
        """Keep in memory what a rollback goes back to: the state with the data position,
        weights, optimizer, every RNG and the task's own (taken every ``rollback_every`` updates
        and after each finite validation)."""
        self._good = copy.deepcopy((self.state.to_dict(), self.model.state_dict(), self.optimizer.state_dict(),
                                    self.rng_state(), self.task_snapshot()))
        self._good_step = self.state.step

    def roll_back(self, what: str) -> None:
        """After a non-finite loss or gradient: back to the snapshot, the same data again with
        half the lr, or give up after ``max_rollbacks``. Every rank sees the same loss, so all
        roll back together."""
        s = self.state
        if s.rollbacks >= self.cfg.max_rollbacks:
            raise TrainingDiverged(
                f"training diverged: {what} at step {s.step} (epoch {s.epoch + 1}) after "
                f"{s.rollbacks} rollbacks with the lr halved each time; lower --lr or --clip"
            )
        rollbacks, lr_scale = s.rollbacks + 1, s.lr_scale * 0.5
        state, weights, optimizer, rng, task = copy.deepcopy(self._good)
        self.state = type(self.state).from_dict(state)
        self.state.rollbacks, self.state.lr_scale = rollbacks, lr_scale
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(optimizer)
        for group in self.optimizer.param_groups:  # lr_factor: a group's share of the lr (classifier encoder)
            group["lr"] = self.base_lr() * lr_scale * group.get("lr_factor", 1.0)
        self.set_rng_state(rng)
        self.restore_task(task)
        self._rolled_back = True
        self.echo(f"{what} at step {s.step}: rolled back to step {self.state.step}; lr now x{lr_scale:g}")

    def base_lr(self) -> float:
        """The lr the settings give, before any rollback halved it."""
        return self.cfg.lr

    # ---- the resumable checkpoint --------------------------------------------------------
    def save(self, plot: bool = False) -> None:
        """A new ``checkpoint-<step>/``: model files, then the trainer state (see state.py), put
        in place whole; only the newest ``keep_last`` stay. Then the learning curve (with
        ``plot``, else at most every PLOT_EVERY seconds). Under torchrun every rank sends what it
        alone holds (its dropout RNG, the task's state); rank 0 writes."""
        gathered, rank_rng = self.gather(), self.dist.gather_rng()
        if not self.dist.is_main:
            return
        tensors: dict[str, torch.Tensor] = {}
        meta = {
            **self.state.to_dict(), "elapsed": self.elapsed(), "metrics_lines": self.metrics.lines,
            "optimizer": to_json_and_tensors(self.optimizer.state_dict(), "optimizer", tensors),
            "rng": to_json_and_tensors(self.rng_state(), "rng", tensors),
            "world_size": self.dist.world_size, "rank_rng": to_json_and_tensors(rank_rng, "rank_rng", tensors),
            "data": self.data_fingerprint(),
            **self.extra_state(gathered, tensors),
        }

        def write(directory: Path) -> None:
            self.save_model(directory)
            save_trainer_state(directory, meta, tensors)

        rundir.save_checkpoint_dir(self.out, self.state.step, write, self.cfg.keep_last)
        if plot or time.perf_counter() - self._plotted >= PLOT_EVERY:
            records = read_metrics(self.metrics.path) if self.metrics.path.is_file() else []
            if records:
                plot_curve(records, self.out / CURVE, title=self.out.name, **self.curve_axes)
            self._plotted = time.perf_counter()

    def load(self, weights: dict[str, torch.Tensor], meta: dict[str, Any], tensors: dict[str, torch.Tensor],
             allow_data_change: bool = False) -> None:
        """Restore what :meth:`save` wrote; a state that does not fit is one CheckpointError, and
        so is training data that changed since (unless ``allow_data_change``)."""
        saved = meta.get("data")
        if saved is not None and not allow_data_change:
            changed = sorted(k for k, v in self.data_fingerprint().items() if saved.get(k) != v)
            if changed:
                raise CheckpointError(f"{self.cfg.data}: the {' and '.join(changed)} data differ from what {self.out} "
                                      f"was trained on; resume with the same data, or --allow-data-change")
        try:
            self.load_weights(weights)
            self.optimizer.load_state_dict(from_json_and_tensors(meta["optimizer"], tensors))
            self.load_extra_state(meta, tensors)
            self.state = type(self.state).from_dict(meta)
            if self.dist.is_main:
                self.metrics.truncate(int(meta["metrics_lines"]))
            self.set_rng_state(from_json_and_tensors(meta["rng"], tensors))
            self.dist.restore_rng(from_json_and_tensors(meta.get("rank_rng"), tensors), self.cfg.seed, self.state.step)
            saved_world = int(meta.get("world_size", 1))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.out}: trainer state does not fit this run ({type(e).__name__}: {e})") from None
        if saved_world != self.dist.world_size:
            self.echo(f"resuming a {saved_world}-process run on {self.dist.world_size}: same global batch and data "
                      f"order; dropout masks (if any) differ from an uninterrupted run")


# ---- starting and resuming ---------------------------------------------------------------

# What a run writes into its directory besides its checkpoints (``unroll.rundir``);
# ``--overwrite`` removes these and those, and nothing else.
RUN_FILES = (METRICS, CURVE)


def claim_out_dir(out: Path, dist: Distributed, overwrite: bool = False, restart: bool = False) -> None:
    """A new run writes only into a new or empty directory, never over a user's files.

    A directory holding a resumable run is refused (continue it with ``--resume``), and so is one
    holding anything else; ``overwrite`` removes the files a run writes (checkpoints, ``best/``,
    metrics, curve) and leaves all others. ``restart`` (``--resume-if-exists``): a run stopped
    before its first checkpoint, which left only a run's own files, starts again.
    Rank 0's disk decides for all ranks.
    """
    def prepare() -> str | None:
        if not out.exists():
            return None
        if not out.is_dir():
            return f"--out {out} is a file, not a directory; choose another --out"
        if restart and not has_trainer_state(out) and all(_written_by_a_run(p) for p in out.iterdir()):
            return prepare_overwrite()
        if overwrite:
            return prepare_overwrite()
        if has_trainer_state(out):
            return str(existing_run_error(out))
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            return (f"--out {out} is not empty ({shown}); choose a new or empty directory, "
                    f"or --overwrite to replace the files a run writes")
        return None

    def prepare_overwrite() -> None:
        rundir.remove_run(out)
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)

    problem = dist.from_main(prepare)
    if problem:
        raise UnrollError(problem)


def _written_by_a_run(path: Path) -> bool:
    name = path.name
    return (name in RUN_FILES or name == BEST or name.startswith((rundir.STAGING_PREFIX, rundir.ASIDE_PREFIX))
            or (name.startswith(".") and name.endswith(".tmp")))


def settings_to_resume_with(out: Path, dist: Distributed, cfg: Any, model: Any,
                            read_checkpoint: Callable[[Path], Any]) -> dict[str, Any] | None:
    """For ``resume_if_exists``: None when ``out`` holds no run yet; else the settings of ``cfg``
    that differ from those the run was started with (the resume refuses any that shaped it).

    So one command line both starts a run and, run again (a torchrun restart, a requeued job),
    continues it. The model settings must be the ones the run was started with.
    """
    def exists() -> bool:
        rundir.recover(out)
        return has_trainer_state(out)

    if not dist.from_main(exists):
        return None
    ckpt = dist.from_main(lambda: read_checkpoint(out))
    stored_model = ckpt.model.to_dict()
    given = model.to_dict() if hasattr(model, "to_dict") else dict(model or {})
    clash = [f"{k} {stored_model[k]!r}, not {v!r}" for k, v in given.items() if k in stored_model
             and k != "vocab_size" and v is not None and v != stored_model[k]]
    if clash:
        raise UnrollError(f"{out} holds a run with other model settings ({'; '.join(clash)}); "
                          f"use another --out, or --resume {out} to continue it as it is")
    new = json.loads(json.dumps(absolute_data(cfg).to_dict()))
    stored = ckpt.extra.get("train", {})
    return {k: v for k, v in new.items() if stored.get(k) != v}


def resumed_settings(out: Path, extra: dict[str, Any], from_dict: Callable[[dict[str, Any]], C],
                     overrides: dict[str, Any] | None) -> C:
    """The training settings a run directory was started with, and the overrides of the resume."""
    if "train" not in extra:
        raise CheckpointError(f"{out / 'config.json'}: has no training settings to resume with")
    return from_dict({**extra["train"], **(overrides or {})})


def read_run(out: Path, dist: Distributed, read_checkpoint: Callable[[Path], Any], overrides: dict[str, Any] | None,
             allowed: set[str]) -> tuple[Any, dict, dict]:
    """The last checkpoint of ``out`` and its trainer state, read by rank 0 and sent to all, once
    the overrides are known to be ones a resume may change."""
    check_resume_overrides(overrides, allowed)

    def read() -> tuple[Any, dict, dict]:
        rundir.recover(out)  # what a killed save left behind
        return read_checkpoint(out), *load_trainer_state(out)

    return dist.from_main(read)


def absolute_data(cfg: Any) -> Any:
    """A data path made absolute, so that a resume finds it from any directory."""
    return replace(cfg, data=str(Path(cfg.data).resolve())) if Path(cfg.data).exists() else cfg


def resolve_dist(dist: Distributed | None, device: str | None) -> Distributed:
    """The command's Distributed, or (library use) this process's."""
    return dist if dist is not None else distributed.current(device)


# ---- Ctrl-C and the progress bar ---------------------------------------------------------

# Signals that ask a run to save and stop: Ctrl-C, a scheduler's or container's stop, and the
# usual cluster warning before preemption (SIGUSR1). A process stopped by one exits with 128 + its number.
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None)


@contextmanager
def interruptible(run: Any) -> Iterator[None]:
    """The first stop signal: finish the current update, save, stop. A second Ctrl-C: stop at once.

    ``run``: anything with ``interrupted`` (set here to the signal's number, read by its loop) and ``dist``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        # torchrun forwards each Ctrl-C again, so under it a second one is not a second press
        if run.interrupted and signum == signal.SIGINT and not run.dist.enabled:
            raise KeyboardInterrupt
        run.interrupted = run.interrupted or signum

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class _Bar:
    """Progress through one epoch: a tqdm bar on a terminal, else a plain line every
    PLAIN_PROGRESS_EVERY seconds; the task's text shows a smoothed training loss."""

    def __init__(self, run: Run):
        self.run, self.bar, self.avg = run, None, None
        self.total, self.done = run.bar_position() if run.progress else (0, 0)
        self.last_line = time.perf_counter()
        if run.progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, file=sys.stderr, dynamic_ncols=True, leave=False,
                            desc=self._epoch(), unit=run.progress_unit)

    def _epoch(self) -> str:
        return f"epoch {self.run.state.epoch + 1}/{self.run.cfg.epochs}"

    def update(self, loss: float | None, advance: int) -> None:
        if not self.run.progress:
            return
        if loss is not None:
            self.avg = loss if self.avg is None else 0.95 * self.avg + 0.05 * loss
        self.done += advance
        if self.bar is not None:
            self.bar.update(advance)
            if self.run.state.step % self.run.progress_every == 0 and self.avg is not None:
                self.bar.set_postfix_str(self.run.progress_text(self.avg), refresh=False)
        elif self.avg is not None and time.perf_counter() - self.last_line >= PLAIN_PROGRESS_EVERY:
            self.last_line = time.perf_counter()
            self.run.echo(f"{self._epoch()} | {min(self.done, self.total)}/{self.total} {self.run.progress_unit}s | "
                          f"{self.run.progress_text(self.avg)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _progress_bar(run: Run) -> Iterator[_Bar]:
    bar = _Bar(run)
    try:
        yield bar
    finally:
        bar.close()


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def fingerprint(*arrays: np.ndarray) -> str:
    """The sha256 of arrays' values (as int64), in order; read in blocks, so a memory-mapped
    corpus is never copied whole."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a).reshape(-1)
        for lo in range(0, len(a), 1 << 20):
            h.update(np.ascontiguousarray(a[lo : lo + (1 << 20)], dtype=np.int64).tobytes())
    return h.hexdigest()
