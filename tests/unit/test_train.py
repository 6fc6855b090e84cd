"""The trainer: exact resume, schedules, NT-ASGD, non-finite losses, early stopping, bf16,
atomic and verified trainer state. Tiny corpora and models: each test takes about a second."""

from __future__ import annotations

import copy
import logging
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from unroll import rundir
from unroll.config import ModelConfig, TrainConfig
from unroll.errors import CheckpointError, TrainingDiverged, UnrollError
from unroll.models import LanguageModel
from unroll.models import device as device_module
from unroll.presets import PRESETS
from unroll.train import LanguageModelRun, resume, train
from unroll.train.distributed import current
from unroll.train.optim import NTASGD, TailAverage
from unroll.train.schedule import Schedule
from unroll.train.state import STATE_JSON, STATE_TENSORS, load_trainer_state
from unroll.evaluate import evaluate
from tests.support.hardware import needs_bf16_kernels

TEXT = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n"
    "to be or not to be, that is the question; whether tis nobler in the mind to suffer.\n"
) * 12
TINY_MODEL = dict(emb_size=8, hidden_size=12, num_layers=2)


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny_cfg(corpus_file: Path, **kw) -> TrainConfig:
    settings = dict(data=str(corpus_file), level="char", batch_size=4, bptt=8, eval_batch_size=4,
                    test_batch_size=4, optimizer="sgd", lr=1.0, clip=1.0, schedule="constant", epochs=2)
    settings.update(kw)
    return TrainConfig(**settings)


def weights(directory: Path) -> dict[str, np.ndarray]:
    return load_file(rundir.resolve(directory) / "model.safetensors")


def test_resume_is_bit_identical(tmp_path, corpus_file):
    """N steps in one run == N/2 steps, save, load, N/2 steps (weights, optimizer, schedule,
    RNG for dropout and random window lengths, data position, carried state)."""
    cfg = tiny_cfg(corpus_file, optimizer="nesterov", lr=0.5, schedule="zaremba", max_epoch=1, lr_decay=0.5,
                   random_bptt=True, epochs=5, max_steps=70, eval_every=25)
    model = dict(TINY_MODEL, dropout=0.3)
    train(cfg, model, tmp_path / "whole")
    half = train(replace(cfg, max_steps=35), model, tmp_path / "split")
    assert half.stopped == "max_steps" and half.steps == 35
    done = resume(tmp_path / "split", {"max_steps": 70})
    assert done.steps == 70 and done.epoch >= 1  # crossed an epoch boundary: the lr decayed
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # the metrics log of the resumed run holds the interrupted run's records, then its own
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert kinds.count("final") == 2 and kinds[-1] in ("final", "test")


def test_without_echo_the_messages_go_to_the_unroll_logger(tmp_path, corpus_file, caplog):
    with caplog.at_level(logging.INFO, logger="unroll"):
        train(tiny_cfg(corpus_file, max_steps=4), TINY_MODEL, tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if r.name == "unroll"]
    assert any("valid loss" in line for line in lines)


def test_a_torn_last_metrics_line_does_not_stop_a_resume(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, max_steps=10, eval_every=5)
    train(cfg, TINY_MODEL, tmp_path / "run")
    log = tmp_path / "run" / "metrics.jsonl"
    complete = log.read_text()
    log.write_text(complete + '{"kind": "steps", "epo')  # the process died while appending a record
    assert resume(tmp_path / "run", {"max_steps": 15}).steps == 15
    assert log.read_text().startswith(complete) and '"epo\n' not in log.read_text()
    log.write_text("not json\n" + complete)
    with pytest.raises(CheckpointError, match="line 1 is not a JSON record"):
        resume(tmp_path / "run", {"max_steps": 20})


