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
or on Ctrl-C, SIGTERM or SIGUSR1 (a resumable checkpoint is written first; ``resume`` continues
bit for bit). The lifecycle itself is ``run.py``'s; this module is what a language model adds.

The loss is the mean cross-entropy per token. TensorFlow's PTB tutorial sums it over the
``num_steps`` time steps instead, so its lr 1 / clip 5 equals lr 20 / clip 0.25 here at 20 steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unroll import rundir
from unroll.checkpoint import load_checkpoint
from unroll.config import ModelConfig, TrainConfig
from unroll.data import batchify, iter_bptt, load_corpus
from unroll.errors import CheckpointError, DataError, UnrollError
from unroll.evaluate import evaluate
from unroll.models import LanguageModel, detach_state, load_model, save_model
from unroll.text import levels
from unroll.train.distributed import Distributed
from unroll.train.optim import NTASGD, TailAverage, averaged_weights, build_optimizer
from unroll.train.run import (
    BEST,
    Run,
    RunResult,
    RunState,
    absolute_data,
    claim_out_dir,
    fingerprint,
    hms,
    read_run,
    resolve_dist,
    resumed_settings,
    settings_to_resume_with,
)
from unroll.train.schedule import Schedule
from unroll.train.state import from_json_and_tensors, to_json_and_tensors

# Settings a resumed run may change: how long it goes on and how it is watched, not what it did.
RESUMABLE_OVERRIDES = {"epochs", "max_steps", "time_budget", "patience", "eval_every", "max_rollbacks",
                       "rollback_every", "keep_last", "eval_batch_size", "test_batch_size", "final_test"}


@dataclass
class TrainResult(RunResult):
    """A language model's run: its best validation and, when there is a test split, its test."""

    best_valid: dict[str, float] | None  # evaluate()'s dict for the best checkpoint
    test: dict[str, float] | None  # the best checkpoint on the test split, when there is one
    level: str = "word"  # the corpus's tokenization level


@dataclass
class LMState(RunState):
    """Where a language-model run is (with RunState's epoch, step, clock and early stopping)."""

    row: int = 0  # next window's first row in train_data
    tokens: int = 0  # training tokens seen
    best_loss: float = math.inf  # best validation loss so far (best/ holds its weights)
    best_valid: dict[str, float] | None = None
    loss_sum: float = 0.0  # training loss since the last evaluation
    loss_tokens: int = 0


def train(
    cfg: TrainConfig,
    model: ModelConfig | dict[str, Any],
    out: str | Path,
    corpus: Any = None,
    *,
    device: str | None = None,
    dist: Distributed | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    overwrite: bool = False,
    resume_if_exists: bool = False,
) -> TrainResult:
    """Train a new model into the run directory ``out``.

    ``model`` is a :class:`ModelConfig` or its fields without ``vocab_size`` (taken from the
    corpus). ``corpus`` defaults to ``load_corpus(cfg.data, ...)``. ``echo`` receives one line
    per evaluation; ``progress`` shows a progress bar on stderr (a terminal). ``dist``: the
    command's :class:`Distributed` (by default this process's, on ``device``). ``out`` must be
    new or empty; ``overwrite`` replaces the files a run writes there (see :func:`claim_out_dir`).
    ``resume_if_exists``: when ``out`` holds a run, continue it instead (see :func:`settings_to_resume_with`).
    """
    out, dist = Path(out), resolve_dist(dist, device)
    changed = settings_to_resume_with(out, dist, cfg, model, load_checkpoint) if resume_if_exists else None
    if changed is not None:
        return resume(out, changed, dist=dist, progress=progress, echo=echo)
    claim_out_dir(out, dist, overwrite, restart=resume_if_exists)
    if corpus is None:
        cfg, corpus = _load_corpus(cfg, dist)
    if not isinstance(model, ModelConfig):
        model = ModelConfig(vocab_size=len(corpus.vocab), **model)
    if model.vocab_size != len(corpus.vocab):
        raise UnrollError(f"model vocab_size {model.vocab_size} differs from the corpus vocabulary ({len(corpus.vocab)})")
    run = LanguageModelRun(cfg, model, corpus, out, dist, progress, echo)
    return run.start()


