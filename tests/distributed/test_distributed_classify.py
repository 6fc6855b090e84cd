"""``unroll classify train`` under torchrun (2 processes, gloo, float64) against one process.

73 training examples in batches of 9: every batch splits unevenly between the two ranks (5 and
4 examples) and each epoch's last batch holds one example, which leaves rank 1 without any.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support.ddp_launch import torchrun
from safetensors.numpy import load_file
from tests.support.labeled import synthetic_csv

pytestmark = pytest.mark.distributed

from unroll import rundir
from unroll.cli import main
from unroll.train.distributed import Distributed

EPOCHS = 2
UPDATES = 9 * EPOCHS  # ceil(73 / 9) batches an epoch


def args(data: Path, out: str, epochs: int = EPOCHS, *extra: str) -> list[str]:
    return ["classify", "train", "--data", str(data), "--valid-fraction", "0.2", "--max-length", "none",
            "--batch-size", "9", "--eval-every", "1", "--epochs", str(epochs), "--patience", "0",
            "--optimizer", "adam", "--lr", "0.03", "--output-l2", "0.01", "--clip", "1", "--emb-size", "8",
            "--dropout", "0", "--emb-dropout", "0", "--word-dropout", "0", "--seed", "1", "--quiet", "--out", out,
            *extra]


def in_float64(argv: list[str]) -> int:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return main(argv)
    finally:
        torch.set_default_dtype(previous)


def valid_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "valid"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2-process runs in rank0/ (nothing in rank1/), 1-process runs in single/."""
    root = tmp_path_factory.mktemp("ddp_classify")
    data = synthetic_csv(root / "d.csv", n=91)  # 73 train, 18 valid
    jobs = [
        args(data, "whole"),
        args(data, "half", 1),  # its second epoch: one process, below
        args(data, "halves", 1),
        ["classify", "train", "--resume", "halves", "--epochs", str(EPOCHS), "--quiet"],
        args(data, "budget", 1000, "--time-budget", "1"),  # the ranks' clocks differ; they must stop together
    ]
    proc = torchrun(root, jobs)
    assert proc.stdout.count("stopped: ") == len(jobs)  # rank 0 alone reports
    assert "stopped: time_budget" in proc.stdout
    state = json.loads((rundir.latest(root / "rank0" / "half") / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["rank_rng"]) == 2  # before the one-process resume rewrites it
    (root / "single").mkdir()
    assert in_float64(args(data, str(root / "single" / "whole"))) == 0
    assert in_float64(["classify", "train", "--resume", str(root / "rank0" / "half"), "--epochs", str(EPOCHS),
                       "--quiet"]) == 0
    return root


def test_two_ranks_follow_one_process_update_for_update(runs):
    """The logged train loss and error are the whole batch's (the ranks' weighted shares averaged),
    the valid and test errors rank 0's: float64 leaves only the order of sums (~1e-15)."""
    two, one = valid_records(runs / "rank0" / "whole"), valid_records(runs / "single" / "whole")
    assert [r["update"] for r in two] == [r["update"] for r in one] == list(range(1, UPDATES + 1))
    for a, b in zip(two, one):
        assert a["epoch"] == b["epoch"]
        assert a["test_err"] is b["test_err"] is None  # the CSV has no test split
        for key in ("train_loss", "train_err", "valid_err"):
            assert abs(a[key] - b[key]) < 1e-9, (a["update"], key, a[key], b[key])
    assert two[-1]["valid_err"] < 0.2 < two[0]["valid_err"]  # it did learn
    # the files hold float32 weights: the float64 runs' last-digit differences may round apart
    wa, wb = (load_file(rundir.latest(runs / d / "whole") / "model.safetensors") for d in ("rank0", "single"))
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=0, atol=1e-6, err_msg=name)
    two_best, one_best = (json.loads((runs / d / "whole" / "best" / "config.json").read_text())["results"]
                          for d in ("rank0", "single"))
    del two_best["elapsed"], one_best["elapsed"]
    assert two_best == one_best  # the best parameters' errors and the history of valid errors
    assert (runs / "rank0" / "whole" / "curve.png").stat().st_size > 1000


def test_rank_other_than_0_writes_no_files(runs):
    assert list((runs / "rank1").iterdir()) == []
    for run in ("whole", "half", "halves", "budget"):
        assert rundir.latest(runs / "rank0" / run) is not None and (runs / "rank0" / run / "best").is_dir()


@pytest.mark.parametrize("run", ["half", "halves"])
def test_a_two_process_run_resumes_on_one_or_two(runs, run):
    """One process ("half": its trainer state records 2, checked in the fixture) or two ("halves")
    continue a 2-process run with the same global batch: equal to the uninterrupted run up to the
    float32 rounding of the saved weights."""
    resumed, whole = valid_records(runs / "rank0" / run), valid_records(runs / "single" / "whole")
    assert [r["update"] for r in resumed] == [r["update"] for r in whole]
    for a, b in zip(resumed, whole):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-6, a["update"]


def test_shares_split_a_batch_and_weigh_to_its_mean():
    x = np.random.default_rng(0).standard_normal(9)
    shares = [Distributed(rank, 2).share(9) for rank in (0, 1)]
    assert [m.tolist() for m, _ in shares] == [[0, 2, 4, 6, 8], [1, 3, 5, 7]]
    assert sum(w * x[m].mean() for m, w in shares) / 2 == pytest.approx(x.mean(), abs=1e-15)
    assert Distributed(1, 2).share(1)[1] == 0.0 and Distributed(0, 1).share(3)[1] == 1.0
