"""Fault injection: kill -9 at 20 moments of one training run (inside saves among them) and
SIGTERM inside a save; the run always resumes and ends with the weights of a run never stopped.

Every moment is a real process killed for real: ``unroll train ... --resume-if-exists`` is
started again after each kill, as a requeued job would be. Kills inside a save are placed by the
test-only pause of ``unroll.rundir`` (``UNROLL_TEST_PAUSE_IN_SAVE``); the others land wherever
the run is once it has logged a few more evaluations (an update, an evaluation, a save).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from unroll import rundir

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom.\n" * 40
STEPS = 300
PAUSED = "unroll-test: paused in save"
# (how, what): "pause" kills inside a save at "<n>:<phase>" of the relaunched process;
# "progress" kills after that many more evaluations were logged, plus a random delay.
MOMENTS = [("pause", "1:begin"), ("progress", 1), ("pause", "1:files"), ("pause", "1:swap"), ("progress", 2),
           ("pause", "2:files"), ("progress", 1), ("pause", "3:begin"), ("progress", 3), ("pause", "2:swap"),
           ("progress", 1), ("pause", "4:files"), ("progress", 2), ("progress", 1), ("pause", "1:files"),
           ("progress", 2), ("progress", 1), ("pause", "3:files"), ("progress", 1), ("progress", 2)]


def command(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "unroll", "train", "--data", str(data), "--level", "char", "--hidden-size", "16",
            "--emb-size", "8", "--num-layers", "1", "--dropout", "0.2", "--batch-size", "4", "--bptt", "8",
            "--optimizer", "momentum", "--lr", "0.5", "--clip", "1", "--eval-every", "10", "--eval-batch-size", "8",
            "--epochs", "20", "--max-steps", str(STEPS), "--keep-last", "2", "--quiet", "--resume-if-exists",
            "--out", str(out)]


def launch(argv: list[str], log: Path, pause: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(rundir.PAUSE_ENV, None)
    if pause:
        env[rundir.PAUSE_ENV] = pause
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def evaluations(out: Path) -> int:
    try:
        return (out / "metrics.jsonl").read_text().count("\n")
    except FileNotFoundError:
        return 0


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def last_step(out: Path) -> int:
    latest = rundir.latest(out)
    return json.loads((latest / "trainer_state.json").read_text())["step"] if latest else 0


def test_kill_9_at_20_moments_then_resume_gives_the_uninterrupted_weights(tmp_path):
    data = tmp_path / "book.txt"
    data.write_text(TEXT, encoding="utf-8")
    whole, out = tmp_path / "whole", tmp_path / "run"
    assert subprocess.run(command(data, whole), env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode == 0
    rng = random.Random(0)
    for i, (how, what) in enumerate(MOMENTS):
        log = tmp_path / f"kill{i}.log"
        proc = launch(command(data, out), log, pause=what if how == "pause" else None)
        if how == "pause":
            wait_for(lambda: PAUSED in log.read_text(), proc, f"kill {i}: the pause at {what}")
        else:
            target = evaluations(out) + what
            wait_for(lambda: evaluations(out) >= target, proc, f"kill {i}: {what} more evaluations")
            time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert last_step(out) < STEPS, "the run finished before all kills were made; make it longer"
    assert subprocess.run(command(data, out), env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode == 0
    assert last_step(out) == STEPS
    for name in ("", "best"):
        a, b = load_file(rundir.resolve(whole / name) / "model.safetensors"), load_file(
            rundir.resolve(out / name) / "model.safetensors")
        assert a.keys() == b.keys()
        for key in a:  # bit for bit on CPU
            assert np.array_equal(a[key], b[key]), (name, key)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # nothing stale left
    drop = ("elapsed",)
    same = [{k: v for k, v in json.loads(line).items() if k not in drop} for line in
            (out / "metrics.jsonl").read_text().splitlines()]
    assert same == [{k: v for k, v in json.loads(line).items() if k not in drop} for line in
                    (whole / "metrics.jsonl").read_text().splitlines()]


def test_sigterm_inside_a_save_finishes_it_saves_and_exits_143(tmp_path):
    data = tmp_path / "book.txt"
    data.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    argv = command(data, out)
    argv[argv.index("--max-steps") + 1] = "60"
    log = tmp_path / "term.log"
    proc = launch(argv, log, pause="3:files")
    wait_for(lambda: PAUSED in log.read_text(), proc, "the pause")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert "stopped by SIGTERM" in log.read_text() and "--resume" in log.read_text()
    assert 0 < last_step(out) < 60
    assert subprocess.run(argv, env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode == 0
    assert last_step(out) == 60
