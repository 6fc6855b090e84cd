"""The training loop: truncated backpropagation through time over a token stream.

    train ids ──batchify──► [N, B] ──iter_bptt──► x [T, B], y [T, B]  (y = x one row later)
                                                     │
          state carried from the previous window ──► model ──► logits ──► mean CE per token
          (values kept, graph cut: detach)                                      │
                                              clip global grad norm ◄─ backward ┘ ──► optimizer step

Each epoch ends with an evaluation on the validation stream (and every ``eval_every`` updates
if asked); after each evaluation the run directory gets a resumable checkpoint and, when
validation improved, ``best/`` gets the weights. A run stops when the epochs are done, at
``max_steps``, at the ``time_budget`` (leaving time for a last evaluation), on early stopping,
or on Ctrl-C (a resumable checkpoint is written first; ``resume`` continues bit for bit).

The loss is the mean cross-entropy per token. TensorFlow's PTB tutorial sums it over the
``num_steps`` time steps instead, so its lr 1 / clip 5 equals lr 20 / clip 0.25 here at 20 steps.
"""

from __future__ import annotations

import copy
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unroll.checkpoint import load_checkpoint
from unroll.config import ModelConfig, TrainConfig
from unroll.data import batchify, iter_bptt, load_corpus
from unroll.errors import CheckpointError, DataError, TrainingDiverged, UnrollError
from unroll.models import LanguageModel, detach_state, load_model, save_model
from unroll.models.device import resolve_precision
from unroll.train import distributed
from unroll.train.metrics import CURVE, METRICS, MetricsLog, plot_curve, read_metrics
from unroll.train.optim import NTASGD, TailAverage, averaged_weights, build_optimizer
from unroll.train.schedule import Schedule
from unroll.train.state import (
    check_resume_overrides,
    existing_run_error,
    from_json_and_tensors,
    has_trainer_state,
    load_trainer_state,
    save_trainer_state,
    to_json_and_tensors,
)
from unroll.use.evaluate import evaluate

BEST = "best"
# Settings a resumed run may change: how long it goes on and how it is watched, not what it did.
RESUMABLE_OVERRIDES = {"epochs", "max_steps", "time_budget", "patience", "eval_every", "max_rollbacks",
                       "eval_batch_size", "test_batch_size", "final_test"}


@dataclass
class TrainResult:
    """How a run ended and where its files are."""

    out: Path
    stopped: str  # finished | max_steps | time_budget | early_stopping | interrupted
    epoch: int
    steps: int
    elapsed: float  # seconds of training wall time, evaluations included, over all resumes
    best_valid: dict[str, float] | None  # evaluate()'s dict for the best checkpoint
    test: dict[str, float] | None  # the best checkpoint on the test split, when there is one
    level: str = "word"  # the corpus's tokenization level (bits per character mean something for char)

    @property
    def best_dir(self) -> Path:
        return self.out / BEST

    @property
    def curve(self) -> Path:
        return self.out / CURVE