def test_resume_with_a_windowed_qrnn_is_bit_identical(tmp_path, corpus_file):
    """The qrnn's carried state is a tuple (c, past inputs) with a first-layer window: it is saved
    and restored with the rest. Tied across sizes (E 8, H 12), as ptb-cpu-60min-fp32: the
    projection trains and resumes with the rest."""
    cfg = tiny_cfg(corpus_file, epochs=1, max_steps=20)
    model = dict(TINY_MODEL, cell="qrnn", qrnn_window=2, dropout=0.3, locked_dropout=True, weight_dropout=0.2,
                 tie_weights=True)
    train(cfg, model, tmp_path / "whole")
    train(replace(cfg, max_steps=9), model, tmp_path / "split")
    assert resume(tmp_path / "split", {"max_steps": 20}).steps == 20
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert a["rnn.weight_ih_l0"].shape == (36, 16) and a["projection.weight"].shape == (8, 12)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_keep_last_keeps_the_newest_checkpoints_and_resume_reads_the_latest(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, epochs=3, eval_every=5, max_steps=22, keep_last=2)
    train(cfg, TINY_MODEL, tmp_path / "run")
    assert [p.name for p in rundir.checkpoints(tmp_path / "run")] == ["checkpoint-20", "checkpoint-22"]
    assert resume(tmp_path / "run", {"max_steps": 30, "keep_last": 1}).steps == 30
    assert [p.name for p in rundir.checkpoints(tmp_path / "run")] == ["checkpoint-30"]


def test_a_run_in_the_older_layout_resumes_and_moves_to_checkpoint_directories(tmp_path, corpus_file):
    """Before checkpoint-<step>/, a run kept its checkpoint and trainer state in the run directory."""
    cfg = tiny_cfg(corpus_file, epochs=3, max_steps=30)
    train(cfg, TINY_MODEL, tmp_path / "whole")
    old = tmp_path / "old"
    train(replace(cfg, max_steps=12), TINY_MODEL, old)
    last = rundir.latest(old)
    for f in last.iterdir():
        f.rename(old / f.name)
    last.rmdir()
    assert resume(old, {"max_steps": 30}).steps == 30
    assert not any((old / name).exists() for name in rundir.LEGACY_FILES)
    a, b = weights(tmp_path / "whole"), weights(old)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_writes_checkpoint_best_metrics_and_curve(tmp_path, corpus_file):
    result = train(tiny_cfg(corpus_file, epochs=2), TINY_MODEL, tmp_path / "run")
    out = tmp_path / "run"
    assert result.stopped == "finished" and result.epoch == 2
    last = rundir.latest(out)
    assert last == out / f"checkpoint-{result.steps}"
    for name in ("model.safetensors", "config.json", "vocab.json", STATE_TENSORS, STATE_JSON):
        assert (last / name).is_file(), name
    for name in ("metrics.jsonl", "curve.png"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in out.iterdir()) == sorted([last.name, "best", "metrics.jsonl", "curve.png"])
    assert (out / "best" / "model.safetensors").is_file()
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["epoch", "epoch"]
    assert records[1]["valid_loss"] < records[0]["train_loss"] < math.log(result_vocab(out))
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def result_vocab(out: Path) -> int:
    return len(json.loads((rundir.resolve(out) / "vocab.json").read_text())["itos"])


