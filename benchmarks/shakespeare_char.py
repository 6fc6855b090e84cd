"""Tiny Shakespeare, characters: unroll's shakespeare-char preset at fixed wall-time budgets.

Runs ``unroll.train.train()`` on the ``shakespeare-char`` preset (90/10 split of ``input.txt``)
with ``time_budget`` = 71 s and = 15 min (evaluation included in the budget), and prints the
best validation loss in nats/char and bits/char beside nanoGPT's figures:

- nanoGPT's README CPU recipe (a 0.8M-parameter transformer, block 64, batch 12, 2,000
  iterations): validation 1.886 nats/char in about 71 s on this machine kind (measured
  beforehand, see BENCHMARKS.md; the recipe is karpathy/nanoGPT's README, "I only have a
  macbook" section).
- nanoGPT's GPU "baby GPT" (``config/train_shakespeare_char.py``): 1.47 nats/char (nanoGPT README).

    python benchmarks/shakespeare_char.py                     # 71 s and 15 min (~17 minutes)
    python benchmarks/shakespeare_char.py --budgets 5         # a smoke run

Prints a table and one JSON line; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import tempfile
import time
from dataclasses import replace

NANOGPT_CPU = {"valid_loss": 1.886, "seconds": 71, "source": "nanoGPT README CPU recipe, measured on this machine kind"}
NANOGPT_GPU = {"valid_loss": 1.47, "source": "nanoGPT README, config/train_shakespeare_char.py (GPU)"}
PRESET = "shakespeare-char"


def main() -> None:
    from unroll.presets import PRESETS
    from unroll.train import train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="71,900", help="comma-separated wall-time budgets in seconds")
    args = ap.parse_args()
    preset = PRESETS[PRESET]
    rows = []
    for budget in [float(b) for b in args.budgets.split(",") if b]:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = train(replace(preset.train, time_budget=budget), preset.model, out)
        loss = result.best_valid["loss"]
        rows.append({"budget_s": budget, "valid_loss": loss, "valid_bpc": loss / math.log(2),
                     "train_wall_s": result.elapsed, "total_s": time.perf_counter() - t0, "steps": result.steps,
                     "load_before": load, "load_after": os.getloadavg()[0]})
        print(f"  {budget:.0f}s: valid {loss:.4f} nats/char ({loss / math.log(2):.4f} bpc)", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{'budget s':>8s} {'valid nats':>10s} {'valid bpc':>9s} {'steps':>6s} {'wall s':>7s} {'load':>9s}")
    for r in rows:
        print(f"{r['budget_s']:8.0f} {r['valid_loss']:10.4f} {r['valid_bpc']:9.4f} {r['steps']:6d} "
              f"{r['train_wall_s']:7.1f} {r['load_before']:4.1f}/{r['load_after']:.1f}")
    print(f"nanoGPT CPU recipe: {NANOGPT_CPU['valid_loss']} nats/char in ~{NANOGPT_CPU['seconds']} s; "
          f"nanoGPT baby GPT (GPU): {NANOGPT_GPU['valid_loss']}; peak RSS {peak:.0f} MB")
    print(json.dumps({"benchmark": "shakespeare_char", "preset": PRESET, "runs": rows, "peak_rss_mb": peak,
                      "nanogpt_cpu": NANOGPT_CPU, "nanogpt_gpu": NANOGPT_GPU}))


if __name__ == "__main__":
    main()