def resume(out: str | Path, overrides: dict[str, Any] | None = None, *, device: str | None = None,
           dist: Distributed | None = None, progress: bool = False, echo: Callable[[str], None] | None = None,
           allow_data_change: bool = False) -> TrainResult:
    """Continue the run in ``out`` exactly where its last checkpoint left it.

    ``overrides`` may change the settings in ``RESUMABLE_OVERRIDES`` (``epochs``, ``max_steps``,
    ``time_budget``, ``patience``, ``eval_every`` ...), not those that shaped the run so far.
    """
    out, dist = Path(out), resolve_dist(dist, device)
    ckpt, meta, tensors = read_run(out, dist, load_checkpoint, overrides, RESUMABLE_OVERRIDES)
    cfg = resumed_settings(out, ckpt.extra, TrainConfig.from_dict, overrides)
    cfg, corpus = _load_corpus(cfg, dist, ckpt.text)  # a learned tokenizer is loaded, never refitted
    if corpus.vocab.to_dict() != ckpt.vocab:
        raise CheckpointError(f"{cfg.data}: its vocabulary differs from the one {out} was trained with; the data changed")
    run = LanguageModelRun(cfg, ckpt.model, corpus, out, dist, progress, echo)
    run.load(LanguageModel.from_checkpoint(ckpt).state_dict(), meta, tensors, allow_data_change)
    return run.run()


TEXT_FIGURES = ("bpc", "bpb", "word_ppl")  # unroll.evaluate.per_text: the same at every level


def _figures(res: dict[str, float], characters: bool) -> str:
    """The figures of one evaluation line: bpc alone at the character level, else ppl and bpc."""
    bpc = f"bpc {res['bpc']:.4f}" if "bpc" in res else ""
    return bpc if characters and bpc else f"ppl {res['ppl']:.2f} {bpc}".rstrip()


def _load_corpus(cfg: TrainConfig, dist: Distributed, spec: Any = None) -> tuple[TrainConfig, Any]:
    """The corpus the config names (tokenized by ``spec`` when given: a resumed run's), with its
    path made absolute (a resume finds it anywhere)."""
    with dist.main_first():  # rank 0 downloads into the cache, if needed, alone
        corpus = load_corpus(cfg.data, level=cfg.level, max_size=cfg.max_vocab, encoding=cfg.encoding,
                             spec=spec, vocab_size=None if spec is not None else cfg.vocab_size)
    cfg = absolute_data(cfg)
    for split in ("train", "valid"):
        if split not in corpus.splits:
            raise DataError(f"{cfg.data}: has no {split} split; training needs train and valid")
    return cfg, corpus