def test_final_test_can_be_turned_off(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_text(TEXT if split == "train" else TEXT[:200], encoding="utf-8")
    with_test = train(tiny_cfg(folder, epochs=1), TINY_MODEL, tmp_path / "a")
    without = train(tiny_cfg(folder, epochs=1, final_test=False), TINY_MODEL, tmp_path / "b")
    assert with_test.test is not None and without.test is None
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert "test" not in kinds and (tmp_path / "b" / "best").is_dir()


def test_existing_run_is_not_overwritten(tmp_path, corpus_file):
    train(tiny_cfg(corpus_file, epochs=1), TINY_MODEL, tmp_path / "run")
    with pytest.raises(Exception, match="--resume"):
        train(tiny_cfg(corpus_file, epochs=1), TINY_MODEL, tmp_path / "run")


def test_interrupted_save_and_corrupt_state_are_detected(tmp_path, corpus_file):
    out = tmp_path / "run"
    train(tiny_cfg(corpus_file, epochs=1), TINY_MODEL, out)
    load_trainer_state(out)  # intact
    # a file damaged after the save: the JSON's hashes no longer match
    (rundir.latest(out) / "model.safetensors").write_bytes((out / "best" / "model.safetensors").read_bytes()[:-8] + b"12345678")
    with pytest.raises(CheckpointError, match="does not match"):
        resume(out)
    train(tiny_cfg(corpus_file, epochs=1), TINY_MODEL, tmp_path / "run2")
    state_json = rundir.latest(tmp_path / "run2") / STATE_JSON
    state_json.write_text('{"version": 1, "files": ')
    with pytest.raises(CheckpointError, match="corrupt JSON"):
        resume(tmp_path / "run2")
    state_json.unlink()
    with pytest.raises(CheckpointError, match="no resumable trainer state"):
        resume(tmp_path / "run2")


def test_zaremba_schedule_lr_sequence():
    s = Schedule(TrainConfig(schedule="zaremba", lr=20.0, max_epoch=4, lr_decay=0.5))
    assert [s.lr(epoch, 0, 0.0) for epoch in range(7)] == [20, 20, 20, 20, 10, 5, 2.5]


def test_plateau_schedule_decays_when_validation_stalls():
    s = Schedule(TrainConfig(schedule="plateau", lr=20.0, lr_decay=0.25, plateau_patience=1))
    seen = []
    for loss in [5.0, 4.0, 4.5, 4.4, 3.9, 4.0, 4.0, 4.0]:
        s.on_validation(loss)
        seen.append(s.lr(0, 0, 0.0))
    assert seen == [20, 20, 20, 5, 5, 5, 1.25, 1.25]
    restored = Schedule(s.cfg)
    restored.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert restored.lr(0, 0, 0.0) == 1.25 and restored.best == 3.9


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    s = Schedule(TrainConfig(schedule="cosine", lr=1.0, warmup_steps=4, min_lr=0.1))
    assert [s.lr(0, step, 0.0) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.lr(0, 10, 0.5) == pytest.approx(0.55)
    assert s.lr(0, 10, 1.0) == pytest.approx(0.1)


def test_ntasgd_switches_when_validation_stalls_and_evaluates_the_average():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = NTASGD([p], lr=0.5, nonmono=2)
    for loss in [5.0, 4.0, 3.0, 3.5]:  # 3.5 is worse than 3.0, but 3.0 is among the last 2
        assert not opt.on_validation(loss)
    assert opt.on_validation(6.0)  # worse than everything older than the last 2 evaluations
    assert opt.switched
    iterates = []
    for _ in range(3):
        p.grad = torch.tensor([1.0, -1.0])
        opt.step()
        iterates.append(p.detach().clone())
    with opt.averaged():  # torch.optim.ASGD(t0=0) averages from the second update after the switch
        torch.testing.assert_close(p.detach(), torch.stack(iterates[1:]).mean(0))
    torch.testing.assert_close(p.detach(), iterates[-1])  # raw weights back after evaluation
    state = opt.state_dict()
    fresh = NTASGD([torch.nn.Parameter(p.detach().clone())], lr=0.5, nonmono=2)
    fresh.load_state_dict(state)
    assert fresh.switched and fresh.history == [5.0, 4.0, 3.0, 3.5, 6.0]


def test_ntasgd_training_run(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, optimizer="ntasgd", nonmono=1, epochs=2, eval_every=4)
    result = train(cfg, TINY_MODEL, tmp_path / "run")
    state = json.loads((rundir.latest(tmp_path / "run") / STATE_JSON).read_text())
    assert state["optimizer"]["switched"] and result.best_valid is not None


def test_non_finite_loss_rolls_back_and_lowers_lr(tmp_path, corpus_file, monkeypatch):
    cfg = tiny_cfg(corpus_file, epochs=1, max_rollbacks=2)
    model_cfg = ModelConfig(vocab_size=len(set(TEXT)), **TINY_MODEL)
    from unroll.train.lm import _load_corpus

    cfg, corpus = _load_corpus(cfg, current())
    trainer = LanguageModelRun(cfg, model_cfg, corpus, tmp_path / "run", current())
    calls = {"n": 0}
    forward = trainer.model.forward

    def poisoned(x, state=None, lengths=None, targets=None):  # the 5th window's loss is NaN, once
        calls["n"] += 1
        out, state = forward(x, state, lengths, targets)  # the loss when targets are given
        return (out * float("nan") if calls["n"] == 5 else out), state

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    messages = []
    trainer.echo = messages.append
    result = trainer.run()
    assert trainer.state.rollbacks == 1 and trainer.state.lr_scale == 0.5
    assert any("rolled back" in m for m in messages)
    assert result.stopped == "finished" and math.isfinite(result.best_valid["loss"])


def test_a_rollback_restores_the_data_position_of_the_snapshot_and_replays_it(tmp_path, corpus_file, monkeypatch):
    """Snapshots every 3 updates: a NaN at the 5th goes back to the state after the 3rd (weights,
    optimizer, RNGs, carried state and data position), and trains on the 4th and 5th windows again."""
    from unroll.train.lm import _load_corpus

    cfg, corpus = _load_corpus(tiny_cfg(corpus_file, epochs=1, rollback_every=3), current())
    trainer = LanguageModelRun(cfg, ModelConfig(vocab_size=len(corpus.vocab), **TINY_MODEL), corpus,
                               tmp_path / "run", current())
    rows, before = [], []  # each update's window, and the weights it started from
    forward, train_on = trainer.model.forward, trainer.train_on

    def poisoned(x, state=None, lengths=None, targets=None):  # the 5th window's loss is NaN, once
        out, state = forward(x, state, lengths, targets)
        return (out * float("nan") if len(rows) == 5 and len(before) == 5 else out), state

    def watched(window):
        rows.append(window[0])
        before.append(copy.deepcopy(trainer.model.state_dict()))
        return train_on(window)

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    trainer.train_on = watched
    trainer.run()
    bptt = cfg.bptt
    assert rows[:8] == [0, bptt, 2 * bptt, 3 * bptt, 4 * bptt, 3 * bptt, 4 * bptt, 5 * bptt]
    assert trainer.state.rollbacks == 1 and trainer.state.lr_scale == 0.5
    assert trainer.state.step == trainer.steps_per_epoch  # each window counted once
    for name, value in before[3].items():  # the replay of the 4th window starts from the same weights
        assert torch.equal(value, before[5][name]), name
    assert not all(torch.equal(v, before[6][k]) for k, v in before[4].items())  # then half the lr


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_train_step_clips_like_clip_grad_norm(tmp_path, corpus_file, optimizer):
    """SGD folds the clip factor into the lr, momentum scales the gradients: both must be the
    textbook ``clip_grad_norm_`` then ``optimizer.step()``."""
    from unroll.train.lm import _load_corpus

    cfg, corpus = _load_corpus(tiny_cfg(corpus_file, optimizer=optimizer, lr=0.5, clip=0.05), current())
    trainer = LanguageModelRun(cfg, ModelConfig(vocab_size=len(corpus.vocab), **TINY_MODEL), corpus, tmp_path / "run", current())
    ref = copy.deepcopy(trainer.model)
    ref.sparse_embedding_grad = False  # clip_grad_norm_ takes dense gradients only
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5, momentum=cfg.momentum if optimizer == "momentum" else 0)
    x, y = (np.ascontiguousarray(trainer.train_data[rows], np.int64) for rows in (slice(0, 8), slice(1, 9)))
    norms = []
    for _ in range(3):
        trainer.hidden = None
        trainer.step(x, y)
        loss, _ = ref(torch.from_numpy(x), targets=torch.from_numpy(y))
        ref_opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)))
        ref_opt.step()
    assert min(norms) > 0.05  # clipping was active at every step
    for (name, a), b in zip(trainer.model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_sparse_embedding_gradient_trains_like_the_dense_one(tmp_path, corpus_file):
    """Plain SGD on an untied embedding takes a sparse (rows-only) gradient: same norm, same steps."""
    from unroll.train.lm import _load_corpus

    cfg, corpus = _load_corpus(tiny_cfg(corpus_file, optimizer="sgd", lr=0.5, clip=0.05), current())
    model_cfg = ModelConfig(vocab_size=len(corpus.vocab), **TINY_MODEL)
    runs = []
    for sparse in (True, False):
        trainer = LanguageModelRun(cfg, model_cfg, corpus, tmp_path / f"run{sparse}", current())
        assert trainer.model.sparse_embedding_grad  # untied, plain SGD, one process
        trainer.model.sparse_embedding_grad = sparse
        for row in (0, 8, 16):
            trainer.step(trainer.train_data[row : row + 8], trainer.train_data[row + 1 : row + 9])
        grad = trainer.model.embedding.weight.grad
        assert grad.is_sparse == sparse
        runs.append(trainer.model)
    for (name, a), b in zip(runs[0].named_parameters(), runs[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    tied = LanguageModelRun(cfg, replace(model_cfg, emb_size=12, tie_weights=True), corpus, tmp_path / "tied", current())
    momentum = LanguageModelRun(replace(cfg, optimizer="momentum"), model_cfg, corpus, tmp_path / "momentum", current())
    assert not tied.model.sparse_embedding_grad and not momentum.model.sparse_embedding_grad


def test_divergence_stops_with_training_diverged(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, lr=1e30, clip=0.0, max_rollbacks=2, epochs=1)
    with pytest.raises(TrainingDiverged, match="after 2 rollbacks"):
        train(cfg, dict(TINY_MODEL, cell="rnn_relu", init_scale=1.0), tmp_path / "run")


def test_early_stopping(tmp_path, corpus_file):
    # lr so small that validation barely moves: with patience 1 the first non-improvement stops
    cfg = tiny_cfg(corpus_file, optimizer="sgd", lr=1e-9, epochs=20, patience=1, eval_every=3)
    result = train(cfg, TINY_MODEL, tmp_path / "run")
    assert result.stopped == "early_stopping" and result.epoch < 20


def test_time_budget_stops_cleanly_and_keeps_best(tmp_path, corpus_file):
    result = train(tiny_cfg(corpus_file, epochs=1000, time_budget=0.5), TINY_MODEL, tmp_path / "run")
    assert result.stopped == "time_budget" and 0 < result.steps and result.epoch < 1000
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # the final weights are evaluated exactly once: by a "final" record, or by the epoch-end
    # evaluation that came just before the budget ran out
    assert records[-1]["kind"] in ("final", "epoch") and records[-1]["step"] == result.steps
    assert [r["step"] for r in records].count(result.steps) == 1


@needs_bf16_kernels
def test_bf16_training_step_runs_and_loss_falls(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, precision="bf16", optimizer="adam", lr=1e-2, epochs=3)
    result = train(cfg, dict(TINY_MODEL, hidden_size=16), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["valid_loss"] < records[0]["valid_loss"] - 0.1
    assert weights(tmp_path / "run")["embedding.weight"].dtype == np.float32  # fp32 master weights
    assert result.best_valid["loss"] < math.log(result_vocab(tmp_path / "run"))


def test_evaluate_state_carried_window_independent_and_batch_one():
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=11, emb_size=6, hidden_size=7, num_layers=1)).double()
    ids = np.random.default_rng(0).integers(0, 11, size=101)
    a = evaluate(model, ids, batch_size=1, bptt=5)
    b = evaluate(model, ids, batch_size=1, bptt=100)
    assert a["tokens"] == 100 and a["loss"] == pytest.approx(b["loss"], rel=1e-12)
    # by hand: one pass over the whole stream
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids[:-1]).view(-1, 1))
    ref = torch.nn.functional.cross_entropy(logits.view(-1, 11), torch.from_numpy(ids[1:])).item()
    assert a["loss"] == pytest.approx(ref, rel=1e-12)
    assert a["ppl"] == pytest.approx(math.exp(ref)) and a["bits_per_token"] == pytest.approx(ref / math.log(2))


