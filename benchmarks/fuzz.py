"""More fuzzing than CI: the property tests of damaged loaders and of settings, with fresh random
draws and ``--scale`` times the CI case counts, plus the kill -9 test repeated ``--kill-runs`` times.

    python benchmarks/fuzz.py --scale 10 --kill-runs 2

Prints the cases run and whether all passed, for BENCHMARKS.md's reliability record.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from machine import cpu_model

PROPERTY_TESTS = {  # test file -> CI cases per test, in order of its @settings
    "tests/cli/test_fuzz_loaders.py": [60, 30, 30],
    "tests/cli/test_cli_settings.py": [60],
    "tests/unit/test_settings.py": [400],
}
KILLS_PER_RUN = 20


def pytest(paths: list[str], env: dict[str, str]) -> bool:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *paths],
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        print(proc.stdout[-5000:] + proc.stderr[-2000:])
    return proc.returncode == 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=10, help="times the CI case count of each property test")
    p.add_argument("--kill-runs", type=int, default=1, help="repetitions of the 20-kill test")
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # not derandomized: new draws each time
    env["UNROLL_FUZZ_SCALE"] = str(args.scale)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | {cpu_model()} | scale {args.scale}")
    ok_all = True
    for path, counts in PROPERTY_TESTS.items():
        t0 = time.perf_counter()
        ok = pytest([path], env)
        ok_all &= ok
        print(f"{path}: {sum(counts) * args.scale} property cases, {'all passed' if ok else 'FAILED'} "
              f"({time.perf_counter() - t0:.0f} s)")
    for i in range(args.kill_runs):
        t0 = time.perf_counter()
        ok = pytest(["tests/cli/test_kill.py"], env)
        ok_all &= ok
        print(f"kill run {i + 1}: {KILLS_PER_RUN} kill -9 and one SIGTERM inside a save, "
              f"{'all resumed bit for bit' if ok else 'FAILED'} ({time.perf_counter() - t0:.0f} s)")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
