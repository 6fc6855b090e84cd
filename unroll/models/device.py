"""Choosing where the model runs (CUDA, then Apple's MPS, then the CPU, unless the user says) and
in which precision (bf16 autocast only where the hardware runs it natively)."""

from __future__ import annotations

import torch

from unroll.config import PRECISIONS
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


def bf16_kernels(device: torch.device) -> bool:
    """Whether bf16 autocast runs on ``device`` at a usable speed at all.

    CUDA: the GPU says. CPU: oneDNN has bf16 kernels (AVX-512 and up). Without them PyTorch falls
    back to scalar code, and oneDNN's LSTM refuses bf16: on an AVX2 CPU (AMD EPYC, 2026-11-30) a
    bf16 GEMM ran 60x slower than fp32 and a bf16 ``nn.LSTM`` raised. MPS: no (fp32 is safe there).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_says("ops.mkldnn._is_mkldnn_bf16_supported")
    return False


def bf16_is_native(device: torch.device) -> bool:
    """Whether the hardware computes in bf16, so that ``auto`` takes it: a GPU with bf16 units, or a
    CPU with AVX512-BF16 or AMX (on Sapphire Rapids the LSTM trains 2.2x faster than in fp32,
    BENCHMARKS.md). Plain AVX-512 and older GPUs emulate bf16: less precision, no expected speed-up."""
    if device.type == "cpu":
        native = _cpu_says("cpu._is_avx512_bf16_supported") or _cpu_says("cpu._is_amx_tile_supported")
        return native and bf16_kernels(device)
    if device.type == "cuda":  # Ampere and later (or ROCm); older GPUs only emulate bf16
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return False


def _cpu_says(probe: str) -> bool:
    """The answer of one of torch's CPU feature probes (private API: False where it is missing)."""
    target: object = torch
    for name in probe.split("."):
        target = getattr(target, name, None)
    return bool(target is not None and target())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for a requested ``auto`` / ``fp32`` / ``bf16`` on ``device``.

    ``auto`` is bf16 where :func:`bf16_is_native`, else fp32: what the presets ask for, so that a
    recipe tuned on a bf16 machine runs everywhere. An explicit ``bf16`` without :func:`bf16_kernels`
    is an error, not a run 60x slower or a crash deep in oneDNN.
    """
    if precision not in PRECISIONS:
        raise UnrollError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_is_native(device) else "fp32"
    if precision == "bf16" and not bf16_kernels(device):
        raise UnrollError(f"bf16 has no fast kernels on this {device.type} (a CPU needs AVX-512, a GPU bf16 "
                          "support); use --precision fp32, or auto to take bf16 only where it is native")
    return precision
