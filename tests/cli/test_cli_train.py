"""`unroll train`, `unroll eval`, `unroll demo` end to end on a tiny corpus: exit codes, files
written, one-line errors for bad input (exit 2), Ctrl-C (exit 130), SIGTERM / SIGUSR1 (128 + the
signal), --out that holds other files, and resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.support.cli import one_error_line
from unroll import rundir
from unroll.cli import main
from unroll.cli.common import parse_duration
from unroll.train import lm as lm_module

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom.\n" * 40
TINY = ["--hidden-size", "16", "--emb-size", "8", "--num-layers", "1", "--batch-size", "4", "--bptt", "16",
        "--eval-batch-size", "4", "--quiet"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "book.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_train_then_eval_then_resume(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best valid" in printed and "curve" in printed
    for name in ("model.safetensors", "config.json", "vocab.json", "trainer_state.json"):
        assert (rundir.latest(out) / name).is_file()
    assert (out / "metrics.jsonl").is_file() and (out / "curve.png").is_file()
    assert f"{rundir.latest(out)} (last, resumable)" in printed
    assert main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "valid" and res["checkpoint"].endswith("best") and res["bpc"] > 0
    assert main(["eval", str(out), "--data", str(corpus), "--batch-size", "1"]) == 0
    assert f"{len(TEXT) - 1} tokens" in capsys.readouterr().out  # a file given to eval is read whole
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_latin1_text_needs_and_takes_encoding(tmp_path, capsys):
    book = tmp_path / "livre.txt"
    book.write_bytes(("Il était une fois un café très noir.\n" * 40).encode("latin-1"))
    out = str(tmp_path / "run")
    assert main(["train", "--data", str(book), "--level", "char", *TINY, "--epochs", "1", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "invalid UTF-8 at byte offset 3" in err and "--encoding" in err
    assert main(["train", "--data", str(book), "--encoding", "latin-1", "--level", "char", *TINY, "--epochs", "1",
                 "--out", out]) == 0
    capsys.readouterr()
    assert main(["eval", out, "--json"]) == 0  # the training data, read in the encoding training used
    assert json.loads(capsys.readouterr().out)["tokens"] > 0
    assert main(["eval", out, "--data", str(book)]) == 2  # a file given to eval is UTF-8 unless --encoding
    assert "--encoding" in one_error_line(capsys)
    assert main(["eval", out, "--data", str(book), "--encoding", "latin-1"]) == 0
    assert "ppl" in capsys.readouterr().out


def test_ctrl_c_saves_a_resumable_checkpoint_and_exits_130(tmp_path, corpus, capsys, monkeypatch):
    step = lm_module.LanguageModelRun.step

    def interrupt_at_step_3(self, x, y):
        if self.state.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the handler sets a flag
        return step(self, x, y)

    monkeypatch.setattr(lm_module.LanguageModelRun, "step", interrupt_at_step_3)
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "3", "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]
    assert json.loads((rundir.latest(out) / "trainer_state.json").read_text())["step"] == 4
    monkeypatch.setattr(lm_module.LanguageModelRun, "step", step)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    whole = tmp_path / "whole"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "3", "--out", str(whole)]) == 0
    resumed, uninterrupted = load_file(rundir.latest(out) / "model.safetensors"), load_file(rundir.latest(whole) / "model.safetensors")
    assert sorted(resumed) == sorted(uninterrupted)
    for name, value in uninterrupted.items():  # the resume is exact on CPU: bit for bit
        assert np.array_equal(resumed[name], value), name


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_sigterm_and_sigusr1_save_and_exit_with_128_plus_the_signal(tmp_path, corpus, capsys, monkeypatch, signum):
    step = lm_module.LanguageModelRun.step

    def preempted_at_step_3(self, x, y):
        if self.state.step == 3:
            os.kill(os.getpid(), signum)  # what a scheduler or container stop sends
        return step(self, x, y)

    monkeypatch.setattr(lm_module.LanguageModelRun, "step", preempted_at_step_3)
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "3", "--out", str(out)]) == 128 + signum
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and signal.Signals(signum).name in err[0] and "--resume" in err[0]
    assert json.loads((rundir.latest(out) / "trainer_state.json").read_text())["step"] == 4
    monkeypatch.setattr(lm_module.LanguageModelRun, "step", step)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_out_holding_a_users_files_is_refused_and_left_as_it_was(tmp_path, corpus, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    (out / "notes.txt").write_text("my notes")
    before = _tree(out)
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = one_error_line(capsys)
    assert "not empty" in err and "config.json" in err and "notes.txt" in err and "--overwrite" in err
    assert _tree(out) == before


def test_overwrite_replaces_only_what_a_run_writes(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "1", "--out", str(out)]
    assert main(args) == 0
    (out / "notes.txt").write_text("my notes")
    assert main(args) == 2
    assert "already holds a training run" in one_error_line(capsys)
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "my notes" and (rundir.latest(out) / "trainer_state.json").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1]  # a fresh log, not the first run's


def test_resume_if_exists_lets_one_command_line_start_and_continue_a_run(tmp_path, corpus, capsys):
    """What a torchrun restart or a requeued job does: the same command again, with more steps."""
    out, whole = tmp_path / "run", tmp_path / "whole"
    args = ["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "3", "--resume-if-exists"]
    assert main([*args, "--max-steps", "6", "--out", str(out)]) == 0
    assert main([*args, "--max-steps", "12", "--out", str(out)]) == 0
    assert json.loads((rundir.latest(out) / "trainer_state.json").read_text())["step"] == 12
    assert main([*args, "--max-steps", "12", "--out", str(whole)]) == 0
    resumed, straight = load_file(rundir.latest(out) / "model.safetensors"), load_file(rundir.latest(whole) / "model.safetensors")
    for name, value in straight.items():
        assert np.array_equal(resumed[name], value), name
    capsys.readouterr()
    assert main([*args, "--max-steps", "12", "--hidden-size", "20", "--out", str(out)]) == 2
    assert "other model settings" in one_error_line(capsys)
    assert main([*args, "--max-steps", "12", "--lr", "0.5", "--out", str(out)]) == 2
    assert "lr cannot change when resuming" in one_error_line(capsys)


def test_a_log_file_gets_no_progress_bar(tmp_path, corpus):
    import subprocess
    import sys

    log = tmp_path / "log"
    args = [sys.executable, "-m", "unroll", "train", "--data", str(corpus), "--level", "char",
            *[a for a in TINY if a != "--quiet"], "--epochs", "2", "--out", str(tmp_path / "run")]
    with open(log, "wb") as f:
        assert subprocess.run(args, stdout=f, stderr=subprocess.STDOUT).returncode == 0
    text = log.read_text()
    assert "\r" not in text and "epoch 1" in text and "valid loss" in text
    assert len(text.splitlines()) < 20  # the evaluation lines and the summary, not one line per update


def test_off_a_terminal_progress_is_a_plain_line_now_and_then(tmp_path, corpus, capsys, monkeypatch):
    from unroll.train import run as run_module

    monkeypatch.setattr(run_module, "PLAIN_PROGRESS_EVERY", 0.0)  # every update, to see the line
    args = ["train", "--data", str(corpus), "--level", "char", *[a for a in TINY if a != "--quiet"],
            "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " steps | " in line]
    assert lines and lines[0].startswith("epoch 1/1 | 1/") and "tok/s" in lines[0]


def test_resume_refuses_changed_training_data_unless_allowed(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "2", "--max-steps", "3",
                 "--out", str(out)]) == 0
    corpus.write_text(TEXT.replace("best", "tsbe", 3), encoding="utf-8")  # the same characters, other text
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--max-steps", "6", "--quiet"]) == 2
    err = one_error_line(capsys)
    assert "differ from what" in err and "--allow-data-change" in err
    assert main(["train", "--resume", str(out), "--max-steps", "6", "--quiet", "--allow-data-change"]) == 0


def test_demo_runs_briefly_and_prints_samples(tmp_path, corpus, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--seconds", "2", "--data", str(corpus), "--out", str(out), "--samples", "1", "--length", "40"]) == 0
    printed = capsys.readouterr().out
    assert "sample 1" in printed and "bits per character" in printed and str(out / "curve.png") in printed
    assert (out / "best" / "model.safetensors").is_file() and (out / "curve.png").is_file()


def test_demo_falls_back_to_the_standard_library_source(monkeypatch, tmp_path):
    from unroll.cli import demo

    monkeypatch.setenv("UNROLL_DATA_DIR", str(tmp_path / "empty"))
    source, what, prime = demo._choose_text(None)
    assert "standard library" in what and prime == "def "
    assert Path(source).parent.parent == Path(os.environ["UNROLL_CACHE_DIR"])  # not in the run directory
    text = Path(source).read_text(encoding="utf-8")
    assert len(text) == demo.STDLIB_CHARS and "def " in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--preset", "nope", "--out", "x"], "unknown preset"),
        (["train", "--data", "missing.txt", "--level", "char", "--out", "x"], "missing.txt"),
        (["train", "--out", "x"], "--preset NAME, --config FILE or --data"),
        (["train", "--preset", "ptb-small"], "--out DIR is required"),
        (["train", "--preset", "ptb-small", "--hidden-size", "0", "--out", "x"], "must be positive"),
        (["train", "--preset", "ptb-small", "--optimizer", "sgdx", "--out", "x"], "unknown optimizer"),
        (["train", "--resume", "nowhere"], "nowhere"),
        (["eval", "nowhere"], "nowhere"),
        (["train", "--resume", "nowhere", "--lr", "3"], "lr cannot change when resuming"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "x").exists()  # nothing written


def test_binary_data_and_truncated_checkpoint_exit_2(tmp_path, corpus, capsys):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    assert main(["train", "--data", str(binary), "--level", "char", "--out", str(tmp_path / "r1")]) == 2
    assert "binary" in one_error_line(capsys)
    assert not (tmp_path / "r1").exists()  # nothing written
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["train", "--data", str(empty), "--level", "char", "--out", str(tmp_path / "r2")]) == 2
    assert "empty" in one_error_line(capsys)
    assert not (tmp_path / "r2").exists()
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    weights = out / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["eval", str(out)]) == 2
    assert "corrupt or truncated" in one_error_line(capsys)
    assert main(["train", "--data", str(corpus), "--level", "char", *TINY, "--out", str(out)]) == 2
    assert "--resume" in one_error_line(capsys)  # an existing run is never overwritten


def test_time_budget_flag_parses_durations():
    assert parse_duration("90") == 90 and parse_duration("90s") == 90
    assert parse_duration("60m") == 3600 and parse_duration("1h30m") == 5400 and parse_duration("1.5h") == 5400
    assert parse_duration("none") is None  # lifts a preset's budget
    with pytest.raises(Exception):
        parse_duration("soon")


def test_time_budget_none_lifts_the_presets(capsys):
    assert main(["train", "--preset", "ptb-cpu-60min", "--time-budget", "none", "--epochs", "6", "--show-config"]) == 0
    train = json.loads(capsys.readouterr().out)["train"]
    assert train["time_budget"] is None and train["epochs"] == 6


def test_show_config_round_trips_through_config(tmp_path, capsys):
    """--show-config prints what --config reads back: the same settings again; flags still override."""
    for preset in ("ptb-small", "ptb-cpu-60min", "shakespeare-char"):
        assert main(["train", "--preset", preset, "--show-config"]) == 0
        first = capsys.readouterr().out
        (tmp_path / "c.json").write_text(first, encoding="utf-8")
        assert main(["train", "--config", str(tmp_path / "c.json"), "--show-config"]) == 0
        assert capsys.readouterr().out == first, preset
    assert main(["train", "--config", str(tmp_path / "c.json"), "--lr", "1e-3", "--hidden-size", "64",
                 "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["train"]["lr"] == 1e-3 and shown["model"]["hidden_size"] == 64 and shown["train"]["level"] == "char"


def test_every_setting_has_help(capsys):
    """Each field's help comes from its metadata: none is left without one."""
    import argparse
    import dataclasses

    from unroll.classify_config import ClassifierConfig, ClassifyConfig
    from unroll.config import ModelConfig, TrainConfig
    from unroll.cli import build_parser
    from unroll.settings import field_help

    for cls in (ModelConfig, TrainConfig, ClassifierConfig, ClassifyConfig):
        assert all(field_help(f) for f in dataclasses.fields(cls)), [f.name for f in dataclasses.fields(cls)
                                                                      if not field_help(f)]
    for command in (["train"], ["classify", "train"]):
        parser = build_parser()
        for name in command:
            parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        helps = {flag: a.help for a in parser._actions for flag in a.option_strings}
        missing = [flag for flag, text in helps.items() if not text]
        assert not missing, (command, missing)
        for flag in ("--lr", "--batch-size", "--epochs", "--seed", "--hidden-size"):  # the ones scraping missed
            assert len(helps[flag]) > 10, (command, flag)