def train(
    cfg: TrainConfig,
    model: ModelConfig | dict[str, Any],
    out: str | Path,
    corpus: Any = None,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a new model into the run directory ``out``.

    ``model`` is a :class:`ModelConfig` or its fields without ``vocab_size`` (taken from the
    corpus). ``corpus`` defaults to ``load_corpus(cfg.data, ...)``. ``echo`` receives one line
    per evaluation; ``progress`` shows a progress bar on stderr.
    """
    out = Path(out)
    if has_trainer_state(out):
        raise existing_run_error(out)
    if corpus is None:
        cfg, corpus = _load_corpus(cfg)
    if not isinstance(model, ModelConfig):
        model = ModelConfig(vocab_size=len(corpus.vocab), **model)
    if model.vocab_size != len(corpus.vocab):
        raise UnrollError(f"model vocab_size {model.vocab_size} differs from the corpus vocabulary ({len(corpus.vocab)})")
    trainer = Trainer(cfg, model, corpus, out, device, progress, echo)
    if trainer.dist.is_main:
        trainer.metrics.truncate(0)  # a fresh run starts a fresh log
    return trainer.run()


def resume(
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Continue the run in ``out`` exactly where its last checkpoint left it.

    ``overrides`` may change the settings in ``RESUMABLE_OVERRIDES`` (``epochs``, ``max_steps``,
    ``time_budget``, ``patience``, ``eval_every`` ...), not those that shaped the run so far.
    """
    out = Path(out)
    check_resume_overrides(overrides, RESUMABLE_OVERRIDES)
    ckpt, meta, tensors = distributed.current(device).from_main(lambda: (load_checkpoint(out), *load_trainer_state(out)))
    if "train" not in ckpt.extra:
        raise CheckpointError(f"{out / 'config.json'}: has no training settings to resume with")
    cfg = TrainConfig.from_dict({**ckpt.extra["train"], **(overrides or {})})
    cfg, corpus = _load_corpus(cfg)
    if corpus.vocab.to_dict() != ckpt.vocab:
        raise CheckpointError(f"{cfg.data}: its vocabulary differs from the one {out} was trained with; the data changed")
    trainer = Trainer(cfg, ckpt.model, corpus, out, device, progress, echo)
    trainer.load(ckpt, meta, tensors)
    return trainer.run()


def _load_corpus(cfg: TrainConfig) -> tuple[TrainConfig, Any]:
    """The corpus the config names; a path is made absolute so that a resume finds it anywhere."""
    with distributed.current().main_first():  # rank 0 downloads into the cache, if needed, alone
        corpus = load_corpus(cfg.data, level=cfg.level, max_size=cfg.max_vocab, encoding=cfg.encoding)
    if Path(cfg.data).exists():
        cfg = replace(cfg, data=str(Path(cfg.data).resolve()))
    for split in ("train", "valid"):
        if split not in corpus.splits:
            raise DataError(f"{cfg.data}: has no {split} split; training needs train and valid")
    return cfg, corpus


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """One training run: the model, optimizer, schedule, data position and bookkeeping."""

    def __init__(
        self,
        cfg: TrainConfig,
        model_cfg: ModelConfig,
        corpus: Any,
        out: Path,
        device: str | None = None,
        progress: bool = False,
        echo: Callable[[str], None] | None = None,
    ):
        self.cfg, self.corpus, self.out = cfg, corpus, Path(out)
        self.dist = distributed.current(device)  # rank and device under torchrun; one process otherwise
        self.device = self.dist.device
        self.progress = progress and self.dist.is_main
        self.echo = (echo if self.dist.is_main else None) or (lambda line: None)
        self.precision = resolve_precision(cfg.precision, self.device)  # "auto" -> bf16 where native, else fp32
        if cfg.precision == "auto":
            self.echo(f"precision: {self.precision} (auto, {self.device.type})")
        seed_everything(cfg.seed)
        self.model = LanguageModel(model_cfg).to(self.device)
        self.ddp = self.dist.wrap(self.model)  # the training forward; under torchrun DDP averages gradients
        self.dist.reseed(cfg.seed)
        self._foreach = self.device.type in ("cpu", "cuda")  # one multi-tensor kernel, not one per parameter
        # Plain SGD: scaling the gradient by the clip factor is scaling the step, so clipping costs
        # one multiplication of the lr, not a pass over every gradient.
        self._clip_by_lr = cfg.optimizer in ("sgd", "ntasgd") and cfg.weight_decay == 0
        # Plain SGD on an untied embedding, one process: its gradient holds only the batch's rows
        # (a few hundred of 10k words), so no [V, E] zeros, norm and update per step. Same numbers.
        self.model.sparse_embedding_grad = (
            cfg.optimizer == "sgd" and cfg.weight_decay == 0 and not model_cfg.tie_weights
            and self.dist.world_size == 1 and self.device.type in ("cpu", "cuda")
        )
        self.optimizer = build_optimizer(cfg, self.model.parameters(), self.model.sparse_embedding_grad)
        self.average = TailAverage(self.model) if cfg.average_from is not None else None  # --average-from
        self.schedule = Schedule(cfg)
        train_ids = np.asarray(corpus.splits["train"], dtype=np.int64)
        self.train_data = self.dist.shard_columns(batchify(train_ids, cfg.batch_size))  # this rank's columns
        if self.train_data.shape[0] < 2:
            raise DataError(
                f"{cfg.data}: the train split has {len(corpus.splits['train'])} tokens, too few for "
                f"batch size {cfg.batch_size}; lower --batch-size"
            )
        self.steps_per_epoch = math.ceil((self.train_data.shape[0] - 1) / cfg.bptt)
        self.data_rng = np.random.default_rng(cfg.seed)  # window lengths when random_bptt
        self.extra = {"text": corpus.text.to_dict(), "train": cfg.to_dict()}
        self.metrics = MetricsLog(self.out / METRICS)
        # Where training is; all of it goes into the trainer state.
        self.epoch = 0  # current epoch, from 0
        self.step = 0  # updates done
        self.row = 0  # next window's first row in train_data
        self.tokens = 0  # training tokens seen
        self.elapsed = 0.0  # wall seconds before this session
        self.hidden: Any = None  # carried state (None: zeros)
        self.lr_scale = 1.0  # halved at each rollback after a non-finite loss
        self.rollbacks = 0
        self.best_loss = math.inf  # best validation loss so far (best/ holds its weights)
        self.stop_best, self.bad_evals = math.inf, 0  # early stopping
        self.loss_sum, self.loss_tokens = 0.0, 0  # training loss since the last evaluation
        self.eval_seconds = 0.0  # how long the last validation took (kept free at the time budget)
        self.best_valid: dict[str, float] | None = None
        self.interrupted = False
        self._good: tuple[Any, ...] | None = None  # last known-good weights + optimizer state
        self._session_start = 0.0
        self._validated_at: int | None = None  # step of the last validation in this session
        self._session_tokens = 0

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.set_flush_denormal(True)  # denormals make a diverging run ~7x slower on x86
        self._session_start = time.perf_counter()
        self._good = self._snapshot()
        with interruptible(self):
            stopped = self._loop()
            if stopped in ("max_steps", "time_budget") and self._validated_at != self.step:
                self._validate("final")
            if stopped in ("max_steps", "time_budget", "interrupted"):
                self._save()  # epoch ends and early stopping saved already
        test = None
        testable = self.cfg.final_test and "test" in self.corpus.splits and (self.out / BEST).is_dir()
        if self.dist.is_main and stopped != "interrupted" and testable:
            test = self._test()
        return TrainResult(self.out, stopped, self.epoch, self.step, self._elapsed(), self.best_valid, test,
                           self.corpus.text.level)

    def _loop(self) -> str:
        while self.epoch < self.cfg.epochs:
            stopped = self._train_epoch()
            if stopped:
                return stopped
            self.epoch, self.row, self.hidden = self.epoch + 1, 0, None
            if self._scheduled_evaluation("epoch"):
                return "early_stopping"
        return "finished"

    def _train_epoch(self) -> str | None:
        cfg = self.cfg
        windows = iter_bptt(self.train_data, cfg.bptt, start=self.row, rng=self.data_rng, random_length=cfg.random_bptt)
        with _progress_bar(self) as bar:
            while True:
                stopped = self.dist.agree(self._should_stop())  # before drawing the next window: keeps data_rng exact
                if stopped:
                    return stopped
                window = next(windows, None)
                if window is None:
                    return None
                row, x, y = window
                loss = self._train_step(x, y)
                self.row = row + len(x)
                bar.update(loss, len(x))
                due = loss is not None and cfg.eval_every and self.step % cfg.eval_every == 0
                if due and self._scheduled_evaluation("steps"):
                    return "early_stopping"

    def _should_stop(self) -> str | None:
        cfg = self.cfg
        if self.interrupted:
            return "interrupted"
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget is not None and self._elapsed() + self._eval_reserve() >= cfg.time_budget:
            return "time_budget"
        return None

    def _eval_reserve(self) -> float:
        """Seconds to keep for the last evaluation: the last one's, or before any, an estimate
        (a forward pass costs about a third of a training step per token). The estimate waits
        for 20 updates: the first ones are slow (oneDNN builds its kernels) and would stop a
        short budget after one step."""
        warm = self._session_tokens >= 20 * self.cfg.batch_size * self.cfg.bptt
        if self.eval_seconds or not warm:
            return self.eval_seconds
        rate = self._session_tokens / max(time.perf_counter() - self._session_start, 1e-9)
        return len(self.corpus.splits["valid"]) / rate / 3

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> float | None:
        """One update on window ``x -> y``; returns the loss, or None after a rollback."""
        cfg = self.cfg
        x_t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        y_t = torch.from_numpy(np.ascontiguousarray(y)).to(self.device)
        lr = self.dist.same(self.lr()) if cfg.time_budget else self.lr()  # rank 0's clock sets the lr for all
        if cfg.random_bptt:  # AWD-LSTM: shorter windows take smaller steps
            lr *= x_t.size(0) / cfg.bptt
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            # targets: the model's fused decoder + mean cross-entropy (unroll.models.loss)
            if cfg.ar or cfg.tar:  # AWD-LSTM's activation penalties join the objective, not the loss shown
                loss, hidden, penalty = self.ddp(
                    x_t, detach_state(self.hidden), targets=y_t, activation_reg=(cfg.ar, cfg.tar)
                )
                objective = loss + penalty
            else:
                loss, hidden = self.ddp(x_t, detach_state(self.hidden), targets=y_t)
                objective = loss
        value = self.dist.mean_item(loss)  # the whole batch's mean loss, on every rank
        if not math.isfinite(value):
            self._roll_back(f"loss {value}")
            return None
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if cfg.clip > 0:
            params = [p for p in self.model.parameters() if p.grad is not None]
            total = _total_norm([p.grad for p in params], self._foreach)
            norm = float(total)
            if not math.isfinite(norm):
                self._roll_back(f"gradient norm {norm}")
                return None
            coef = cfg.clip / (norm + 1e-6)
            if coef < 1 and self._clip_by_lr:
                lr *= coef
            elif coef < 1:
                torch.nn.utils.clip_grads_with_norm_(params, cfg.clip, total, foreach=self._foreach)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.hidden = hidden
        self.step += 1
        if self.average is not None and self._progress() >= cfg.average_from:
            if not self.average.count:
                self.echo(f"step {self.step}: from here on the weights are averaged (average_from {cfg.average_from:g})")
            self.average.update(self.model)
        n = y_t.numel() * self.dist.world_size  # tokens in the whole batch
        self.tokens += n
        self._session_tokens += n
        self.loss_sum += value * n
        self.loss_tokens += n
        return value

    def lr(self) -> float:
        """The learning rate for the next update."""
        return self.schedule.lr(self.epoch, self.step, self._progress()) * self.lr_scale

    def _progress(self) -> float:
        """Fraction of the run done: by updates, or by the time budget when that ends it sooner."""
        total = self.cfg.epochs * self.steps_per_epoch
        if self.cfg.max_steps is not None:
            total = min(total, self.cfg.max_steps)
        done = self.step / max(total, 1)
        if self.cfg.time_budget is not None:
            done = max(done, self._elapsed() / self.cfg.time_budget)
        return done

    def _elapsed(self) -> float:
        return self.elapsed + time.perf_counter() - self._session_start

    # ---- non-finite losses ---------------------------------------------------------------
    def _snapshot(self) -> tuple[Any, ...]:
        average = self.average.state_dict() if self.average is not None else None
        return copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict(), self.schedule.state_dict(), average))

    def _roll_back(self, what: str) -> None:
        """Go back to the last good weights with half the lr, or give up after max_rollbacks."""
        if self.rollbacks >= self.cfg.max_rollbacks:
            raise TrainingDiverged(
                f"training diverged: {what} at step {self.step} (epoch {self.epoch + 1}) after "
                f"{self.rollbacks} rollbacks with the lr halved each time; lower --lr or --clip"
            )
        self.rollbacks += 1
        self.lr_scale *= 0.5
        weights, optim, sched, average = copy.deepcopy(self._good)
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(optim)
        self.schedule.load_state_dict(sched)
        if average is not None:
            self.average.load_state_dict(average)
        self.hidden = None
        self.echo(f"{what} at step {self.step}: rolled back to the last good state; lr now x{self.lr_scale:g}")

    # ---- evaluation and checkpoints ------------------------------------------------------
    def _scheduled_evaluation(self, kind: str) -> bool:
        """Evaluate, let the schedule / NT-ASGD / early stopping react, save; True: stop early."""
        loss = self._validate(kind)["loss"]
        self.schedule.on_validation(loss)
        if isinstance(self.optimizer, NTASGD) and self.optimizer.on_validation(loss):
            self.echo(f"step {self.step}: validation stalled, NT-ASGD now averages the weights")
        stop = False
        if loss < self.stop_best:
            self.stop_best, self.bad_evals = loss, 0
        else:
            self.bad_evals += 1
            stop = self.cfg.patience > 0 and self.bad_evals >= self.cfg.patience
        if math.isfinite(loss):
            self._good = self._snapshot()
        self._save(plot=kind == "epoch")
        return stop

    def _validate(self, kind: str) -> dict[str, float]:
        """Validation perplexity of the weights that count (NT-ASGD's or the tail average, once
        either has begun); keeps best/ up to date.

        Touches nothing that steers training, so a run stopped here resumes exactly.
        """
        self._validated_at = self.step
        cfg, t0 = self.cfg, time.perf_counter()
        averaging = self.average is not None and self.average.count > 0
        model = self.average.model if averaging else self.model
        with averaged_weights(self.optimizer):
            res = self.dist.from_main(  # rank 0 evaluates alone: exactly one process's perplexity
                lambda: evaluate(model, self.corpus.splits["valid"], cfg.eval_batch_size, cfg.bptt, self.precision))
            if res["loss"] < self.best_loss:
                self.best_loss, self.best_valid = res["loss"], res
                if self.dist.is_main:
                    save_model(model, self.out / BEST, self.corpus.vocab.to_dict(), self.extra)
        self.eval_seconds = time.perf_counter() - t0
        train_loss = self.loss_sum / self.loss_tokens if self.loss_tokens else None
        self.loss_sum, self.loss_tokens = 0.0, 0
        record = {
            "kind": kind, "epoch": self.epoch, "step": self.step, "tokens": self.tokens,
            "elapsed": round(self._elapsed(), 3), "lr": self.lr(),
            "train_loss": train_loss, "train_ppl": _ppl(train_loss),
            "valid_loss": res["loss"], "valid_ppl": res["ppl"], "valid_bpc": res["bpc"],
            "best": res["loss"] <= self.best_loss,
        }
        if self.average is not None:
            record["averaged_steps"] = self.average.count
        if self.dist.is_main:
            self.metrics.write(record)
        unit = f"bpc {res['bpc']:.4f}" if self.corpus.text.level == "char" else f"ppl {res['ppl']:.2f}"
        train_txt = f"train ppl {record['train_ppl']:.2f} | " if train_loss is not None else ""
        self.echo(
            f"{kind:>5} | epoch {self.epoch} | step {self.step} | lr {record['lr']:.4g} | {train_txt}"
            f"valid loss {res['loss']:.4f} {unit}{' *' if record['best'] else ''} | {self._elapsed():.0f}s"
        )
        return res

    def _test(self) -> dict[str, float]:
        """The best checkpoint on the test split (batch ``test_batch_size``, state carried)."""
        model, _ = load_model(self.out / BEST, device=self.device)
        res = evaluate(model, self.corpus.splits["test"], self.cfg.test_batch_size, self.cfg.bptt, self.precision)
        self.metrics.write({"kind": "test", "epoch": self.epoch, "step": self.step, "tokens": self.tokens,
                            "test_loss": res["loss"], "test_ppl": res["ppl"], "test_bpc": res["bpc"]})
        self.echo(f" test | best checkpoint | loss {res['loss']:.4f} ppl {res['ppl']:.2f} bpc {res['bpc']:.4f}")
        return res

    def _save(self, plot: bool = True) -> None:
        """The resumable checkpoint: model files first, the trainer state last (see state.py);
        then the learning curve (at epoch ends and when the run stops: drawing takes a moment).
        Under torchrun every rank sends its hidden state and dropout RNG; rank 0 writes."""
        hidden, rank_rng = self.dist.gather_state(self.hidden), self.dist.gather_rng()
        if not self.dist.is_main:
            return
        save_model(self.model, self.out, self.corpus.vocab.to_dict(), self.extra)
        tensors: dict[str, torch.Tensor] = {}
        meta = {
            "epoch": self.epoch, "step": self.step, "row": self.row, "tokens": self.tokens,
            "elapsed": self._elapsed(), "lr_scale": self.lr_scale, "rollbacks": self.rollbacks,
            "best_loss": _finite(self.best_loss), "best_valid": self.best_valid,
            "stop_best": _finite(self.stop_best), "bad_evals": self.bad_evals,
            "loss_sum": self.loss_sum, "loss_tokens": self.loss_tokens, "eval_seconds": self.eval_seconds,
            "metrics_lines": self.metrics.lines,
            "schedule": self.schedule.state_dict(),
            "optimizer": to_json_and_tensors(self.optimizer.state_dict(), "optimizer", tensors),
            "hidden": to_json_and_tensors(hidden, "hidden", tensors),
            "rng": to_json_and_tensors(_rng_state(self.data_rng), "rng", tensors),
            "world_size": self.dist.world_size, "rank_rng": to_json_and_tensors(rank_rng, "rank_rng", tensors),
            "average": None if self.average is None else to_json_and_tensors(self.average.state_dict(), "average", tensors),
        }
        save_trainer_state(self.out, meta, tensors)
        records = read_metrics(self.metrics.path) if plot and self.metrics.path.is_file() else []
        if records:
            plot_curve(records, self.out / CURVE, title=self.out.name)

    def load(self, ckpt: Any, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore weights and trainer state saved by :meth:`_save`."""
        try:
            weights = LanguageModel.from_checkpoint(ckpt).state_dict()
            self.model.load_state_dict(weights)
            self.optimizer.load_state_dict(from_json_and_tensors(meta["optimizer"], tensors))
            self.schedule.load_state_dict(meta["schedule"])
            if self.average is not None:
                self.average.load_state_dict(from_json_and_tensors(meta["average"], tensors))
            hidden = self.dist.shard_state(from_json_and_tensors(meta["hidden"], tensors))
            self.hidden = tuple(t.to(self.device) for t in hidden) if isinstance(hidden, list) else (
                None if hidden is None else hidden.to(self.device))
            for name in ("epoch", "step", "row", "tokens", "rollbacks", "bad_evals", "loss_tokens"):
                setattr(self, name, int(meta[name]))
            for name in ("elapsed", "lr_scale", "loss_sum", "eval_seconds"):
                setattr(self, name, float(meta[name]))
            self.best_loss = _inf_if_none(meta["best_loss"])
            self.stop_best = _inf_if_none(meta["stop_best"])
            self.best_valid = meta["best_valid"]
            if self.dist.is_main:
                self.metrics.truncate(int(meta["metrics_lines"]))
            _set_rng_state(from_json_and_tensors(meta["rng"], tensors), self.data_rng)
            self.dist.restore_rng(from_json_and_tensors(meta.get("rank_rng"), tensors), self.cfg.seed, self.step)
            saved_world = int(meta.get("world_size", 1))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.out}: trainer state does not fit this run ({type(e).__name__}: {e})") from None
        if saved_world != self.dist.world_size:
            self.echo(f"resuming a {saved_world}-process run on {self.dist.world_size}: same global batch and data "
                      f"order; dropout masks (if any) differ from an uninterrupted run")


# ---- helpers -----------------------------------------------------------------------------

def _total_norm(grads: list[torch.Tensor], foreach: bool) -> torch.Tensor:
    """The global L2 norm of ``grads``, sparse ones included (``get_total_norm`` takes only dense)."""
    dense = [g for g in grads if not g.is_sparse]
    norm = torch.nn.utils.get_total_norm(dense, foreach=foreach) if dense else torch.zeros(())
    for g in grads:
        if g.is_sparse:  # repeated rows must be summed before squaring
            norm = torch.linalg.vector_norm(torch.stack([norm.to(g.dtype), g.coalesce().values().norm()]))
    return norm


def _ppl(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 700.0))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _inf_if_none(x: float | None) -> float:
    return math.inf if x is None else float(x)


def _rng_state(data_rng: np.random.Generator) -> dict[str, Any]:
    """Every random number source training reads, in JSON-able form (torch's as tensors)."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np_state,
        "python": [version, list(internal), gauss],
        "data": data_rng.bit_generator.state,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], data_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np_state = dict(state["numpy"])
    np_state["state"] = {**np_state["state"], "key": np.asarray(np_state["state"]["key"], dtype=np.uint32)}
    np.random.set_state(np_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    data_rng.bit_generator.state = state["data"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def interruptible(trainer: Any) -> Iterator[None]:
    """First Ctrl-C: finish the current update, save, stop. Second: stop at once.

    ``trainer``: a run with ``interrupted`` (set here, read by its loop) and ``dist`` (its
    :class:`~unroll.train.distributed.Distributed`); the language-model and classification
    trainers use it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if trainer.interrupted and not trainer.dist.enabled:  # torchrun forwards each Ctrl-C again: no 2nd press
            raise KeyboardInterrupt
        trainer.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Bar:
    """A tqdm bar for one epoch with loss, perplexity, lr, tokens/s and the whole run's ETA."""

    def __init__(self, trainer: Trainer):
        self.t = trainer
        self.bar = None
        self.avg: float | None = None
        if trainer.progress:
            from tqdm import tqdm

            done = min(trainer.row // trainer.cfg.bptt, trainer.steps_per_epoch)
            self.bar = tqdm(total=trainer.steps_per_epoch, initial=done, file=sys.stderr, dynamic_ncols=True,
                            desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.epochs}", unit="step", leave=False)

    def update(self, loss: float | None, rows: int) -> None:
        if self.bar is None:
            return
        if loss is not None:
            self.avg = loss if self.avg is None else 0.95 * self.avg + 0.05 * loss
        self.bar.update(max(1, round(rows / self.t.cfg.bptt)))
        if self.t.step % 10 == 0 and self.avg is not None:
            seconds = time.perf_counter() - self.t._session_start
            rate = self.t._session_tokens / max(seconds, 1e-9)
            left = max(0.0, 1.0 - self.t._progress())
            eta = left * self.t._elapsed() / max(self.t._progress(), 1e-9)
            self.bar.set_postfix_str(
                f"loss {self.avg:.3f} ppl {math.exp(min(self.avg, 700)):.1f} lr {self.t.lr():.3g} "
                f"{rate / 1000:.1f}k tok/s ETA {_hms(eta)}",
                refresh=False,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _progress_bar(trainer: Trainer) -> Iterator[_Bar]:
    bar = _Bar(trainer)
    try:
        yield bar
    finally:
        bar.close()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
