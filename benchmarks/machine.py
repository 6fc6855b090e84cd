"""The machine a benchmark ran on, for the line it prints beside its figures."""

from __future__ import annotations

import subprocess


def cpu_model() -> str:
    """lscpu's model name (the CPU kinds these benchmarks compare: Sapphire Rapids, EPYC)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "unknown")
