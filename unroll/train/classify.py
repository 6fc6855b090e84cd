"""Training a sentence classifier: the classic LSTM sentiment tutorial's loop (``train_lstm``).

    every epoch: shuffled minibatches (of similar lengths with sort_by_len), each padded + masked
        -> model -> logits [B, C] -> mean cross-entropy + decay_c * sum(W_classifier ** 2)
        -> backward -> (clip) -> optimizer step (adadelta / rmsprop / sgd / adam)
    every valid_freq updates (or epoch): valid error (+ test error: the history of (valid, test)
        errors); a better valid error saves best/; patience validations without one stop the run

At the end the best parameters are measured on train, valid and test, and those errors and the
history are written into ``best/config.json`` ("results"). The run directory also holds a
resumable checkpoint (``trainer_state.*``, written after every validation and when the run stops),
``metrics.jsonl`` and ``curve.png`` (train, valid and test error per validation; the train error
is the running one of the training batches, dropout on). Ctrl-C finishes the current update,
saves and stops.

Under torchrun (see ``unroll/train/distributed.py``) every rank takes its share of each global
batch's examples and DDP averages the gradients, so N processes follow one process with the same
``batch_size`` update for update; rank 0 alone measures the errors, prints and writes files.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unroll.classify_config import ENCODER_FIELDS, ClassifierConfig, ClassifyConfig
from unroll.data.batching import SentenceBatch, sentence_batches
from unroll.data.labeled import LabeledData, classify_spec, load_labeled
from unroll.errors import CheckpointError, TrainingDiverged, UnrollError
from unroll.models.classifier import (
    Classifier,
    encoder_from_lm,
    read_classifier,
    save_classifier,
    warm_start,
)
from unroll.models.device import resolve_precision
from unroll.text import TextSpec, Vocab
from unroll.train import distributed
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
from unroll.train.trainer import interruptible, seed_everything
from unroll.use.classify import pred_error

BEST = "best"
# What a resumed run may change: how long it goes on and how it is watched.
RESUMABLE = {"max_epochs", "time_budget", "patience", "disp_freq", "valid_batch_size", "history_test"}
PLOT_EVERY = 60.0  # seconds between redraws of the learning curve after validations (drawing takes a moment)


@dataclass
class ClassifyResult:
    """How a run ended, and the best parameters' errors."""

    out: Path
    stopped: str  # finished | time_budget | early_stopping | interrupted
    epoch: int
    updates: int
    elapsed: float  # seconds of training and validation, all resumes counted
    errors: dict[str, float]  # the best parameters' train / valid / test error ({} when interrupted)
    history: list[list[float | None]]  # [valid error, test error] at each validation

    @property
    def best_dir(self) -> Path:
        return self.out / BEST

    @property
    def curve(self) -> Path:
        return self.out / CURVE


