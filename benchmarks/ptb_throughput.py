"""Training throughput at Zaremba et al.'s small PTB configuration, plain PyTorch against unroll.

One run measures, side by side on this machine (2x200, bptt 20, batch 20, V = 10k, SGD lr 20
on the mean loss, clip 0.25, state carried and detached):

    plain fp32 / plain bf16   the loop a user would write: nn.Embedding + nn.LSTM + nn.Linear +
                              cross_entropy + manual SGD (written out below)
    unroll lstm fp32          unroll.train's LanguageModelRun on the ptb-small preset
    unroll lstm bf16          ... with --precision bf16
    unroll qrnn fp32 / bf16   ... with the qrnn cell (matrix products out of the time loop)

On a CPU without bf16 kernels (no AVX-512: bf16 GEMMs crawl and oneDNN's LSTM refuses them) the
bf16 paths are left out of the default set.

and this machine's matmul peak (fp32 and bf16, measured in the same run), each path's share of
it (matmul FLOPs per training token = 3 x forward), and the validation perplexity each path
reaches after one epoch (or after ``--steps`` updates, for a quick run).

    python benchmarks/ptb_throughput.py                 # one epoch per path (~10 minutes)
    python benchmarks/ptb_throughput.py --steps 50      # a smoke run

Each path runs in a fresh process, one after another, so no path inherits another's heap or
thread state. Prints a table and one JSON line. Run it alone on the machine: other processes
change the figures (the load average before and after is printed with them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unroll.config import ModelConfig
from unroll.data import batchify, iter_bptt, load_corpus
from unroll.models.device import bf16_kernels
from unroll.presets import PRESETS
from unroll.train import LanguageModelRun
from unroll.train.distributed import current

PATHS = ("plain-fp32", "plain-bf16", "unroll-lstm-fp32", "unroll-lstm-bf16", "unroll-qrnn-fp32", "unroll-qrnn-bf16")
E = H = 200
LAYERS, BPTT, BATCH, LR, CLIP, EVAL_BATCH = 2, 20, 20, 20.0, 0.25, 20


# ---- the plain loop ---------------------------------------------------------------------------

class PlainLM(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, E)
        self.rnn = nn.LSTM(E, H, LAYERS)
        self.dec = nn.Linear(H, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, x, state=None):
        out, state = self.rnn(self.emb(x), state)
        return self.dec(out), state


def plain_train(train: np.ndarray, valid: np.ndarray, vocab: int, bf16: bool, steps: int | None) -> dict:
    torch.manual_seed(1234)
    model = PlainLM(vocab)
    data = torch.from_numpy(batchify(train, BATCH))
    state, tokens, t0 = None, 0, time.perf_counter()
    for i, start in enumerate(range(0, data.size(0) - 1, BPTT)):
        if steps is not None and i >= steps:
            break
        x, y = data[start : start + BPTT], data[start + 1 : start + 1 + BPTT]
        x = x[: y.size(0)]
        if state is not None:
            state = tuple(s.detach() for s in state)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x, state)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
        model.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-LR)
        loss.item()  # as a plain loop logs it
        tokens += y.numel()
    seconds = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": seconds, "valid_ppl": plain_eval(model, valid, vocab, bf16)}


@torch.no_grad()
def plain_eval(model: PlainLM, ids: np.ndarray, vocab: int, bf16: bool) -> float:
    data = torch.from_numpy(batchify(ids, EVAL_BATCH))
    total, count, state = 0.0, 0, None
    for _, x, y in iter_bptt(data.numpy(), BPTT):
        x, y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    return math.exp(total / count)


# ---- unroll's trainer ---------------------------------------------------------------------------

def unroll_train(corpus, cell: str, precision: str, steps: int | None) -> dict:
    preset = PRESETS["ptb-small"]
    cfg = replace(preset.train, epochs=1, max_steps=steps, precision=precision, eval_batch_size=EVAL_BATCH)
    model = ModelConfig(vocab_size=len(corpus.vocab), **{**preset.model, "cell": cell})
    no_test = replace(corpus, splits={k: v for k, v in corpus.splits.items() if k != "test"})
    with tempfile.TemporaryDirectory() as out:
        trainer = LanguageModelRun(cfg, model, no_test, out, current())
        trainer.run()
        record = [r for r in _records(out) if r.get("valid_ppl") is not None][-1]
    seconds = record["elapsed"] - trainer.eval_seconds  # the run's one validation is not training
    return {"tokens": trainer.tokens, "seconds": seconds, "valid_ppl": record["valid_ppl"]}


def _records(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- peak and FLOPs -----------------------------------------------------------------------------

def matmul_peak(dtype: torch.dtype, sizes=(1024, 2048), repeats: int = 5) -> float:
    """Best GFLOP/s of ``a @ b`` over a few square sizes (the best of several tries each)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def flops_per_token(cell: str, vocab: int) -> float:
    """Matrix-product FLOPs of one training token: forward x 3 (backward: two products per one)."""
    forward = 2 * H * vocab  # decoder
    for k in range(LAYERS):
        n_in = E if k == 0 else H
        forward += 2 * 4 * H * (n_in + H) if cell == "lstm" else 2 * 3 * H * n_in  # qrnn: no W_hh
    return 3 * forward


