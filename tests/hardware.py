"""Markers for tests that need something of the machine they run on."""

from __future__ import annotations

import pytest
import torch

from unroll.models.device import bf16_is_native

# bf16 through oneDNN (nn.LSTM's kernels, ``precision="bf16"``) needs a CPU with AVX-512; an AVX2
# CPU raises or crawls. The numerics stay tested where the hardware has them.
needs_native_bf16 = pytest.mark.skipif(
    not bf16_is_native(torch.device("cpu")), reason="bf16 is not native on this CPU (needs AVX-512)"
)
