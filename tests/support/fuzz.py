"""How many property cases a fuzz test draws: its CI count, times ``UNROLL_FUZZ_SCALE``
(``benchmarks/fuzz.py`` raises it to run many more, with fresh random draws)."""

from __future__ import annotations

import os


def cases(ci_count: int) -> int:
    return ci_count * int(os.environ.get("UNROLL_FUZZ_SCALE", "1"))
