"""The layout of a training run's directory, and saves that a crash cannot tear.

    RUN/
        checkpoint-<step>/   a resumable checkpoint: model files + trainer state (state.py);
                             the newest ``keep_last`` are kept, the highest step is the latest
        best/                the checkpoint with the best validation figure (model files only)
        metrics.jsonl        one JSON record per evaluation
        curve.png            the learning curve

A checkpoint is written whole into a hidden staging directory (``.tmp-<name>-<pid>``), every file
and the directory fsynced, then renamed into place: a reader, a resume or a kill -9 at any
instant sees the previous checkpoint or the new one, never a mix. Replacing a directory that
exists (``best/``, or a second save at the same step) takes two renames: the old one is first
moved aside to ``.old-<name>``; if the process dies between the two, readers use ``.old-<name>``
and :func:`recover` puts it back. Older runs kept their checkpoint files in RUN itself; they are
still read, and their first save in this layout removes them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unroll.io import fsync_directory, fsync_tree

BEST = "best"
CHECKPOINT_PREFIX = "checkpoint-"
STAGING_PREFIX = ".tmp-"
ASIDE_PREFIX = ".old-"
_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
# Files a checkpoint holds when written by an older unroll straight into the run directory.
LEGACY_FILES = ("model.safetensors", "config.json", "vocab.json", "trainer_state.json", "trainer_state.safetensors")

# Test-only: "<n>:<phase>" pauses this process the n-th time a staged save (checkpoints and
# best/ alike) reaches that phase, until a signal arrives, so that a test kills it exactly there.
# Phases: "begin" (staging directory empty), "files" (all files staged, nothing in place yet),
# "swap" (replacing: the old directory moved aside, the new one not yet in place).
PAUSE_ENV = "UNROLL_TEST_PAUSE_IN_SAVE"
_reached: dict[str, int] = {}


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step}"


def checkpoints(run: Path) -> list[Path]:
    """The run's complete checkpoints, oldest first (by step). One moved aside by a replacement
    that was cut short counts as the checkpoint it was."""
    found: dict[int, Path] = {}
    if not run.is_dir():
        return []
    for path in run.iterdir():
        name = path.name.removeprefix(ASIDE_PREFIX)
        m = _CHECKPOINT_NAME.fullmatch(name)
        if m and path.is_dir() and (path.name == name or not (run / name).exists()):
            found[int(m.group(1))] = path
    return [found[step] for step in sorted(found)]


def latest(run: Path) -> Path | None:
    """The newest checkpoint of a run directory, or None when it holds none."""
    found = checkpoints(Path(run))
    return found[-1] if found else None


def resolve(directory: str | os.PathLike) -> Path:
    """The checkpoint a path means: a run directory's latest checkpoint, else the path itself."""
    directory = Path(directory)
    return latest(directory) or directory


def best(run: str | os.PathLike) -> Path:
    """A run's ``best/`` checkpoint (or, after a replacement cut short, the one moved aside)."""
    run = Path(run)
    path = run / BEST
    aside = run / (ASIDE_PREFIX + BEST)
    return aside if not path.exists() and aside.is_dir() else path


def is_run(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a run's checkpoint in this layout."""
    return latest(Path(directory)) is not None


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield an empty staging directory; when the block succeeds, it becomes ``final`` (fsynced,
    renamed into place, replacing what was there); when it fails, it is removed."""
    pause = _pause_hook()
    tmp = final.parent / f"{STAGING_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        pause("begin")
        yield tmp
        pause("files")
        fsync_tree(tmp)
        _put_in_place(tmp, final, pause)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _put_in_place(tmp: Path, final: Path, pause: Callable[[str], None]) -> None:
    parent = final.parent
    if final.exists():
        aside = parent / (ASIDE_PREFIX + final.name)
        if aside.exists():
            shutil.rmtree(aside)
        os.rename(final, aside)
        fsync_directory(parent)
        pause("swap")
        os.rename(tmp, final)
        fsync_directory(parent)
        shutil.rmtree(aside)
    else:
        os.rename(tmp, final)
    fsync_directory(parent)


def save_checkpoint_dir(run: Path, step: int, write: Callable[[Path], None], keep_last: int) -> Path:
    """Write the checkpoint of ``step`` with ``write(directory)``, put it in place, then keep
    only the newest ``keep_last`` (and drop an older unroll's checkpoint files from ``run``)."""
    final = run / checkpoint_name(step)
    with staged(final) as tmp:
        write(tmp)
    for old in checkpoints(run)[:-keep_last]:
        shutil.rmtree(old)
    for name in LEGACY_FILES:
        (run / name).unlink(missing_ok=True)
    return final


def recover(run: Path) -> None:
    """Finish or undo what a killed save left: a checkpoint moved aside goes back when its
    replacement never arrived; staging directories and temporary files are removed."""
    if not run.is_dir():
        return
    for path in sorted(run.iterdir()):
        if path.name.startswith(ASIDE_PREFIX) and path.is_dir():
            original = run / path.name.removeprefix(ASIDE_PREFIX)
            if original.exists():
                shutil.rmtree(path)
            else:
                os.rename(path, original)
        elif path.name.startswith(STAGING_PREFIX) and path.is_dir():
            shutil.rmtree(path)
        elif path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            path.unlink()  # an atomic write's temporary file (unroll.io)
    fsync_directory(run)


def remove_run(run: Path) -> None:
    """Remove what a run wrote (checkpoints, best/, staging leftovers, older runs' files), and nothing else."""
    recover(run)
    for path in [*checkpoints(run), run / BEST]:
        if path.is_dir():
            shutil.rmtree(path)
    for name in LEGACY_FILES:
        (run / name).unlink(missing_ok=True)


def _pause_hook() -> Callable[[str], None]:
    number, _, phase = os.environ.get(PAUSE_ENV, "").partition(":")

    def pause(at: str) -> None:
        _reached[at] = _reached.get(at, 0) + 1
        if at != phase or number != str(_reached[at]):
            return
        woke = []

        def note(signum: int, frame: Any) -> None:  # the run's own handler still runs
            woke.append(signum)
            if callable(previous[signum]):
                previous[signum](signum, frame)

        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.signal(s, note) for s in stops}
        print(f"unroll-test: paused in save at {phase} ({number})", file=sys.stderr, flush=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not woke:
                time.sleep(0.02)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    return pause
