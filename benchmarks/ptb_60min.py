"""Best PTB perplexity in a fixed wall-time budget: unroll's ptb-cpu-60min preset against a plain loop.

    ours    unroll.train.train() on the ``ptb-cpu-60min`` preset (or ``--preset``, e.g.
            ``ptb-cpu-60min-fp32`` on a CPU without bf16) with ``time_budget`` = the budget
    plain   the baseline loop (valid 81.91 / test 78.68 in 60 minutes here, BENCHMARKS.md): tied 2x650
            LSTM, dropout 0.5, bptt 35, batch 20, bf16 autocast, SGD lr 20 on the mean loss, clip
            0.25, lr / 4 when validation does not improve, evaluated every epoch, best kept

On a CPU without AVX-512 both paths run in fp32: the preset's precision is ``auto`` (bf16 only
where the hardware computes in it), and the plain loop leaves autocast off where oneDNN has no
bf16 kernels (its LSTM refuses bf16 there).

Both count evaluation in their wall time and stop at the budget (the plain loop checks after
every update and leaves time for its last evaluation, as unroll does). Each path runs in its own
process, so its peak memory (max RSS) is its own.

    python benchmarks/ptb_60min.py                    # 60 minutes each (2 hours)
    python benchmarks/ptb_60min.py --minutes 15       # the first 15 minutes, side by side
    python benchmarks/ptb_60min.py --minutes 0.3 --paths plain   # a smoke run
    python benchmarks/ptb_60min.py --paths ours --out runs/60min  # keep our run directory
    python benchmarks/ptb_60min.py --paths ours --set average_from=0.6 --set hidden_dropout=0.25
                                                                  # the preset with other settings
    python benchmarks/ptb_60min.py --preset ptb-cpu-60min-fp32   # the recipe for CPUs without bf16

Prints a table (with each path's best validation perplexity reached by 15 minutes, for the
side-by-side comparison with a shorter run of the other path) and one JSON line with every
validation point; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace

PATHS = ("ours", "plain")
PRESET = "ptb-cpu-60min"  # the default; --preset picks another (ptb-cpu-60min-fp32 on a CPU without bf16)


def run_ours(seconds: float, out: str, settings: dict, preset_name: str = PRESET) -> dict:
    import torch

    from unroll.config import TrainConfig
    from unroll.presets import PRESETS
    from unroll.models.device import resolve_precision
    from unroll.train import train

    preset = PRESETS[preset_name]
    train_fields = {f.name for f in fields(TrainConfig)}
    cfg = replace(preset.train, time_budget=seconds, **{k: v for k, v in settings.items() if k in train_fields})
    model = {**preset.model, **{k: v for k, v in settings.items() if k not in train_fields}}
    result = train(cfg, model, out)
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    curve = [[r["elapsed"], r["valid_ppl"]] for r in records if r.get("valid_ppl") is not None]
    return {"valid_ppl": result.best_valid["ppl"], "test_ppl": result.test["ppl"] if result.test else None,
            "epochs": result.epoch, "steps": result.steps, "wall_s": result.elapsed, "stopped": result.stopped,
            "curve": curve, "precision": resolve_precision(cfg.precision, torch.device("cpu")), "settings": settings}


def run_plain(seconds: float) -> dict:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from unroll.data import batchify, load_corpus
    from unroll.models.device import bf16_kernels

    bf16 = bf16_kernels(torch.device("cpu"))
    torch.set_flush_denormal(True)
    torch.manual_seed(1111)
    start = time.perf_counter()
    corpus = load_corpus("ptb")
    V, H, bptt, batch, eval_batch = len(corpus.vocab), 650, 35, 20, 10

    class Plain(nn.Module):  # pytorch/examples word_language_model, LSTM, tied
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)
            self.encoder = nn.Embedding(V, H)
            self.rnn = nn.LSTM(H, H, 2, dropout=0.5)
            self.decoder = nn.Linear(H, V)
            self.decoder.weight = self.encoder.weight
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, x, state=None):
            out, state = self.rnn(self.drop(self.encoder(x)), state)
            return self.decoder(self.drop(out)), state

    def batches(split, b):
        return torch.from_numpy(batchify(np.asarray(corpus.splits[split]), b))

    @torch.no_grad()
    def evaluate(model, data):
        model.eval()
        total, state = 0.0, None
        for i in range(0, data.size(0) - 1, bptt):
            x, y = data[i : i + bptt], data[i + 1 : i + 1 + bptt]
            x = x[: y.size(0)]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, state = model(x, state)
            total += F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1), reduction="sum").item()
        model.train()
        return total / (data.size(0) - 1) / data.size(1)

    train, valid, test = batches("train", batch), batches("valid", eval_batch), batches("test", eval_batch)
    model, lr, best, best_state = Plain(), 20.0, math.inf, None
    eval_seconds, epochs, steps, stop, curve = 0.0, 0, 0, False, []
    while not stop:
        state = None
        for i in range(0, train.size(0) - 1, bptt):
            if time.perf_counter() - start + eval_seconds >= seconds:
                stop = True
                break
            x, y = train[i : i + bptt], train[i + 1 : i + 1 + bptt]
            x = x[: y.size(0)]
            state = None if state is None else tuple(s.detach() for s in state)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, state = model(x, state)
            loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))
            model.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            steps += 1
        else:
            epochs += 1
        t0 = time.perf_counter()
        val = evaluate(model, valid)
        eval_seconds = time.perf_counter() - t0
        curve.append([time.perf_counter() - start, math.exp(val)])
        if val < best:
            best, best_state = val, copy.deepcopy(model.state_dict())
        else:
            lr /= 4.0
    wall = time.perf_counter() - start
    model.load_state_dict(best_state)
    return {"valid_ppl": math.exp(best), "test_ppl": math.exp(evaluate(model, test)), "epochs": epochs,
            "steps": steps, "wall_s": wall, "stopped": "time_budget", "curve": curve,
            "precision": "bf16" if bf16 else "fp32"}


def child(path: str, seconds: float, out: str | None, settings: dict, preset: str) -> None:
    if path == "ours" and out:
        res = run_ours(seconds, out, settings, preset)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            res = run_ours(seconds, tmp, settings, preset) if path == "ours" else run_plain(seconds)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-time budget per path")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated: ours, plain")
    ap.add_argument("--preset", default=PRESET, help=f"our path's preset (default {PRESET})")
    ap.add_argument("--out", help="keep our run's directory here (checkpoint, metrics.jsonl, curve.png)")
    ap.add_argument("--compare-at", type=float, default=15.0, metavar="MIN",
                    help="also report each path's best validation perplexity by this many minutes")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="ours: change one preset setting (a ModelConfig or TrainConfig field; VALUE as JSON, "
                    "else a string); repeatable")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    settings = dict(_setting(text, ap) for text in args.set)
    if args.child:
        child(args.child, args.minutes * 60, args.out, settings, args.preset)
        return
    rows = {}
    for path in [p for p in args.paths.split(",") if p]:
        if path not in PATHS:
            ap.error(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child", path, "--minutes", str(args.minutes), "--preset", args.preset]
        cmd += [f"--set={text}" for text in args.set]
        proc = subprocess.run(cmd + (["--out", args.out] if args.out else []), stdout=subprocess.PIPE, text=True,
                              check=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
        rows[path] = {**json.loads(line[len("RESULT "):]), "load_before": load, "load_after": os.getloadavg()[0]}
        r = rows[path]
        print(f"  {path}: valid {r['valid_ppl']:.2f} test {r['test_ppl']:.2f} in {r['wall_s']:.0f}s", flush=True)
    at = args.compare_at * 60
    print(f"\n{'path':6s} {'valid ppl':>9s} {'test ppl':>9s} {'epochs':>6s} {'steps':>7s} {'wall s':>7s} "
          f"{'peak MB':>8s} {'load':>9s} {f'valid by {args.compare_at:g} min':>17s}")
    for path, r in rows.items():
        # an evaluation ending within 2% after it counts: a run's last one ends just past its budget
        early = [ppl for t, ppl in r["curve"] if t <= at * 1.02]
        r["best_valid_by_compare_at"] = min(early) if early else None
        by = f"{min(early):.2f}" if early else "-"
        print(f"{path:6s} {r['valid_ppl']:9.2f} {r['test_ppl']:9.2f} {r['epochs']:6d} {r['steps']:7d} "
              f"{r['wall_s']:7.0f} {r['peak_rss_mb']:8.0f} {r['load_before']:4.1f}/{r['load_after']:.1f} {by:>17s}")
    print(json.dumps({"benchmark": "ptb_60min", "preset": args.preset, "settings": settings, "minutes": args.minutes,
                      "paths": rows}))


def _setting(text: str, ap: argparse.ArgumentParser) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value), the value read as JSON where it is JSON (0.6, true, null)."""
    field, sep, value = text.partition("=")
    if not sep or not field:
        ap.error(f"--set {text!r}: write FIELD=VALUE")
    try:
        return field, json.loads(value)
    except json.JSONDecodeError:
        return field, value


if __name__ == "__main__":
    main()
