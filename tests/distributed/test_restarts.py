"""An elastic restart: under ``torchrun --max-restarts 1`` one rank is killed mid-run; torchrun
restarts every worker, ``--resume-if-exists`` continues from the last checkpoint, and the run ends
with the weights of a 2-process run that was never stopped, bit for bit (gloo, float32, CPU)."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.support.ddp_launch import start_torchrun, torchrun, worker_pids
from unroll import rundir

pytestmark = pytest.mark.distributed

TEXT = ("the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n"
        "to be or not to be, that is the question; whether tis nobler in the mind to suffer.\n") * 20
STEPS = 240


def job(data: str) -> list[str]:
    return ["train", "--data", data, "--level", "char", "--batch-size", "8", "--bptt", "8", "--dropout", "0.2",
            "--eval-batch-size", "8", "--optimizer", "momentum", "--lr", "0.5", "--clip", "0.5", "--schedule", "constant",
            "--epochs", "20", "--max-steps", str(STEPS), "--emb-size", "8", "--hidden-size", "12", "--num-layers", "1",
            "--eval-every", "20", "--quiet", "--resume-if-exists", "--out", "run"]


def step_of(run) -> int:
    latest = rundir.latest(run)
    try:
        return json.loads((latest / "trainer_state.json").read_text())["step"] if latest else 0
    except (OSError, ValueError):
        return 0


def test_a_rank_killed_under_max_restarts_resumes_to_the_uninterrupted_weights(tmp_path):
    (tmp_path / "book.txt").write_text(TEXT, encoding="utf-8")
    data = str(tmp_path / "book.txt")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir()
    killed.mkdir()
    torchrun(whole, [job(data)], dtype="float32")
    log = tmp_path / "torchrun.log"
    launcher = start_torchrun(killed, [job(data)], log, max_restarts=1, dtype="float32")
    run = killed / "rank0" / "run"
    deadline = time.monotonic() + 240
    while step_of(run) < STEPS // 3:  # a checkpoint a third of the way in: then kill rank 1 mid-epoch
        assert launcher.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    rank1 = worker_pids(launcher.pid)[1]
    os.kill(rank1, signal.SIGKILL)
    assert launcher.wait(timeout=240) == 0, log.read_text()[-3000:]
    assert worker_pids(launcher.pid) == {}
    assert step_of(run) == STEPS
    assert json.loads((rundir.latest(run) / "trainer_state.json").read_text())["world_size"] == 2
    assert "failed (exitcode: -9)" in log.read_text()  # torchrun saw the kill, and restarted the workers
    a = load_file(rundir.latest(whole / "rank0" / "run") / "model.safetensors")
    b = load_file(rundir.latest(run) / "model.safetensors")
    for key in a:
        assert np.array_equal(a[key], b[key]), key