def build_optimizer(cfg: ClassifyConfig, params: Any) -> torch.optim.Optimizer:
    """The tutorial's optimizers: adadelta with rho 0.95, eps 1e-6 (its ``adadelta``, whose step
    size is 1); rmsprop as Graves 2013 (centered, momentum 0.9, as its ``rmsprop``); sgd; adam."""
    lr = cfg.learning_rate
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-6)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.95, eps=1e-4, momentum=0.9, centered=True)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def train_classifier(
    cfg: ClassifyConfig,
    model: dict[str, Any] | None,
    out: str | Path,
    init_from: str | Path | None = None,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> ClassifyResult:
    """Train a new classifier into the run directory ``out``.

    ``model``: :class:`ClassifierConfig` fields except vocab_size / num_classes (from the data).
    ``init_from``: a language-model checkpoint whose vocabulary, tokenization, embedding and
    recurrent weights the classifier starts from (its cell and sizes are taken too).
    """
    from unroll.checkpoint import load_checkpoint

    out = Path(out)
    dist = distributed.current(device)
    if dist.from_main(lambda: has_trainer_state(out)):  # rank 0's disk holds the run
        raise existing_run_error(out)
    settings = dict(model or {})
    lm = spec = vocab = None
    if init_from is not None:
        lm = dist.from_main(lambda: load_checkpoint(init_from))
        if "text" not in lm.extra:
            raise CheckpointError(f"{init_from}: config.json has no 'text' settings; cannot tokenize like the language model")
        encoder = encoder_from_lm(lm.model)
        clash = [k for k in ENCODER_FIELDS if k in settings and settings[k] not in (None, encoder[k])]
        if clash:
            raise UnrollError(f"--init-from {init_from}: {', '.join(clash)} come from the language model; drop those settings")
        settings.update(encoder)
        spec, vocab = TextSpec.from_dict(lm.extra["text"]), Vocab.from_dict(lm.vocab)
    cfg, data = _load_data(cfg, spec, vocab)
    model_cfg = ClassifierConfig(vocab_size=len(data.vocab), num_classes=len(data.labels), **settings)
    trainer = ClassifyTrainer(cfg, model_cfg, data, out, device, progress, echo)
    if lm is not None:
        copied = warm_start(trainer.model, lm)
        trainer.init_from = str(Path(init_from).resolve())
        trainer.echo(f"warm start from {init_from}: copied {len(copied)} tensors (embedding and recurrent weights)")
    if trainer.dist.is_main:
        trainer.metrics.truncate(0)  # a fresh run starts a fresh log
    return trainer.run()


def resume_classifier(
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> ClassifyResult:
    """Continue the run in ``out`` from its last checkpoint (the tutorial's ``reload_model``)."""
    out = Path(out)
    check_resume_overrides(overrides, RESUMABLE)
    ckpt, meta, tensors = distributed.current(device).from_main(lambda: (read_classifier(out), *load_trainer_state(out)))
    if "train" not in ckpt.extra:
        raise CheckpointError(f"{out / 'config.json'}: has no training settings to resume with")
    cfg = ClassifyConfig.from_dict({**ckpt.extra["train"], **(overrides or {})})
    warm = ckpt.extra.get("init_from")
    cfg, data = _load_data(cfg, ckpt.text, ckpt.vocab if warm else None, ckpt.labels)
    if data.vocab != ckpt.vocab or data.labels != ckpt.labels:
        raise CheckpointError(f"{cfg.data}: its vocabulary or labels differ from those {out} was trained with; the data changed")
    trainer = ClassifyTrainer(cfg, ckpt.model, data, out, device, progress, echo)
    trainer.init_from = warm
    trainer.load(ckpt.params, meta, tensors)
    return trainer.run()


def _load_data(cfg: ClassifyConfig, spec: TextSpec | None, vocab: Vocab | None,
               labels: list[str] | None = None) -> tuple[ClassifyConfig, LabeledData]:
    """The labeled data the config names; a path is made absolute so that a resume finds it anywhere."""
    with distributed.current().main_first():  # rank 0 downloads into the cache, if needed, alone
        data = load_labeled(
            cfg.data, spec=spec or classify_spec(cfg.level, cfg.lower), vocab=vocab, labels=labels, n_words=cfg.n_words,
            maxlen=cfg.maxlen, overlong=cfg.overlong, valid_portion=cfg.valid_portion, seed=cfg.seed,
            text_column=cfg.text_column, label_column=cfg.label_column, encoding=cfg.encoding,
        )
    if Path(cfg.data).exists():
        cfg = replace(cfg, data=str(Path(cfg.data).resolve()))
    return cfg, data


class ClassifyTrainer:
    """One classification run: model, optimizer, position in the data, validation history."""

    def __init__(self, cfg: ClassifyConfig, model_cfg: ClassifierConfig, data: LabeledData, out: Path,
                 device: str | None = None, progress: bool = False, echo: Callable[[str], None] | None = None):
        self.cfg, self.data, self.out = cfg, data, Path(out)
        self.dist = distributed.current(device)  # rank and device under torchrun; one process otherwise
        self.device = self.dist.device
        self.progress = progress and self.dist.is_main
        self.echo = (echo if self.dist.is_main else None) or (lambda line: None)
        self.precision = resolve_precision(cfg.precision, self.device)  # "auto" -> bf16 where native, else fp32
        if cfg.precision == "auto":
            self.echo(f"precision: {self.precision} (auto, {self.device.type})")
        seed_everything(cfg.seed)
        self.model = Classifier(model_cfg).to(self.device)
        self.ddp = self.dist.wrap(self.model)  # the training forward; under torchrun DDP averages gradients
        self.dist.reseed(cfg.seed)
        self.optimizer = build_optimizer(cfg, self.model.parameters())
        self.metrics = MetricsLog(self.out / METRICS)
        self.init_from: str | None = None
        # Where training is; all of it goes into the trainer state.
        self.epoch = 0  # current epoch, from 0
        self.batch = 0  # next batch within the epoch
        self.updates = 0
        self.elapsed = 0.0  # seconds before this session
        self.history: list[list[float | None]] = []  # [valid error, test error] per validation
        self.best_valid = math.inf
        self.bad_evals = 0
        self.loss_sum, self.err_sum, self.loss_count = 0.0, 0.0, 0  # training batches since the last validation
        self.eval_seconds = 0.0  # how long the last validation took (kept free at the time budget)
        self.interrupted = False
        self._session_start = 0.0
        self._plotted = 0.0  # when the learning curve was last drawn

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> ClassifyResult:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.set_flush_denormal(True)  # denormals slow CPU training down several times
        self._session_start = self._plotted = time.perf_counter()
        self.echo(self._describe())
        with interruptible(self):
            stopped = self._loop()
            if stopped in ("finished", "time_budget") and self.loss_count:
                self._validate()  # the updates since the last validation count too
            self._save(plot=True)
        errors = self.dist.from_main(  # rank 0 measures, as at every validation
            lambda: self._final_errors() if stopped != "interrupted" and (self.out / BEST).is_dir() else {})
        return ClassifyResult(self.out, stopped, self.epoch, self.updates, self._elapsed(), errors, self.history)

    def _loop(self) -> str:
        cfg = self.cfg
        while self.epoch < cfg.max_epochs:
            batches = self._batches(self.epoch)
            bar = _Bar(self, len(batches))
            try:
                while self.batch < len(batches):
                    stopped = self.dist.agree(self._should_stop())  # one decision for all ranks
                    if stopped:
                        return stopped
                    loss = self._step(batches[self.batch])
                    self.batch += 1
                    bar.update(loss)
                    if cfg.valid_freq and self.updates % cfg.valid_freq == 0 and self._validate():
                        return "early_stopping"
            finally:
                bar.close()
            self.epoch, self.batch = self.epoch + 1, 0
            if not cfg.valid_freq and self._validate():
                return "early_stopping"
        return "finished"

    def _batches(self, epoch: int) -> list[SentenceBatch]:
        """This epoch's minibatches: shuffled by a seed made of (seed, epoch), so a resumed run
        draws the same ones; similar lengths together with sort_by_len."""
        return sentence_batches(self.data.x["train"], self.cfg.batch_size, sort="bucket" if self.cfg.sort_by_len else "none",
                                shuffle=True, rng=[self.cfg.seed, epoch])

    def _should_stop(self) -> str | None:
        if self.interrupted:
            return "interrupted"
        if self.cfg.time_budget is not None and self._elapsed() + self.eval_seconds >= self.cfg.time_budget:
            return "time_budget"
        return None

    def _step(self, batch: SentenceBatch) -> float:
        cfg = self.cfg
        mine, weight = self.dist.share(len(batch.index))  # under torchrun: this rank's examples of the batch
        if len(mine) < len(batch.index):
            batch = _examples(batch, mine)
        x = torch.from_numpy(batch.tokens).to(self.device)
        y = torch.from_numpy(self.data.y["train"][batch.index]).to(self.device)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            logits = self.ddp(x, torch.from_numpy(batch.lengths))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32; float64 stays
        loss = F.cross_entropy(logits, y) * weight
        if cfg.decay_c:  # the tutorial's weight decay on the classifier weights U (every rank adds it; DDP averages)
            loss = loss + cfg.decay_c * self.model.classifier.weight.pow(2).sum()
        value = self.dist.mean_item(loss)  # the whole batch's mean loss, on every rank
        if not math.isfinite(value):
            raise TrainingDiverged(f"training diverged: loss {value} at update {self.updates}; lower --lr or set --clip")
        error = self.dist.mean_item((logits.detach().argmax(-1) != y).to(logits.dtype).mean() * weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        self.updates += 1
        self.loss_sum += value
        self.err_sum += error
        self.loss_count += 1
        return value

    def _elapsed(self) -> float:
        return self.elapsed + time.perf_counter() - self._session_start

    # ---- validation and checkpoints ------------------------------------------------------
    def _error(self, split: str) -> float:
        return pred_error(self.model, self.data.x[split], self.data.y[split], self.cfg.valid_batch_size, self.precision)

    def _validate(self) -> bool:
        """Valid (and test) error; a new best saves best/; returns True when patience ran out."""
        t0 = time.perf_counter()
        with_test = self.cfg.history_test and "test" in self.data.x
        valid, test = self.dist.from_main(  # rank 0 measures alone: exactly one process's errors
            lambda: (self._error("valid"), self._error("test") if with_test else None))
        self.history.append([valid, test])
        best = valid < self.best_valid
        if best:
            self.best_valid, self.bad_evals = valid, 0
            if self.dist.is_main:
                save_classifier(self.model, self.out / BEST, self.data.vocab, self.data.labels, self.data.text, self._extra())
        else:
            self.bad_evals += 1
        self.eval_seconds = time.perf_counter() - t0
        train_loss = self.loss_sum / self.loss_count if self.loss_count else None
        train_err = self.err_sum / self.loss_count if self.loss_count else None
        self.loss_sum, self.err_sum, self.loss_count = 0.0, 0.0, 0
        if self.dist.is_main:
            self.metrics.write({"kind": "valid", "epoch": self.epoch, "update": self.updates,
                                "elapsed": round(self._elapsed(), 3), "train_loss": train_loss, "train_err": train_err,
                                "valid_err": valid, "test_err": test, "best": best})
        test_txt = f" | test err {test:.4f}" if test is not None else ""
        loss_txt = f" | train loss {train_loss:.4f} err {train_err:.4f}" if train_loss is not None else ""
        self.echo(f"epoch {self.epoch} | update {self.updates}{loss_txt} | valid err {valid:.4f}{test_txt}"
                  f"{' *' if best else ''} | {self._elapsed():.0f}s")
        self._save()
        return self.cfg.patience > 0 and self.bad_evals >= self.cfg.patience

    def _final_errors(self) -> dict[str, float]:
        """The best parameters' errors on every split, saved with them (the tutorial's final report)."""
        best = read_classifier(self.out / BEST)
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in best.params.items()})
        errors = {f"{split}_err": self._error(split) for split in self.data.x}
        results = {**errors, "history_errs": self.history, "updates": self.updates, "elapsed": round(self._elapsed(), 3)}
        save_classifier(self.model, self.out / BEST, self.data.vocab, self.data.labels, self.data.text,
                        {**self._extra(), "results": results})
        self.metrics.write({"kind": "final", "epoch": self.epoch, "update": self.updates, **errors})
        self.echo(" | ".join(f"{k.removesuffix('_err')} err {v:.4f}" for k, v in errors.items()) + " (best parameters)")
        return errors

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"train": self.cfg.to_dict()}
        if self.init_from:
            extra["init_from"] = self.init_from
        return extra

    def _save(self, plot: bool = False) -> None:
        """The resumable checkpoint: model files first, the trainer state last (see train/state.py);
        then the learning curve (with ``plot``, else at most every PLOT_EVERY seconds). Under
        torchrun every rank sends its dropout RNG; rank 0 writes."""
        rank_rng = self.dist.gather_rng()
        if not self.dist.is_main:
            return
        save_classifier(self.model, self.out, self.data.vocab, self.data.labels, self.data.text, self._extra())
        tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
        meta = {
            "epoch": self.epoch, "batch": self.batch, "updates": self.updates, "elapsed": self._elapsed(),
            "history": self.history, "best_valid": self.best_valid if math.isfinite(self.best_valid) else None,
            "bad_evals": self.bad_evals, "loss_sum": self.loss_sum, "err_sum": self.err_sum,
            "loss_count": self.loss_count, "eval_seconds": self.eval_seconds, "metrics_lines": self.metrics.lines,
            "optimizer": to_json_and_tensors(self.optimizer.state_dict(), "optimizer", tensors),
            "world_size": self.dist.world_size, "rank_rng": to_json_and_tensors(rank_rng, "rank_rng", tensors),
        }
        save_trainer_state(self.out, meta, tensors)
        if plot or time.perf_counter() - self._plotted >= PLOT_EVERY:
            records = read_metrics(self.metrics.path) if self.metrics.path.is_file() else []
            if records:
                plot_curve(records, self.out / CURVE, title=self.out.name, metric="err", x="update",
                           splits=("train", "valid", "test"))
            self._plotted = time.perf_counter()

    def load(self, params: dict[str, np.ndarray], meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore weights and trainer state written by :meth:`_save`."""
        try:
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
            self.optimizer.load_state_dict(from_json_and_tensors(meta["optimizer"], tensors))
            for name in ("epoch", "batch", "updates", "bad_evals", "loss_count"):
                setattr(self, name, int(meta[name]))
            for name in ("elapsed", "loss_sum", "err_sum", "eval_seconds"):
                setattr(self, name, float(meta[name]))
            self.history = [list(h) for h in meta["history"]]
            self.best_valid = math.inf if meta["best_valid"] is None else float(meta["best_valid"])
            if self.dist.is_main:
                self.metrics.truncate(int(meta["metrics_lines"]))
            torch.set_rng_state(tensors["rng.torch"])
            self.dist.restore_rng(from_json_and_tensors(meta.get("rank_rng"), tensors), self.cfg.seed, self.updates)
            saved_world = int(meta.get("world_size", 1))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.out}: trainer state does not fit this run ({type(e).__name__}: {e})") from None
        if saved_world != self.dist.world_size:
            self.echo(f"resuming a {saved_world}-process run on {self.dist.world_size}: same global batch and data "
                      f"order; dropout masks differ from an uninterrupted run")

    def _describe(self) -> str:
        d, m = self.data, self.model.cfg
        sizes = ", ".join(f"{s} {len(x)}" + (f" ({d.dropped[s]} longer than maxlen left out)" if d.dropped[s] else "")
                          for s, x in d.x.items())
        return (f"{d.name}: {sizes}; classes {', '.join(d.labels)}; vocabulary {len(d.vocab)} | "
                f"{m.cell} {m.dim_proj}/{m.hidden}x{m.num_layers}{' bidirectional' if m.bidirectional else ''}, "
                f"{m.pooling} pooling, {self.model.num_parameters():,} parameters | {self.cfg.optimizer} "
                f"lr {self.cfg.learning_rate:g} | {self.device}"
                + (f" x {self.dist.world_size} processes" if self.dist.enabled else ""))


def _examples(batch: SentenceBatch, columns: np.ndarray) -> SentenceBatch:
    """Some columns of a padded batch, cut to their own longest example."""
    t = int(batch.lengths[columns].max())
    return SentenceBatch(batch.tokens[:t, columns], batch.mask[:t, columns], batch.lengths[columns],
                         batch.index[columns])


class _Bar:
    """A tqdm bar for one epoch: running loss (refreshed every disp_freq updates), examples/s."""

    def __init__(self, trainer: ClassifyTrainer, total: int):
        self.t, self.bar, self.avg = trainer, None, None
        self.start, self.examples = time.perf_counter(), 0
        if trainer.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=trainer.batch, file=sys.stderr, dynamic_ncols=True, leave=False,
                            desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.max_epochs}", unit="batch")

    def update(self, loss: float) -> None:
        if self.bar is None:
            return
        self.avg = loss if self.avg is None else 0.98 * self.avg + 0.02 * loss
        self.examples += self.t.cfg.batch_size
        self.bar.update(1)
        if self.t.updates % self.t.cfg.disp_freq == 0:
            rate = self.examples / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"update {self.t.updates} loss {self.avg:.4f} {rate:.0f} ex/s", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