def test_bf16_where_it_is_not_native_is_a_one_line_error(tmp_path, corpus, capsys, monkeypatch):
    from unroll.models import device as device_module

    monkeypatch.setattr(device_module, "bf16_kernels", lambda device: False)
    out = tmp_path / "run"
    args = ["train", "--data", str(corpus), "--level", "char", *TINY, "--max-steps", "3", "--precision", "bf16"]
    assert main([*args, "--out", str(out)]) == 2
    assert "bf16 has no fast kernels" in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("native, precision, preset, points", [
    (False, "auto", "ptb-cpu-60min", True),  # no bf16 here: the preset runs in fp32
    (True, "auto", "ptb-cpu-60min", False),  # bf16 runs, as the preset was tuned
    (False, "fp32", "ptb-cpu-60min", True),  # fp32 asked for where bf16 is not native
    (True, "fp32", "ptb-cpu-60min", False),  # fp32 chosen where bf16 is native
    (False, "auto", "ptb-small", False),  # a preset with no other recipe
    (False, "auto", None, False),  # --data without a preset
])
def test_a_bf16_preset_points_to_its_fp32_recipe(monkeypatch, native, precision, preset, points):
    from unroll.cli.train import fp32_note
    from unroll.models import device as device_module

    monkeypatch.setattr(device_module, "bf16_is_native", lambda device: native)
    note = fp32_note(preset, precision, "cpu")
    assert (note is not None) == points
    if points:
        assert note.startswith(f"note: {preset} is tuned for bf16") and "--preset ptb-cpu-60min-fp32" in note


def test_every_fp32_recipe_is_a_preset_computing_in_fp32_where_bf16_is_not_native():
    from unroll.presets import PRESETS

    pointers = {name: p.without_bf16 for name, p in PRESETS.items() if p.without_bf16}
    assert pointers, "no preset names a recipe for CPUs without bf16"
    for name, other in pointers.items():
        assert other in PRESETS and PRESETS[other].without_bf16 is None, (name, other)
        assert PRESETS[other].train.precision in ("auto", "fp32"), other


def test_train_prints_the_fp32_note(tmp_path, corpus, capsys, monkeypatch):
    from unroll.models import device as device_module

    monkeypatch.setattr(device_module, "bf16_is_native", lambda device: False)
    loud = [a for a in TINY if a != "--quiet"]
    args = ["train", "--preset", "ptb-cpu-60min", "--data", str(corpus), "--level", "char", *loud, "--max-steps", "2"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert "--preset ptb-cpu-60min-fp32 is the recipe" in capsys.readouterr().out