def test_presets_are_complete_and_ptb_small_is_tf_equivalent():
    for name, preset in PRESETS.items():
        ModelConfig(vocab_size=100, **preset.model)
        assert isinstance(preset.train, TrainConfig), name
    small = PRESETS["ptb-small"]
    # TF's lr 1 / clip 5 on the loss summed over 20 steps == lr 20 / clip 0.25 on the mean
    assert (small.train.lr, small.train.clip, small.train.bptt) == (20.0, 0.25, 20)
    assert (small.model["hidden_size"], small.model["num_layers"], small.model["dropout"]) == (200, 2, 0.0)
    assert (small.train.max_epoch, small.train.lr_decay, small.train.epochs) == (4, 0.5, 13)
    large = PRESETS["ptb-large"]
    assert large.train.clip * large.train.bptt == pytest.approx(10) and large.model["dropout"] == 0.65


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_trains_in_bf16_only_where_it_is_native(tmp_path, corpus_file, monkeypatch, native):
    monkeypatch.setattr(device_module, "bf16_is_native", lambda device: native)
    monkeypatch.setattr(device_module, "bf16_kernels", lambda device: native)  # native implies kernels
    used = []
    real_autocast = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **kw: used.append(kw["enabled"]) or real_autocast(*a, **kw)
                        if kw.get("dtype") is torch.bfloat16 else real_autocast(*a, **kw))
    lines: list[str] = []
    model = dict(TINY_MODEL, cell="qrnn")  # nn.LSTM refuses bf16 on a CPU without it; the qrnn's GEMMs only crawl
    train(tiny_cfg(corpus_file, precision="auto", max_steps=3), model, tmp_path / "run", echo=lines.append)
    want = "bf16" if native else "fp32"
    assert f"precision: {want} (auto, cpu)" in lines
    assert len(used) > 3 and set(used) == {native}  # every training step and evaluation


