"""The trainer state that makes ``--resume`` continue exactly, stored without pickle.

Beside a checkpoint's model files (``model.safetensors``, ``config.json``, ``vocab.json``) a
run's ``checkpoint-<step>/`` (see ``unroll.rundir``) holds::

    trainer_state.safetensors   tensors: optimizer buffers, carried hidden state, torch RNG state
    trainer_state.json          everything else (epoch, step, data position, schedule, numpy and
                                Python RNG states, best validation loss) and the sha256 of the
                                four files above

The directory is put in place only once whole, so a crash never tears it; the hashes catch a
file changed or damaged afterwards, so loading refuses it instead of resuming from a mix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from unroll import rundir
from unroll.checkpoint import CONFIG, VOCAB, WEIGHTS, read_json
from unroll.data.files import sha256_file
from unroll.errors import CheckpointError, UnrollError
from unroll.io import atomic_write_bytes, atomic_write_json

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"
STATE_VERSION = 1
PAIRED = (WEIGHTS, CONFIG, VOCAB, STATE_TENSORS)


def save_trainer_state(directory: str | os.PathLike, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write the tensors, then the JSON that pairs them with the checkpoint files (call after
    the model files were written into the same directory)."""
    directory = Path(directory)
    flat = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}
    atomic_write_bytes(directory / STATE_TENSORS, st_save(flat, metadata={"format": "unroll-trainer"}))
    files = {name: sha256_file(directory / name) for name in PAIRED}
    atomic_write_json(directory / STATE_JSON, {"version": STATE_VERSION, "files": files, **meta})


def has_trainer_state(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` (a run, or one of its checkpoints) holds a resumable state."""
    return (rundir.resolve(directory) / STATE_JSON).is_file()


def existing_run_error(directory: str | os.PathLike) -> UnrollError:
    """What a new run says when ``directory`` already holds one: it never overwrites a resumable run."""
    return UnrollError(f"{directory} already holds a training run; continue it with --resume {directory} or choose another --out")


def check_resume_overrides(overrides: dict[str, Any] | None, allowed: set[str]) -> None:
    """On resume only settings that did not shape the run so far (budgets, patience ...) may change."""
    fixed = sorted(set(overrides or {}) - allowed)
    if fixed:
        raise UnrollError(
            f"{', '.join(fixed)} cannot change when resuming (they shape the run so far); "
            f"on --resume only {', '.join(sorted(allowed))} can"
        )


def load_trainer_state(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and verify the trainer state of a run's latest checkpoint (or of the checkpoint
    ``directory``); any problem is a one-line :class:`CheckpointError`."""
    run = Path(directory)
    directory = rundir.resolve(run)
    path = directory / STATE_JSON
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {directory} has no resumable trainer state")
    meta = read_json(path)
    if meta.get("version") != STATE_VERSION or not isinstance(meta.get("files"), dict):
        raise CheckpointError(f"{path}: not an unroll trainer state (version {STATE_VERSION})")
    for name in PAIRED:
        f = directory / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing; the trainer state cannot be resumed without it")
        if sha256_file(f) != meta["files"].get(name):
            raise CheckpointError(
                f"{f}: does not match {STATE_JSON} (the file was changed or damaged); resume is not "
                f"possible from {directory}; {_other_checkpoints(run, directory)}"
            )
    try:
        tensors = st_load((directory / STATE_TENSORS).read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{directory / STATE_TENSORS}: corrupt ({e})") from None
    return meta, tensors


def _other_checkpoints(run: Path, damaged: Path) -> str:
    """What is left to a user whose latest checkpoint is damaged."""
    older = [p for p in rundir.checkpoints(run) if p != damaged]
    if older:
        return f"move it away to resume from {older[-1]}"
    best = rundir.best(run)
    return f"{best} may still be usable" if best.is_dir() else "start a new run"


# Nested state (optimizer.state_dict(), RNG states) <-> JSON + a flat tensor dict.
# A tensor becomes {"__tensor__": key}; a dict with non-string keys (optimizer state is keyed by
# parameter index) becomes {"__items__": [[key, value], ...]}; tuples become lists.

def to_json_and_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: to_json_and_tensors(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, to_json_and_tensors(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [to_json_and_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def from_json_and_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            key = obj["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"{STATE_TENSORS}: tensor {key!r} is missing")
            return tensors[key]
        if set(obj) == {"__items__"}:
            return {k: from_json_and_tensors(v, tensors) for k, v in obj["__items__"]}
        return {k: from_json_and_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json_and_tensors(v, tensors) for v in obj]
    return obj
