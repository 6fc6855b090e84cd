"""Data-parallel training under torchrun (2 processes, gloo, float64) against one process.

One torchrun launch (``ddp_launch.torchrun``) runs several ``unroll train`` commands (the launch
costs seconds; the tiny runs don't). Each rank works in a folder of its own, so rank 1 writing
anything would show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support.ddp_launch import torchrun
from safetensors.numpy import load_file

pytestmark = pytest.mark.distributed

from unroll import rundir
from unroll.cli import main
from unroll.errors import UnrollError
from unroll.train.distributed import Distributed

TEXT = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n"
    "to be or not to be, that is the question; whether tis nobler in the mind to suffer.\n"
) * 5
STEPS = 14  # about 11 updates per epoch at batch 8 x bptt 8: crosses an epoch end (state reset)


def args(data: Path, out: str, steps: int = STEPS, **flags: object) -> list[str]:
    argv = ["train", "--data", str(data), "--level", "char", "--batch-size", "8", "--bptt", "8",
            "--random-bptt", "--eval-batch-size", "4", "--test-batch-size", "4", "--optimizer", "momentum",
            "--lr", "0.5", "--clip", "0.5", "--schedule", "constant", "--epochs", "2", "--max-steps", str(steps),
            "--emb-size", "8", "--hidden-size", "12", "--num-layers", "2", "--eval-every", "1", "--quiet",
            "--out", out]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def in_float64(argv: list[str]) -> int:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return main(argv)
    finally:
        torch.set_default_dtype(previous)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def steps_records(run: Path) -> dict[int, dict]:
    """The every-update evaluation records by update."""
    return {r["step"]: r for r in records(run) if r["kind"] == "steps"}


def assert_same_weights(a: Path, b: Path, tol: float) -> None:
    wa, wb = load_file(rundir.latest(a) / "model.safetensors"), load_file(rundir.latest(b) / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=0, atol=tol, err_msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2-process runs in rank0/ (and nothing in rank1/), 1-process runs in single/."""
    root = tmp_path_factory.mktemp("ddp")
    data = root / "tiny.txt"
    data.write_text(TEXT, encoding="utf-8")
    (root / "single").mkdir()
    jobs = [
        args(data, "whole"),
        args(data, "half", steps=STEPS // 2),  # resumed by one process below
        args(data, "drop", dropout=0.3),
        args(data, "drop_half", steps=STEPS // 2, dropout=0.3),
        ["train", "--resume", "drop_half", "--max-steps", str(STEPS), "--quiet"],
    ]
    torchrun(root, jobs)
    single = root / "single"
    assert in_float64(args(data, str(single / "whole"))) == 0
    assert in_float64(["train", "--resume", str(root / "rank0" / "half"), "--max-steps", str(STEPS), "--quiet"]) == 0
    return root


def test_two_ranks_of_batch_b_follow_one_process_of_batch_2b(runs):
    """Same updates, same logged train loss (the whole batch's mean), same validation perplexity
    (rank 0 evaluates), same tokens count: float64 leaves only the order of sums (~1e-12)."""
    two, one = records(runs / "rank0" / "whole"), records(runs / "single" / "whole")
    assert [r["kind"] for r in two] == [r["kind"] for r in one]
    assert sum(r["kind"] == "steps" for r in two) == STEPS  # every update evaluated
    assert any(r["kind"] == "epoch" for r in two)
    for a, b in zip(two, one):
        assert (a["step"], a["epoch"], a["tokens"]) == (b["step"], b["epoch"], b["tokens"])
        for key in ("train_loss", "valid_loss", "lr"):
            if a[key] is not None or b[key] is not None:
                assert abs(a[key] - b[key]) < 1e-9, (a["step"], key, a[key], b[key])
    curve = steps_records(runs / "rank0" / "whole")
    assert curve[STEPS]["train_loss"] < curve[1]["train_loss"] - 0.3  # it did learn
    assert_same_weights(runs / "rank0" / "whole", runs / "single" / "whole", 1e-9)


def test_rank_other_than_0_writes_no_files(runs):
    assert list((runs / "rank1").iterdir()) == []
    assert sorted(p.name for p in runs.iterdir()) == ["rank0", "rank1", "single", "tiny.txt"]
    for run in ("whole", "half", "drop", "drop_half"):
        assert rundir.latest(runs / "rank0" / run) is not None


def test_resume_on_two_ranks_restores_each_ranks_state(runs):
    """With dropout each rank has its own random stream; the checkpoint holds all of them and
    every rank's carried state (rank 1 reads nothing from disk: rank 0 sends it the checkpoint).
    Equal up to the float32 rounding of the weights on reload."""
    state = json.loads((rundir.latest(runs / "rank0" / "drop_half") / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["rank_rng"]) == 2
    assert_same_weights(runs / "rank0" / "drop", runs / "rank0" / "drop_half", 1e-5)
    whole, resumed = (steps_records(runs / "rank0" / run) for run in ("drop", "drop_half"))
    assert sorted(resumed) == sorted(whole) == list(range(1, STEPS + 1))
    for step in whole:
        for key in ("train_loss", "valid_loss"):
            assert abs(whole[step][key] - resumed[step][key]) < 1e-6, (step, key)

def test_resume_with_another_number_of_processes(runs):
    """A 2-process checkpoint (hidden state saved as one [L, B, H] batch) resumed by one process
    with the same global batch continues the same run."""
    assert_same_weights(runs / "rank0" / "whole", runs / "rank0" / "half", 1e-5)
    assert_same_weights(runs / "single" / "whole", runs / "rank0" / "half", 1e-5)


def test_shards_are_contiguous_column_blocks():
    data = np.arange(24).reshape(3, 8)
    parts = [Distributed(rank, 2).shard_columns(data) for rank in (0, 1)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), data)
    np.testing.assert_array_equal(parts[1], data[:, 4:])
    h = torch.arange(2 * 8 * 3).reshape(2, 8, 3)
    assert torch.equal(Distributed(1, 4).shard_state(h), h[:, 2:4])
    with pytest.raises(UnrollError, match="does not split among 3 processes.*such as 6 or 9"):
        Distributed(0, 3).shard_columns(data)


def test_session_leaves_after_a_barrier_but_not_after_an_error(monkeypatch):
    """A run that ends well waits for every rank before the group goes (a gloo thread still
    freeing a collective's tensors at interpreter exit aborts the process); one that raises
    leaves at once, since its peers may never reach a barrier."""
    from unroll.train import distributed

    calls: list[str] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "rendezvous", lambda *a, **k: iter([("store", 0, 2)]))
    monkeypatch.setattr(distributed.dist, "PrefixStore", lambda prefix, store: (prefix, store))
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: calls.append("init"))
    monkeypatch.setattr(distributed.dist, "barrier", lambda *a, **k: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda *a, **k: calls.append("destroy"))
    with distributed.session("cpu"):
        calls.append("run")
    assert calls == ["init", "run", "barrier", "destroy"]
    calls.clear()
    with pytest.raises(KeyboardInterrupt), distributed.session("cpu"):
        raise KeyboardInterrupt
    assert calls == ["init", "destroy"]