def test_tail_average_is_the_mean_of_the_weights_after_each_late_update(tmp_path, corpus_file, monkeypatch):
    """--average-from 0.5 over 10 updates: best/ holds the mean of the weights after updates 5..10."""
    seen: list[dict[str, np.ndarray]] = []
    real_update = TailAverage.update

    def update(self, model):
        seen.append({k: v.detach().numpy().copy() for k, v in model.state_dict().items()})
        real_update(self, model)

    monkeypatch.setattr(TailAverage, "update", update)
    cfg = tiny_cfg(corpus_file, epochs=100, max_steps=10, average_from=0.5, optimizer="adam", lr=1e-2)
    lines: list[str] = []
    train(cfg, dict(TINY_MODEL, tie_weights=True, emb_size=12), tmp_path / "run", echo=lines.append)
    assert len(seen) == 6 and "step 5: from here on the weights are averaged (average_from 0.5)" in lines
    best, last = weights(tmp_path / "run" / "best"), weights(tmp_path / "run")
    for name in best:
        np.testing.assert_allclose(best[name], np.mean([s[name] for s in seen], axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(last["embedding.weight"], seen[-1]["embedding.weight"])  # trained weights as they are
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["averaged_steps"]) for r in records if "valid_loss" in r] == [("final", 6)]


def test_resume_with_a_tail_average_is_bit_identical(tmp_path, corpus_file):
    cfg = tiny_cfg(corpus_file, epochs=5, max_steps=30, eval_every=10, average_from=0.0, optimizer="adam", lr=1e-2)
    model = dict(TINY_MODEL, dropout=0.3)
    train(cfg, model, tmp_path / "whole")
    train(replace(cfg, max_steps=15), model, tmp_path / "split")
    resume(tmp_path / "split", {"max_steps": 30})
    for sub in ("", "best"):
        a, b = weights(tmp_path / "whole" / sub), weights(tmp_path / "split" / sub)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{sub}/{name}")


def test_average_from_is_checked():
    with pytest.raises(UnrollError, match=r"average_from must be in \[0, 1\), got 1.5"):
        TrainConfig(average_from=1.5)
    with pytest.raises(UnrollError, match="ntasgd averages the weights itself"):
        TrainConfig(average_from=0.5, optimizer="ntasgd")
