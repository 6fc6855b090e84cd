"""Choosing where the model runs: CUDA, then Apple's MPS, then the CPU, unless the user says."""

from __future__ import annotations

import torch

from unroll.errors import UnrollError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str | None = None) -> torch.device:
    """The device for ``--device NAME``: ``None`` or ``"auto"`` picks cuda > mps > cpu.

    An explicit name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) must be usable here, otherwise a
    one-line :class:`UnrollError` says so and what to use instead.
    """
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UnrollError(f"--device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UnrollError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise UnrollError(f"--device {name}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1})")
    elif device.type == "mps":
        if not _mps_available():
            raise UnrollError(f"--device {name}: Apple MPS is not available on this machine; use --device cpu or auto")
    elif device.type != "cpu":
        raise UnrollError(f"--device {name}: unsupported device type; use auto, cpu, cuda, cuda:N or mps")
    return device
