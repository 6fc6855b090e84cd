"""Checkpoint averaging (icefall's ``--avg N``): the mean of a run's last N checkpoints' weights.

Late in training the weights wander around a minimum; their average often sits nearer to it
than any one of them (Polyak averaging after the fact, as NT-ASGD does during training). Only
checkpoints of one model can be averaged: the same model settings, vocabulary and text
settings, or a one-line error says which differs. The result is an ordinary checkpoint
directory (no trainer state: it is for ``unroll eval``, ``export``, ``score``, not for resuming),
whose config.json records what it averaged under ``"averaged"``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from unroll.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from unroll.errors import CheckpointError, UnrollError


def last_checkpoints(run: str | os.PathLike, n: int) -> list[Path]:
    """The newest ``n`` resumable checkpoints of a training run (those ``--keep-last`` kept), oldest first."""
    from unroll import rundir

    if n < 1:
        raise UnrollError(f"--last must be at least 1, got {n}")
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"{run}: no such run directory")
    found = rundir.checkpoints(run)
    if len(found) < n:
        raise UnrollError(f"{run}: holds {len(found)} resumable checkpoint(s), fewer than --last {n}; "
                          f"train with --keep-last {n} or more, or average fewer")
    return found[-n:]


def average_checkpoints(directories: list[Path]) -> Checkpoint:
    """The element-wise mean (in float64, stored in each weight's dtype) of the checkpoints' weights."""
    if not directories:
        raise UnrollError("nothing to average: no checkpoints given")
    first = load_checkpoint(directories[0])
    sums = {k: np.asarray(v, np.float64).copy() for k, v in first.params.items()}
    for directory in directories[1:]:
        ckpt = load_checkpoint(directory)
        _same_model(first, directories[0], ckpt, directory)
        for k, v in ckpt.params.items():
            sums[k] += v
    params = {k: (s / len(directories)).astype(first.params[k].dtype) for k, s in sums.items()}
    last = load_checkpoint(directories[-1]) if len(directories) > 1 else first
    extra = {k: v for k, v in last.extra.items() if k != "text"}
    extra["averaged"] = {"checkpoints": [str(d) for d in directories], "count": len(directories)}
    return Checkpoint(params, first.model, first.vocab, extra, last.text)


def _same_model(a: Checkpoint, a_dir: Path, b: Checkpoint, b_dir: Path) -> None:
    for what, x, y in (("model settings", a.model.to_dict(), b.model.to_dict()), ("vocabulary", a.vocab, b.vocab),
                       ("text settings", a.extra.get("text"), b.extra.get("text"))):
        if x != y:
            detail = ""
            if isinstance(x, dict) and isinstance(y, dict):
                keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                detail = f" ({', '.join(keys[:4])})"
            raise CheckpointError(f"cannot average {a_dir} and {b_dir}: their {what} differ{detail}")


def write_average(directories: list[Path], out: str | os.PathLike) -> Path:
    """Average ``directories`` into the new checkpoint directory ``out``, which appears whole or not at all."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnrollError(f"--out {out} exists and is not an empty directory; choose another --out")
    ckpt = average_checkpoints(directories)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-{out.name}-"))
    except OSError as e:
        raise UnrollError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    try:
        save_checkpoint(tmp, ckpt)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
