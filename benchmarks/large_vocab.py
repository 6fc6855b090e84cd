"""A 50,000-word vocabulary: the full softmax against unroll's adaptive softmax, at equal wall time.

The corpus is ``imdb-lm`` (IMDB's train and unlabeled reviews, word level, the 50,000 most frequent
types kept, the rest ``<unk>``). Both models are unroll's own ``LanguageModel`` at the same size
(2x256 LSTM, 256-wide embedding, untied, dropout 0.1), trained the same way (Adam lr 2e-3, clip
0.25, batch 20, bptt 35, fp32) for ``--seconds`` of training steps each, one after the other,
each in its own process (so each peak memory is its own); then scored on the first
``--valid-tokens`` tokens of the valid split. The adaptive softmax has cutoffs 2,000 and 10,000
and div_value 4 (the head: the 2,000 most frequent words and two cluster entries; tails at 64
and 16 units). Prints one JSON line per variant and a summary line. Run it alone on the machine.

    UNROLL_DATA_DIR=MIRROR python benchmarks/large_vocab.py                  # 15 minutes each
    UNROLL_DATA_DIR=MIRROR python benchmarks/large_vocab.py --seconds 60     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from unroll.config import ModelConfig
from unroll.data import batchify, load_corpus
from unroll.models import LanguageModel

VARIANTS = {
    "full": {},
    "adaptive": {"adaptive_softmax": True, "cutoffs": (2000, 10000), "div_value": 4.0},
}


def windows(data: torch.Tensor, bptt: int):
    for i in range(0, data.size(0) - 1, bptt):
        y = data[i + 1 : i + 1 + bptt]
        yield data[i : i + y.size(0)], y


@torch.no_grad()
def perplexity(model: LanguageModel, data: torch.Tensor, bptt: int) -> float:
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in windows(data, bptt):
        loss, state = model(x, state, targets=y)
        total, count = total + loss.item() * y.numel(), count + y.numel()
    model.train()
    return math.exp(total / count)


def run(variant: str, args: argparse.Namespace) -> dict:
    corpus = load_corpus("imdb-lm", max_size=args.vocab)
    torch.manual_seed(1111)
    train = torch.from_numpy(batchify(np.asarray(corpus.splits["train"], dtype=np.int64), 20))
    valid = torch.from_numpy(batchify(np.asarray(corpus.splits["valid"][: args.valid_tokens], dtype=np.int64), 10))
    cfg = ModelConfig(vocab_size=len(corpus.vocab), cell="lstm", emb_size=256, hidden_size=256, num_layers=2,
                      dropout=0.1, **VARIANTS[variant])
    model = LanguageModel(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    seconds, state, batches = [], None, windows(train, args.bptt)
    while sum(seconds) < args.seconds:
        x, y = next(batches)
        start = time.perf_counter()
        state = model.detach_state(state)
        loss, state = model(x, state, targets=y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    tokens = len(seconds) * 20 * args.bptt
    return {"variant": variant, "vocab": len(corpus.vocab), "steps": len(seconds), "train_tokens": tokens,
            "tokens_per_s": round(tokens / sum(seconds)), "ms_per_step": round(1000 * float(np.median(seconds[5:])), 1),
            "valid_ppl": round(perplexity(model, valid, args.bptt), 2), "valid_tokens": int(valid.numel()),
            "parameters": sum(p.numel() for p in model.parameters()),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=900, help="training-step time per variant")
    ap.add_argument("--vocab", type=int, default=50_000, help="the most frequent word types kept")
    ap.add_argument("--valid-tokens", type=int, default=200_000, help="validation tokens scored")
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)  # one variant, in a child process
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run(args.variant, args)), flush=True)
        return
    load_corpus("imdb-lm", max_size=args.vocab)  # tokenize into the token cache first, outside the timing
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    results = []
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", variant, *sys.argv[1:]], check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    full, adaptive = results
    print(json.dumps({"cpu": cpu, "threads": torch.get_num_threads(), "seconds": args.seconds,
                      "speedup_tokens_per_s": round(adaptive["tokens_per_s"] / full["tokens_per_s"], 2),
                      "valid_ppl": {r["variant"]: r["valid_ppl"] for r in results}}))


if __name__ == "__main__":
    main()
