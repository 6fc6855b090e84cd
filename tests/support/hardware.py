"""Markers for tests that need something of the machine they run on."""

from __future__ import annotations

import pytest
import torch

from unroll.models.device import bf16_kernels

# bf16 through oneDNN (nn.LSTM's kernels, ``precision="bf16"``) needs a CPU with AVX-512; an AVX2
# CPU raises or crawls. The numerics stay tested where the hardware has them.
needs_bf16_kernels = pytest.mark.skipif(
    not bf16_kernels(torch.device("cpu")), reason="no bf16 kernels on this CPU (oneDNN needs AVX-512)"
)
