"""Run directories: checkpoints staged whole, replaced without a moment of nothing, recovered after a kill."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from unroll import rundir


def _write(directory: Path, text: str) -> None:
    (directory / "model.safetensors").write_text(text)
    (directory / "config.json").write_text("{}")


def test_a_staged_directory_appears_whole_or_not_at_all(tmp_path):
    final = tmp_path / "best"
    with rundir.staged(final) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".tmp-") and not final.exists()
        _write(staging, "one")
    assert (final / "model.safetensors").read_text() == "one"
    with pytest.raises(RuntimeError):
        with rundir.staged(final) as staging:
            _write(staging, "two")
            raise RuntimeError("disk full")
    assert (final / "model.safetensors").read_text() == "one"  # the old one, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # no staging left behind
    with rundir.staged(final) as staging:
        _write(staging, "three")
    assert (final / "model.safetensors").read_text() == "three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_the_latest_checkpoint_is_the_highest_step_and_keep_last_prunes_the_oldest(tmp_path):
    for step in (5, 10, 40, 20):
        rundir.save_checkpoint_dir(tmp_path, step, lambda d, s=step: _write(d, str(s)), keep_last=3)
    assert [p.name for p in rundir.checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-20", "checkpoint-40"]
    assert rundir.latest(tmp_path) == tmp_path / "checkpoint-40" == rundir.resolve(tmp_path)
    rundir.save_checkpoint_dir(tmp_path, 40, lambda d: _write(d, "40 again"), keep_last=1)  # same step: replaced
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-40"]
    assert (tmp_path / "checkpoint-40" / "model.safetensors").read_text() == "40 again"
    assert rundir.resolve(tmp_path / "checkpoint-40") == tmp_path / "checkpoint-40"  # a checkpoint is itself


def test_a_replacement_cut_between_its_two_renames_is_read_and_recovered(tmp_path):
    """What kill -9 between "old moved aside" and "new put in place" leaves."""
    run = tmp_path / "run"
    run.mkdir()
    rundir.save_checkpoint_dir(run, 7, lambda d: _write(d, "saved"), keep_last=1)
    with rundir.staged(run / "best") as staging:
        _write(staging, "best")
    os.rename(run / "checkpoint-7", run / ".old-checkpoint-7")
    os.rename(run / "best", run / ".old-best")
    (run / ".tmp-checkpoint-7-123").mkdir()  # the staged replacement, never put in place
    (run / ".metrics.jsonl.abc.tmp").write_text("half")  # an atomic write's temporary file
    (run / "notes.txt").write_text("mine")
    (run / ".mine.tmp").mkdir()  # a directory the user made: not ours
    assert rundir.latest(run) == run / ".old-checkpoint-7"  # readers use the one moved aside
    assert rundir.best(run) == run / ".old-best"
    rundir.recover(run)
    assert sorted(p.name for p in run.iterdir()) == [".mine.tmp", "best", "checkpoint-7", "notes.txt"]
    assert (run / "checkpoint-7" / "model.safetensors").read_text() == "saved"
    assert rundir.best(run) == run / "best"


def test_an_aside_copy_is_dropped_when_its_replacement_arrived(tmp_path):
    rundir.save_checkpoint_dir(tmp_path, 3, lambda d: _write(d, "new"), keep_last=1)
    (tmp_path / ".old-checkpoint-3").mkdir()
    assert rundir.latest(tmp_path) == tmp_path / "checkpoint-3"
    rundir.recover(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-3"]


def test_the_first_save_in_this_layout_removes_an_older_runs_top_level_files(tmp_path):
    for name in rundir.LEGACY_FILES:
        (tmp_path / name).write_text("old")
    (tmp_path / "metrics.jsonl").write_text("")
    assert rundir.resolve(tmp_path) == tmp_path  # an older run is read where it is
    rundir.save_checkpoint_dir(tmp_path, 1, lambda d: _write(d, "new"), keep_last=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "metrics.jsonl"]


def test_remove_run_removes_only_what_a_run_writes(tmp_path):
    rundir.save_checkpoint_dir(tmp_path, 1, lambda d: _write(d, "x"), keep_last=1)
    (tmp_path / "best").mkdir()
    (tmp_path / "checkpoints-of-mine").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    rundir.remove_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints-of-mine", "notes.txt"]


def test_the_test_pause_waits_at_its_phase_until_a_signal_and_the_runs_handler_still_runs(tmp_path, monkeypatch, capsys):
    got = []
    monkeypatch.setattr(rundir, "_reached", {})
    monkeypatch.setenv(rundir.PAUSE_ENV, "2:files")
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        rundir.save_checkpoint_dir(tmp_path, 1, lambda d: _write(d, "1"), keep_last=5)
        assert "paused" not in capsys.readouterr().err  # not the second time at "files"
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        rundir.save_checkpoint_dir(tmp_path, 2, lambda d: _write(d, "2"), keep_last=5)
        timer.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == [signal.SIGTERM] and "paused in save at files (2)" in capsys.readouterr().err
    assert (tmp_path / "checkpoint-2" / "model.safetensors").read_text() == "2"  # the save went on