class LanguageModelRun(Run):
    """One language-model run: the model, optimizer, schedule, data position and bookkeeping."""

    curve_axes: dict[str, Any] = {}  # plot_curve's defaults: train and valid perplexity against tokens

    def __init__(
        self,
        cfg: TrainConfig,
        model_cfg: ModelConfig,
        corpus: Any,
        out: Path,
        dist: Distributed,
        progress: bool = False,
        echo: Callable[[str], None] | None = None,
    ):
        super().__init__(cfg, out, dist, progress, echo)
        self.corpus = corpus
        self._adopt(LanguageModel(model_cfg))
        self._foreach = self.device.type in ("cpu", "cuda")  # one multi-tensor kernel, not one per parameter
        # Plain SGD: scaling the gradient by the clip factor is scaling the step, so clipping costs
        # one multiplication of the lr, not a pass over every gradient.
        self._clip_by_lr = cfg.optimizer in ("sgd", "ntasgd") and cfg.weight_decay == 0
        # Plain SGD on an untied embedding, one process: its gradient holds only the batch's rows
        # (a few hundred of 10k words), so no [V, E] zeros, norm and update per step. Same numbers.
        self.model.sparse_embedding_grad = (
            cfg.optimizer == "sgd" and cfg.weight_decay == 0 and not model_cfg.tie_weights
            and dist.world_size == 1 and self.device.type in ("cpu", "cuda")
        )
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr, weight_decay=cfg.weight_decay,
                                         momentum=cfg.momentum, betas=cfg.betas, nonmono=cfg.nonmono,
                                         sparse_grads=self.model.sparse_embedding_grad)
        self.average = TailAverage(self.model) if cfg.average_from is not None else None  # --average-from
        self.schedule = Schedule(cfg)
        # a view of the (memory-mapped) ids: windows are read as they are used, no copy of the corpus
        self.train_data = dist.shard_columns(batchify(corpus.splits["train"], cfg.batch_size))  # this rank's columns
        if self.train_data.shape[0] < 2:
            raise DataError(
                f"{cfg.data}: the train split has {len(corpus.splits['train'])} tokens, too few for "
                f"batch size {cfg.batch_size}; lower --batch-size"
            )
        self.steps_per_epoch = math.ceil((self.train_data.shape[0] - 1) / cfg.bptt)
        self.data_rng = np.random.default_rng(cfg.seed)  # window lengths when random_bptt
        self.extra = {"train": cfg.to_dict()}  # config.json's sections besides the model and the text
        self.state: LMState = LMState()
        self.hidden: Any = None  # carried state (None: zeros)
        self._validated_at: int | None = None  # step of the last validation in this session
        self._session_tokens = 0
        self._fingerprint: dict[str, str] | None = None

    # ---- the task's part of the loop -----------------------------------------------------
    def epoch_items(self) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
        cfg = self.cfg
        return iter_bptt(self.train_data, cfg.bptt, start=self.state.row, rng=self.data_rng,
                         random_length=cfg.random_bptt)

    def train_on(self, window: tuple[int, np.ndarray, np.ndarray]) -> tuple[float | None, int]:
        row, x, y = window
        loss = self.step(x, y)
        if loss is None:  # rolled back: the data position is the snapshot's
            return None, 0
        self.state.row = row + len(x)
        return loss, max(1, round(len(x) / self.cfg.bptt))

    def end_epoch(self) -> None:
        super().end_epoch()
        self.state.row, self.hidden = 0, None

    def finish(self, stopped: str) -> None:
        if stopped in ("max_steps", "time_budget") and self._validated_at != self.state.step:
            self._validate("final")
        if stopped in ("max_steps", "time_budget", "interrupted"):
            self.save(plot=True)  # epoch ends and early stopping saved already

    def result(self, stopped: str) -> TrainResult:
        test = None
        testable = self.cfg.final_test and "test" in self.corpus.splits and rundir.best(self.out).is_dir()
        if self.dist.is_main and stopped != "interrupted" and testable:
            test = self._test()
        s = self.state
        return TrainResult(self.out, stopped, s.epoch, s.step, self.elapsed(), s.best_valid, test, self.corpus.text.level)

    def eval_reserve(self) -> float:
        """The last evaluation's seconds, or before any, an estimate (a forward pass costs about
        a third of a training step per token). The estimate waits for 20 updates: the first ones
        are slow (oneDNN builds its kernels) and would stop a short budget after one step."""
        warm = self._session_tokens >= 20 * self.cfg.batch_size * self.cfg.bptt
        if self.state.eval_seconds or not warm:
            return self.state.eval_seconds
        rate = self._session_tokens / max(self.elapsed() - self.state.elapsed, 1e-9)
        return len(self.corpus.splits["valid"]) / rate / 3

    def bar_position(self) -> tuple[int, int]:
        return self.steps_per_epoch, min(self.state.row // self.cfg.bptt, self.steps_per_epoch)

    def progress_text(self, loss: float) -> str:
        rate = self._session_tokens / max(self.elapsed() - self.state.elapsed, 1e-9)
        done = self.progress_fraction()
        eta = max(0.0, 1.0 - done) * self.elapsed() / max(done, 1e-9)
        return (f"loss {loss:.3f} ppl {math.exp(min(loss, 700)):.1f} lr {self.lr():.3g} "
                f"{rate / 1000:.1f}k tok/s ETA {hms(eta)}")

    # ---- one update ----------------------------------------------------------------------
    def step(self, x: np.ndarray, y: np.ndarray) -> float | None:
        """One update on window ``x -> y``; returns the loss, or None after a rollback."""
        cfg, s = self.cfg, self.state
        x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)).to(self.device)
        y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(self.device)
        lr = self.dist.same(self.lr()) if cfg.time_budget else self.lr()  # rank 0's clock sets the lr for all
        if cfg.random_bptt:  # AWD-LSTM: shorter windows take smaller steps
            lr *= x_t.size(0) / cfg.bptt
        loss, objective, hidden = self._forward(x_t, y_t)
        value = self.dist.mean_item(loss)  # the whole batch's mean loss, on every rank
        if not math.isfinite(value):
            self.roll_back(f"loss {value}")
            return None
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        lr = self._clip(lr)
        if lr is None:
            return None
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.hidden = hidden
        s.step += 1
        if self.average is not None and self.progress_fraction() >= cfg.average_from:
            if not self.average.count:
                self.echo(f"step {s.step}: from here on the weights are averaged (average_from {cfg.average_from:g})")
            self.average.update(self.model)
        n = y_t.numel() * self.dist.world_size  # tokens in the whole batch
        s.tokens += n
        self._session_tokens += n
        s.loss_sum += value * n
        s.loss_tokens += n
        return value

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """The loss shown, the objective minimized (with AWD-LSTM's activation penalties) and the new state."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            # targets: the model's fused decoder + mean cross-entropy (unroll.models.loss)
            if cfg.ar or cfg.tar:
                loss, hidden, penalty = self.ddp(x, detach_state(self.hidden), targets=y, activation_reg=(cfg.ar, cfg.tar))
                return loss, loss + penalty, hidden
            loss, hidden = self.ddp(x, detach_state(self.hidden), targets=y)
            return loss, loss, hidden

    def _clip(self, lr: float) -> float | None:
        """Clip the global gradient norm to ``cfg.clip``; returns the lr to step with (None after a rollback)."""
        if self.cfg.clip <= 0:
            return lr
        params = [p for p in self.model.parameters() if p.grad is not None]
        total = _total_norm([p.grad for p in params], self._foreach)
        norm = float(total)
        if not math.isfinite(norm):
            self.roll_back(f"gradient norm {norm}")
            return None
        coef = self.cfg.clip / (norm + 1e-6)
        if coef < 1 and self._clip_by_lr:
            return lr * coef
        if coef < 1:
            torch.nn.utils.clip_grads_with_norm_(params, self.cfg.clip, total, foreach=self._foreach)
        return lr

    def lr(self) -> float:
        """The learning rate for the next update."""
        return self.schedule.lr(self.state.epoch, self.state.step, self.progress_fraction()) * self.state.lr_scale

    def progress_fraction(self) -> float:
        """Fraction of the run done: by updates, or by the time budget when that ends it sooner."""
        total = self.cfg.epochs * self.steps_per_epoch
        if self.cfg.max_steps is not None:
            total = min(total, self.cfg.max_steps)
        done = self.state.step / max(total, 1)
        if self.cfg.time_budget is not None:
            done = max(done, self.elapsed() / self.cfg.time_budget)
        return done

    # ---- non-finite losses: what a rollback restores besides Run.snapshot's -------------
    def task_snapshot(self) -> Any:
        average = self.average.state_dict() if self.average is not None else None
        return detach_state(self.hidden), self.schedule.state_dict(), average

    def restore_task(self, snapshot: Any) -> None:
        self.hidden, schedule, average = snapshot
        self.schedule.load_state_dict(schedule)
        if average is not None:
            self.average.load_state_dict(average)

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, kind: str) -> bool:
        """Evaluate, let the schedule / NT-ASGD / early stopping react, save; True: stop early."""
        loss = self._validate(kind)["loss"]
        self.schedule.on_validation(loss)
        if isinstance(self.optimizer, NTASGD) and self.optimizer.on_validation(loss):
            self.echo(f"step {self.state.step}: validation stalled, NT-ASGD now averages the weights")
        stop = self.patience_ran_out(loss)
        if math.isfinite(loss):
            self.snapshot()
        self.save(plot=kind == "epoch")
        return stop

    def _validate(self, kind: str) -> dict[str, float]:
        """Validation perplexity of the weights that count (NT-ASGD's or the tail average, once
        either has begun); keeps best/ up to date.

        Touches nothing that steers training, so a run stopped here resumes exactly.
        """
        cfg, s, t0 = self.cfg, self.state, time.perf_counter()
        self._validated_at = s.step
        averaging = self.average is not None and self.average.count > 0
        model = self.average.model if averaging else self.model
        with averaged_weights(self.optimizer):
            res = self.dist.from_main(  # rank 0 evaluates alone: exactly one process's perplexity
                lambda: evaluate(model, self.corpus.splits["valid"], cfg.eval_batch_size, cfg.bptt, self.precision,
                                 self.corpus.counts.get("valid")))
            if res["loss"] < s.best_loss:
                s.best_loss, s.best_valid = res["loss"], res
                if self.dist.is_main:
                    with rundir.staged(self.out / BEST) as staging:
                        save_model(model, staging, self.corpus.vocab.to_dict(), self.extra, text=self.corpus.text)
        s.eval_seconds = time.perf_counter() - t0
        train_loss = s.loss_sum / s.loss_tokens if s.loss_tokens else None
        s.loss_sum, s.loss_tokens = 0.0, 0
        record = {
            "kind": kind, "epoch": s.epoch, "step": s.step, "tokens": s.tokens,
            "elapsed": round(self.elapsed(), 3), "lr": self.lr(),
            "train_loss": train_loss, "train_ppl": _ppl(train_loss),
            "valid_loss": res["loss"], "valid_ppl": res["ppl"], "valid_bits_per_token": res["bits_per_token"],
            **{f"valid_{k}": res[k] for k in TEXT_FIGURES if k in res},
            "best": res["loss"] <= s.best_loss,
        }
        if self.average is not None:
            record["averaged_steps"] = self.average.count
        if self.dist.is_main:
            self.metrics.write(record)
        unit = _figures(res, levels.get(self.corpus.text.level).characters)
        train_txt = f"train ppl {record['train_ppl']:.2f} | " if train_loss is not None else ""
        self.echo(
            f"{kind:>5} | epoch {s.epoch} | step {s.step} | lr {record['lr']:.4g} | {train_txt}"
            f"valid loss {res['loss']:.4f} {unit}{' *' if record['best'] else ''} | {self.elapsed():.0f}s"
        )
        return res

    def _test(self) -> dict[str, float]:
        """The best checkpoint on the test split (batch ``test_batch_size``, state carried)."""
        model, _ = load_model(rundir.best(self.out), device=self.device)
        res = evaluate(model, self.corpus.splits["test"], self.cfg.test_batch_size, self.cfg.bptt, self.precision,
                       self.corpus.counts.get("test"))
        s = self.state
        self.metrics.write({"kind": "test", "epoch": s.epoch, "step": s.step, "tokens": s.tokens,
                            "test_loss": res["loss"], "test_ppl": res["ppl"], "test_bits_per_token": res["bits_per_token"],
                            **{f"test_{k}": res[k] for k in TEXT_FIGURES if k in res}})
        self.echo(f" test | best checkpoint | loss {res['loss']:.4f} {_figures(res, False)}")
        return res

    # ---- the task's part of the checkpoint -----------------------------------------------
    def save_model(self, directory: Path) -> None:
        save_model(self.model, directory, self.corpus.vocab.to_dict(), self.extra, text=self.corpus.text)

    def data_fingerprint(self) -> dict[str, str]:
        if self._fingerprint is None:  # the corpus never changes within a run: hash it once
            self._fingerprint = {split: fingerprint(self.corpus.splits[split]) for split in ("train", "valid")}
        return self._fingerprint

    def gather(self) -> Any:
        return self.dist.gather_state(self.hidden)  # every rank's carried state, in batch order

    def rng_state(self) -> dict[str, Any]:
        return {**super().rng_state(), "data": self.data_rng.bit_generator.state}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        super().set_rng_state(state)
        self.data_rng.bit_generator.state = state["data"]

    def extra_state(self, gathered: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            "schedule": self.schedule.state_dict(),
            "hidden": to_json_and_tensors(gathered, "hidden", tensors),
            "average": None if self.average is None else to_json_and_tensors(self.average.state_dict(), "average", tensors),
        }

    def load_extra_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.schedule.load_state_dict(meta["schedule"])
        if self.average is not None:
            self.average.load_state_dict(from_json_and_tensors(meta["average"], tensors))
        hidden = self.dist.shard_state(from_json_and_tensors(meta["hidden"], tensors))
        self.hidden = tuple(t.to(self.device) for t in hidden) if isinstance(hidden, list) else (
            None if hidden is None else hidden.to(self.device))


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
