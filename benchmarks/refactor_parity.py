"""Same seed, same numbers: three short trainings whose losses and final weights a refactor must keep.

    UNROLL_DATA_DIR=../shared/data python benchmarks/refactor_parity.py --json after.json
    python benchmarks/refactor_parity.py --compare before.json after.json

Runs, through the command line (the interface that stays put when the code behind it moves):
``ptb-small`` for 200 updates, the ``char-cpu`` preset on Tiny Shakespeare for 100 updates, and a
classifier for 100 updates on a labeled CSV this script writes from a fixed seed. Each run's
evaluation records (losses, perplexities, errors) and the sha256 of every final tensor go into
the JSON. To measure the code before a change, run this file with ``PYTHONPATH`` pointing at a
checkout of that commit (``git worktree add /tmp/before COMMIT``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from machine import cpu_model

LM_JOBS = {
    "ptb-small": ["--preset", "ptb-small", "--max-steps", "200", "--eval-every", "50", "--no-final-test"],
    "char-cpu": ["--preset", "char-cpu", "--max-steps", "100", "--eval-every", "25", "--no-final-test",
                 "--time-budget", "none"],
}
WORDS = [f"w{i}" for i in range(300)]


def write_labeled_csv(path: Path, rows: int = 1053, seed: int = 0) -> None:
    """Short 'reviews' whose label depends on which half of the vocabulary dominates them."""
    rng = np.random.default_rng(seed)
    lines = ["text,label"]
    for _ in range(rows):
        label = int(rng.integers(2))
        n = int(rng.integers(5, 30))
        bias = 0.7 if label else 0.3
        ids = np.where(rng.random(n) < bias, rng.integers(0, 150, n), rng.integers(150, 300, n))
        lines.append(f"{' '.join(WORDS[i] for i in ids)},{'pos' if label else 'neg'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def tensor_hashes(path: Path) -> dict[str, str]:
    return {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16]
            for k, v in sorted(load_file(str(path)).items())}


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in lines if line]


def unroll(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "unroll", *args], check=True)


def measure(work: Path) -> dict:
    results = {}
    for name, args in LM_JOBS.items():
        out = work / name
        unroll("train", *args, "--out", str(out), "--quiet")
        results[name] = {"records": records(out), "weights": tensor_hashes(out / "model.safetensors")}
    csv = work / "labeled.csv"
    write_labeled_csv(csv)
    out = work / "classifier"
    unroll("classify", "train", "--data", str(csv), "--level", "whitespace", "--dim-proj", "32", "--batch-size", "10",
           "--max-epochs", "1", "--valid-freq", "25", "--out", str(out), "--quiet")
    results["classifier"] = {"records": records(out), "weights": tensor_hashes(out / "model.safetensors")}
    return results


def compare(before: dict, after: dict) -> bool:
    same = True
    for name in before["runs"]:
        a, b = before["runs"][name], after["runs"].get(name)
        rec = b is not None and a["records"] == b["records"]
        wts = b is not None and a["weights"] == b["weights"]
        steps = a["records"][-1].get("step", a["records"][-1].get("update"))
        print(f"{name:>10}: {len(a['records'])} evaluation records {'identical' if rec else 'DIFFER'}, "
              f"{len(a['weights'])} final tensors {'identical' if wts else 'DIFFER'} (last record at update {steps})")
        same &= rec and wts
    return same


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=Path, help="write the measurements here")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        before, after = (json.loads(f.read_text()) for f in args.compare)
        print(f"before: {before['commit']} ({before['cpu']}); after: {after['commit']} ({after['cpu']})")
        sys.exit(0 if compare(before, after) else 1)
    import unroll as package

    root = Path(package.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = cpu_model()
    with tempfile.TemporaryDirectory() as tmp:
        runs = measure(Path(tmp))
    result = {"commit": commit, "cpu": cpu, "package": str(root), "runs": runs}
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(f"{commit} on {cpu}: " + ", ".join(f"{k} {len(v['records'])} records" for k, v in runs.items()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
