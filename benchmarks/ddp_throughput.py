"""Training tokens per second with 1 process and with N processes (torchrun, DDP).

    UNROLL_DATA_DIR=MIRROR python benchmarks/ddp_throughput.py              # ptb-small, 1 vs 2
    python benchmarks/ddp_throughput.py --nproc 1 2 4 8 --device cuda --preset ptb-medium
    python benchmarks/ddp_throughput.py --data notes.txt --level char --steps 5 10 --hidden-size 32   # smoke

Each setting runs the real command (``unroll train`` alone, or under ``torchrun
--nproc_per_node=N``) twice, for ``--steps A B`` updates; throughput is the difference of the
two runs' training tokens over the difference of their wall times (``metrics.jsonl``), so start-up,
data loading and the final evaluation cancel. The global batch (``--batch-size``) is the same in
every setting, so every setting does the same work per update. A single process uses all the
torch threads it likes; torchrun gives each rank OMP_NUM_THREADS=1 unless --threads says
otherwise. On a 2-core CPU expect little gain from 2 processes: they share the cores one
process already used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, steps: int, train_args: list[str], out: Path, threads: int | None) -> tuple[int, float]:
    """(training tokens, seconds) of one ``unroll train`` run of ``steps`` updates."""
    cmd = [sys.executable, "-m", "unroll", *train_args, "--max-steps", str(steps), "--quiet", "--out", str(out)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *cmd[1:]]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in final if r["kind"] == "final"][-1]
    return final["tokens"], final["elapsed"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    p.add_argument("--steps", type=int, nargs=2, default=[20, 120], metavar=("A", "B"), help="updates of the two runs")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS for every process (default: torch's / torchrun's)")
    p.add_argument("--preset", default=None, help="a preset (default ptb-small unless --data is given)")
    args, rest = p.parse_known_args()
    preset = args.preset or (None if "--data" in rest else "ptb-small")
    train_args = ["train", *(["--preset", preset] if preset else []), "--epochs", "1000", "--eval-every", "0", *rest]
    print(f"unroll {' '.join(train_args)}  (updates {args.steps[0]} and {args.steps[1]})")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in args.nproc:
            (t1, s1), (t2, s2) = (run(nproc, n, train_args, Path(tmp) / f"n{nproc}-{n}", args.threads) for n in args.steps)
            name = f"{nproc} process{'es' if nproc > 1 else '  '}"
            if s2 <= s1:
                print(f"{name}: runs too short to time ({s1:.2f} s and {s2:.2f} s); raise --steps")
                continue
            rate = (t2 - t1) / (s2 - s1)
            base = base or rate
            print(f"{name}: {rate:12,.0f} tokens/s  x{rate / base:.2f}")


if __name__ == "__main__":
    main()