def run_path(path: str, steps: int | None) -> dict:
    """Train one path for an epoch (or ``steps`` updates) in this process; its figures."""
    corpus = load_corpus("ptb")
    kind, *rest = path.split("-")
    precision = rest[-1]
    if kind == "plain":
        return plain_train(corpus.splits["train"], corpus.splits["valid"], len(corpus.vocab), precision == "bf16", steps)
    return unroll_train(corpus, rest[0], precision, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="updates per path (default: one epoch)")
    ap.add_argument("--paths", help=f"comma-separated subset of {','.join(PATHS)} (default: all; fp32 only "
                    "where bf16 does not run)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.child:
        print("RESULT " + json.dumps(run_path(args.child, args.steps)), flush=True)
        return
    bf16_runs = bf16_kernels(torch.device("cpu"))
    if args.paths:
        paths = [p for p in args.paths.split(",") if p]
    else:
        paths = [p for p in PATHS if bf16_runs or not p.endswith("bf16")]
        if not bf16_runs:
            print("no bf16 kernels on this CPU (oneDNN needs AVX-512): bf16 paths left out", flush=True)
    unknown = set(paths) - set(PATHS)
    if unknown:
        ap.error(f"unknown paths: {', '.join(sorted(unknown))}")

    load_before = os.getloadavg()[0]
    corpus = load_corpus("ptb")
    vocab = len(corpus.vocab)
    peak = {"fp32": matmul_peak(torch.float32),
            "bf16": matmul_peak(torch.bfloat16) if any(p.endswith("bf16") for p in paths) else math.nan}
    rows = {}
    for path in paths:
        kind, *rest = path.split("-")
        precision = rest[-1]
        cell = "lstm" if kind == "plain" else rest[0]
        cmd = [sys.executable, __file__, "--child", path]
        cmd += [f"--steps={args.steps}"] if args.steps else []
        cmd += [f"--threads={args.threads}"] if args.threads else []
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
        res = json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][len("RESULT "):])
        rate = res["tokens"] / res["seconds"]
        flops = flops_per_token(cell, vocab)
        rows[path] = {**res, "tokens_per_s": rate, "mflop_per_token": flops / 1e6,
                      "gflops": rate * flops / 1e9, "peak_share": rate * flops / 1e9 / peak[precision]}
        print(f"  {path}: {rate:,.0f} tokens/s, valid ppl {res['valid_ppl']:.2f}", flush=True)
    base = rows.get("plain-fp32", {}).get("tokens_per_s")
    print(f"\nCPU: {torch.backends.cpu.get_cpu_capability()}; "
          f"matmul peak: fp32 {peak['fp32']:,.0f} GFLOP/s, bf16 {peak['bf16']:,.0f} GFLOP/s; "
          f"threads {torch.get_num_threads()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'path':18s} {'tokens/s':>9s} {'x plain fp32':>12s} {'MFLOP/tok':>9s} {'GFLOP/s':>8s} "
          f"{'% of peak':>9s} {'valid ppl':>9s} {'seconds':>8s}")
    for path, r in rows.items():
        ratio = f"{r['tokens_per_s'] / base:.2f}x" if base else "-"
        print(f"{path:18s} {r['tokens_per_s']:9,.0f} {ratio:>12s} {r['mflop_per_token']:9.1f} {r['gflops']:8.0f} "
              f"{100 * r['peak_share']:8.1f}% {r['valid_ppl']:9.2f} {r['seconds']:8.1f}")
    print(json.dumps({"benchmark": "ptb_throughput", "steps": args.steps, "peak_gflops": peak,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "threads": torch.get_num_threads(), "load_before": load_before,
                      "load_after": os.getloadavg()[0], "paths": rows}))


if __name__ == "__main__":
    main()
