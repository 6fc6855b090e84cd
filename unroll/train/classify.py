"""Training a sentence classifier: the classic LSTM sentiment tutorial's loop (``train_lstm``).

    every epoch: shuffled minibatches (of similar lengths with sort_by_len), each padded + masked
        -> model -> logits [B, C] -> mean cross-entropy + output_l2 * sum(W_classifier ** 2)
        -> backward -> (clip) -> optimizer step (adadelta / rmsprop / sgd / adam)
    every eval_every updates (or epoch): valid error (+ test error: the history of (valid, test)
        errors); a better valid figure (error, or loss: stop_on) saves best/; patience validations without one stop the run

At the end the best parameters are measured on train, valid and test, and those errors and the
history are written into ``best/config.json`` ("results"). The run directory also holds a
resumable checkpoint (``trainer_state.*``, written after every validation and when the run stops),
``metrics.jsonl`` and ``curve.png`` (train, valid and test error per validation; the train error
is the running one of the training batches, dropout on). Ctrl-C, SIGTERM or SIGUSR1 finish the
current update, save and stop (the lifecycle is ``run.py``'s).

Under torchrun (see ``unroll/train/distributed.py``) every rank takes its share of each global
batch's examples and DDP averages the gradients, so N processes follow one process with the same
``batch_size`` update for update; rank 0 alone measures the errors, prints and writes files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unroll import rundir
from unroll.checkpoint import load_checkpoint
from unroll.classify_config import ENCODER_FIELDS, ClassifierConfig, ClassifyConfig
from unroll.data.batching import SentenceBatch, sentence_batches
from unroll.data.labeled import LabeledData, classify_spec, load_labeled
from unroll.errors import CheckpointError, UnrollError
from unroll.evaluate.classify import predict_probs
from unroll.models.classifier import Classifier, encoder_from_lm, read_classifier, save_classifier, warm_start
from unroll.text import TextSpec, Vocab
from unroll.train.distributed import Distributed
from unroll.train.optim import build_optimizer
from unroll.train.run import (
    BEST,
    Run,
    RunResult,
    RunState,
    absolute_data,
    claim_out_dir,
    fingerprint,
    read_run,
    resolve_dist,
    resumed_settings,
    settings_to_resume_with,
)

# What a resumed run may change: how long it goes on and how it is watched.
RESUMABLE = {"epochs", "max_steps", "time_budget", "patience", "log_every", "eval_batch_size", "history_test",
             "max_rollbacks", "rollback_every", "keep_last"}
# The tutorial's optimizer settings: adadelta with rho 0.95 (its step size is 1); rmsprop as
# Graves 2013 (centered, momentum 0.9).
TUTORIAL_OPTIMIZERS = {
    "adadelta": dict(rho=0.95, eps=1e-6),
    "rmsprop": dict(alpha=0.95, eps=1e-4, momentum=0.9, centered=True),
}


@dataclass
class ClassifyResult(RunResult):
    """A classifier's run: the best parameters' errors and the validation history."""

    errors: dict[str, float]  # the best parameters' train / valid / test error ({} when interrupted)
    history: list[list[float | None]]  # [valid error, test error] at each validation


@dataclass
class ClassifyState(RunState):
    """Where a classification run is (with RunState's epoch, step, clock and early stopping:
    ``stop_best`` is the best valid figure, error or loss by ``stop_on``: the one best/ holds)."""

    batch: int = 0  # next batch within the epoch
    history: list[list[float | None]] = field(default_factory=list)  # [valid error, test error] per validation
    loss_sum: float = 0.0  # training batches since the last validation
    err_sum: float = 0.0
    loss_count: int = 0


def train_classifier(
    cfg: ClassifyConfig,
    model: dict[str, Any] | None,
    out: str | Path,
    init_from: str | Path | None = None,
    *,
    device: str | None = None,
    dist: Distributed | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    overwrite: bool = False,
    resume_if_exists: bool = False,
) -> ClassifyResult:
    """Train a new classifier into the run directory ``out``.

    ``model``: :class:`ClassifierConfig` fields except vocab_size / num_classes (from the data).
    ``init_from``: a language-model checkpoint whose vocabulary, tokenization, embedding and
    recurrent weights the classifier starts from (its cell and sizes are taken too). ``out`` must
    be new or empty; ``overwrite`` replaces the files a run writes there; ``resume_if_exists``: when
    ``out`` holds a run, continue it instead.
    """
    out, dist = Path(out), resolve_dist(dist, device)
    changed = settings_to_resume_with(out, dist, cfg, model, read_classifier) if resume_if_exists else None
    if changed is not None:
        return resume_classifier(out, changed, dist=dist, progress=progress, echo=echo)
    claim_out_dir(out, dist, overwrite, restart=resume_if_exists)
    settings = dict(model or {})
    lm = spec = vocab = None
    if init_from is not None:
        lm = dist.from_main(lambda: load_checkpoint(init_from))
        if lm.text is None:
            raise CheckpointError(f"{init_from}: config.json has no 'text' settings; cannot tokenize like the language model")
        encoder = encoder_from_lm(lm.model)
        clash = [k for k in ENCODER_FIELDS if k in settings and settings[k] not in (None, encoder[k])]
        if clash:
            raise UnrollError(f"--init-from {init_from}: {', '.join(clash)} come from the language model; drop those settings")
        settings.update(encoder)
        spec, vocab = lm.text, Vocab.from_dict(lm.vocab)
    cfg, data = _load_data(cfg, dist, spec, vocab)
    model_cfg = ClassifierConfig(vocab_size=len(data.vocab), num_classes=len(data.labels), **settings)
    run = ClassifierRun(cfg, model_cfg, data, out, dist, progress, echo)
    if lm is not None:
        copied = warm_start(run.model, lm)
        run.init_from = str(Path(init_from).resolve())
        run.echo(f"warm start from {init_from}: copied {len(copied)} tensors (embedding and recurrent weights)")
    return run.start()


def resume_classifier(out: str | Path, overrides: dict[str, Any] | None = None, *, device: str | None = None,
                      dist: Distributed | None = None, progress: bool = False,
                      echo: Callable[[str], None] | None = None, allow_data_change: bool = False) -> ClassifyResult:
    """Continue the run in ``out`` from its last checkpoint (the tutorial's ``reload_model``)."""
    out, dist = Path(out), resolve_dist(dist, device)
    ckpt, meta, tensors = read_run(out, dist, read_classifier, overrides, RESUMABLE)
    cfg = resumed_settings(out, ckpt.extra, ClassifyConfig.from_dict, overrides)
    warm = ckpt.extra.get("init_from")
    cfg, data = _load_data(cfg, dist, ckpt.text, ckpt.vocab if warm else None, ckpt.labels)
    if data.vocab != ckpt.vocab or data.labels != ckpt.labels:
        raise CheckpointError(f"{cfg.data}: its vocabulary or labels differ from those {out} was trained with; the data changed")
    run = ClassifierRun(cfg, ckpt.model, data, out, dist, progress, echo)
    run.init_from = warm
    run.load({k: torch.from_numpy(v) for k, v in ckpt.params.items()}, meta, tensors, allow_data_change)
    return run.run()


def _load_data(cfg: ClassifyConfig, dist: Distributed, spec: TextSpec | None, vocab: Vocab | None,
               labels: list[str] | None = None) -> tuple[ClassifyConfig, LabeledData]:
    """The labeled data the config names, with its path made absolute (a resume finds it anywhere)."""
    with dist.main_first():  # rank 0 downloads into the cache, if needed, alone
        data = load_labeled(
            cfg.data, spec=spec or classify_spec(cfg.level, cfg.lower, cfg.vocab_size), vocab=vocab, labels=labels,
            n_words=cfg.max_vocab, maxlen=cfg.max_length, overlong=cfg.overlong,
            valid_portion=cfg.valid_fraction, seed=cfg.seed, text_column=cfg.text_column,
            label_column=cfg.label_column, encoding=cfg.encoding,
        )
    return absolute_data(cfg), data


class ClassifierRun(Run):
    """One classification run: model, optimizer, position in the data, validation history."""

    curve_axes = dict(metric="err", x="update", splits=("train", "valid", "test"))
    evaluates_each_epoch = False  # with eval_every, only every N updates (the tutorial's validFreq)
    progress_unit = "batch"

    def __init__(self, cfg: ClassifyConfig, model_cfg: ClassifierConfig, data: LabeledData, out: Path,
                 dist: Distributed, progress: bool = False, echo: Callable[[str], None] | None = None):
        super().__init__(cfg, out, dist, progress, echo)
        self.data = data
        self._adopt(Classifier(model_cfg))
        self.optimizer = build_optimizer(cfg.optimizer, self._parameter_groups(), cfg.learning_rate, fuse=False,
                                         weight_decay=cfg.weight_decay, **TUTORIAL_OPTIMIZERS.get(cfg.optimizer, {}))
        self.progress_every = cfg.log_every
        self.init_from: str | None = None
        self.state: ClassifyState = ClassifyState()
        self._examples = 0  # trained on in this session (the bar's examples/s)

    def _parameter_groups(self) -> Any:
        """All parameters at ``lr``; with ``encoder_lr``, the encoder (embedding, recurrent layers)
        in a group of its own at that rate, its ``lr_factor`` keeping the ratio when a rollback
        halves the rates."""
        if self.cfg.encoder_lr is None:
            return self.model.parameters()
        named = list(self.model.named_parameters())
        encoder = [p for n, p in named if n.startswith(("embedding.", "rnn."))]
        factor = self.cfg.encoder_lr / self.cfg.learning_rate
        return [{"params": encoder, "lr": self.cfg.encoder_lr, "lr_factor": factor},
                {"params": [p for n, p in named if not n.startswith(("embedding.", "rnn."))], "lr_factor": 1.0}]

    # ---- the task's part of the loop -----------------------------------------------------
    def on_start(self) -> None:
        self.echo(self._describe())

    def epoch_items(self) -> Iterable[SentenceBatch]:
        """This epoch's minibatches from the current one on: shuffled by a seed made of (seed,
        epoch), so a resumed run draws the same ones; similar lengths together with sort_by_len."""
        self._batches = sentence_batches(self.data.x["train"], self.cfg.batch_size,
                                         sort="bucket" if self.cfg.sort_by_len else "none", shuffle=True,
                                         rng=[self.cfg.seed, self.state.epoch])
        return self._batches[self.state.batch:]

    def train_on(self, batch: SentenceBatch) -> tuple[float | None, int]:
        loss = self.step(batch)
        if loss is None:  # rolled back: the data position is the snapshot's
            return None, 0
        self.state.batch += 1
        self._examples += self.cfg.batch_size
        return loss, 1

    def end_epoch(self) -> None:
        super().end_epoch()
        self.state.batch = 0

    def finish(self, stopped: str) -> None:
        if stopped in ("finished", "time_budget", "max_steps") and self.state.loss_count:
            self.evaluate("final")  # the updates since the last validation count too
        self.save(plot=True)

    def result(self, stopped: str) -> ClassifyResult:
        errors = self.dist.from_main(  # rank 0 measures, as at every validation
            lambda: self._final_errors() if stopped != "interrupted" and rundir.best(self.out).is_dir() else {})
        s = self.state
        return ClassifyResult(self.out, stopped, s.epoch, s.step, self.elapsed(), errors, s.history)

    def bar_position(self) -> tuple[int, int]:
        return len(self._batches), self.state.batch

    def progress_text(self, loss: float) -> str:
        rate = self._examples / max(self.elapsed() - self.state.elapsed, 1e-9)
        return f"update {self.state.step} loss {loss:.4f} {rate:.0f} ex/s"

    # ---- one update ----------------------------------------------------------------------
    def base_lr(self) -> float:
        return self.cfg.learning_rate

    def step(self, batch: SentenceBatch) -> float | None:
        """One update on a padded batch of examples; returns its mean loss, or None after a rollback."""
        cfg, s = self.cfg, self.state
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
        if cfg.output_l2:  # the tutorial's decay_c on the classifier weights U (every rank adds it; DDP averages)
            loss = loss + cfg.output_l2 * self.model.classifier.weight.pow(2).sum()
        value = self.dist.mean_item(loss)  # the whole batch's mean loss, on every rank
        if not math.isfinite(value):
            self.roll_back(f"loss {value}")
            return None
        error = self.dist.mean_item((logits.detach().argmax(-1) != y).to(logits.dtype).mean() * weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in self._frozen():  # no gradient: the optimizer leaves them as they are (weight decay too)
            p.grad = None
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        s.step += 1
        s.loss_sum += value
        s.err_sum += error
        s.loss_count += 1
        return value

    def _frozen(self) -> list[torch.nn.Parameter]:
        """With gradual_unfreezing, the parameters this epoch does not train yet: top-down groups
        (output layer, last recurrent layer, ..., first recurrent layer with the embedding), one
        more trained each epoch."""
        layers = self.model.cfg.num_layers
        if not self.cfg.gradual_unfreezing or self.state.epoch >= layers:
            return []
        trained = range(layers - self.state.epoch, layers)  # recurrent layers unfrozen so far
        def group(name: str) -> int | None:
            if name.startswith("embedding."):
                return 0
            if name.startswith("rnn."):
                return int(name.split("_l")[-1].removesuffix("_reverse"))
            return None
        return [p for n, p in self.model.named_parameters() if (g := group(n)) is not None and g not in trained]

    # ---- validation ----------------------------------------------------------------------
    def _error(self, split: str) -> float:
        return self._measure(split)[0]

    def _measure(self, split: str) -> tuple[float, float]:
        """Error and mean cross-entropy of the current parameters on ``split``."""
        probs = predict_probs(self.model, self.data.x[split], self.cfg.eval_batch_size, self.precision)
        y = self.data.y[split]
        if not len(y):
            return 0.0, 0.0
        error = float(np.mean(probs.argmax(1) != y))
        return error, float(-np.mean(np.log(np.maximum(probs[np.arange(len(y)), y], 1e-300))))

    def evaluate(self, kind: str) -> bool:
        """Valid (and test) error; a new best (by ``stop_on``) saves best/; returns True when
        patience ran out."""
        s, t0 = self.state, time.perf_counter()
        with_test = self.cfg.history_test and "test" in self.data.x
        (valid, valid_loss), test = self.dist.from_main(  # rank 0 measures alone: exactly one process's errors
            lambda: (self._measure("valid"), self._error("test") if with_test else None))
        s.history.append([valid, test])
        figure = valid_loss if self.cfg.stop_on == "loss" else valid
        best = figure < s.stop_best
        if best and self.dist.is_main:
            with rundir.staged(self.out / BEST) as staging:
                self.save_model(staging)
        stop = self.patience_ran_out(figure)
        s.eval_seconds = time.perf_counter() - t0
        train_loss = s.loss_sum / s.loss_count if s.loss_count else None
        train_err = s.err_sum / s.loss_count if s.loss_count else None
        s.loss_sum, s.err_sum, s.loss_count = 0.0, 0.0, 0
        if self.dist.is_main:
            self.metrics.write({"kind": "valid", "epoch": s.epoch, "update": s.step,
                                "elapsed": round(self.elapsed(), 3), "train_loss": train_loss, "train_err": train_err,
                                "valid_err": valid, "valid_loss": valid_loss, "test_err": test, "best": best})
        test_txt = f" | test err {test:.4f}" if test is not None else ""
        loss_txt = f" | train loss {train_loss:.4f} err {train_err:.4f}" if train_loss is not None else ""
        self.echo(f"epoch {s.epoch} | update {s.step}{loss_txt} | valid loss {valid_loss:.4f} err {valid:.4f}{test_txt}"
                  f"{' *' if best else ''} | {self.elapsed():.0f}s")
        self.snapshot()
        self.save()
        return stop

    def _final_errors(self) -> dict[str, float]:
        """The best parameters' errors on every split, saved with them (the tutorial's final report)."""
        best = read_classifier(rundir.best(self.out))
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in best.params.items()})
        errors = {f"{split}_err": self._error(split) for split in self.data.x}
        s = self.state
        results = {**errors, "history_errs": s.history, "updates": s.step, "elapsed": round(self.elapsed(), 3)}
        with rundir.staged(self.out / BEST) as staging:
            save_classifier(self.model, staging, self.data.vocab, self.data.labels, self.data.text,
                            {**self._extra(), "results": results})
        self.metrics.write({"kind": "final", "epoch": s.epoch, "update": s.step, **errors})
        self.echo(" | ".join(f"{k.removesuffix('_err')} err {v:.4f}" for k, v in errors.items()) + " (best parameters)")
        return errors

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"train": self.cfg.to_dict()}
        if self.init_from:
            extra["init_from"] = self.init_from
        return extra

    def data_fingerprint(self) -> dict[str, str]:
        d = self.data
        return {split: fingerprint(d.y[split], *d.x[split]) for split in ("train", "valid")}

    def save_model(self, directory: Path) -> None:
        save_classifier(self.model, directory, self.data.vocab, self.data.labels, self.data.text, self._extra())

    def _describe(self) -> str:
        d, m = self.data, self.model.cfg
        sizes = ", ".join(f"{s} {len(x)}" + (f" ({d.dropped[s]} longer than max_length left out)" if d.dropped[s] else "")
                          for s, x in d.x.items())
        return (f"{d.name}: {sizes}; classes {', '.join(d.labels)}; vocabulary {len(d.vocab)} | "
                f"{m.cell} {m.emb_size}/{m.hidden}x{m.num_layers}{' bidirectional' if m.bidirectional else ''}, "
                f"{m.pooling} pooling, {self.model.num_parameters():,} parameters | {self.cfg.optimizer} "
                f"lr {self.cfg.learning_rate:g} | {self.device}"
                + (f" x {self.dist.world_size} processes" if self.dist.enabled else ""))


def _examples(batch: SentenceBatch, columns: np.ndarray) -> SentenceBatch:
    """Some columns of a padded batch, cut to their own longest example."""
    t = int(batch.lengths[columns].max())
    return SentenceBatch(batch.tokens[:t, columns], batch.mask[:t, columns], batch.lengths[columns],
                         batch.index[columns])
