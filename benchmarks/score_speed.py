"""Scoring throughput: sentences per second over the PTB test set (3,761 sentences, 82,430 tokens).

The model has ptb-small's size (2x200 LSTM, 10,000 words; random weights: the speed is the
same). Every test sentence is scored with its <eos>, ``--batch-size`` sentences per forward pass
(sorted by length, as ``unroll score`` does). Needs PTB in the mirror (``UNROLL_DATA_DIR``) or
the download cache. The best of ``--repeats`` runs is printed as JSON.

    python benchmarks/score_speed.py                              # the timed run (the lead's)
    python benchmarks/score_speed.py --limit 200 --repeats 1      # smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from unroll.config import ModelConfig
from unroll.data import load_corpus
from unroll.models import LanguageModel
from unroll.presets import PRESETS
from unroll.use.engine import LoadedModel
from unroll.use.score import score


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--limit", type=int, help="score only the first N test sentences")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus("ptb")
    lines = [corpus.text.decode(ids, corpus.vocab).rstrip("\n") for ids in corpus.sentences("test")][: args.limit]
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=len(corpus.vocab), **PRESETS["ptb-small"].model)).to(args.device)
    if args.engine == "numpy":
        from unroll import reference

        model = reference.LanguageModel(model.cfg, model.checkpoint_params(), dtype="float32")
    lm = LoadedModel(model, corpus.vocab, corpus.text)
    score(lm, lines[:args.batch_size], args.batch_size)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        scores = score(lm, lines, args.batch_size)
        times.append(time.perf_counter() - start)
    best, tokens = min(times), sum(s.count for s in scores)
    print(json.dumps({"sentences": len(lines), "tokens": tokens, "batch_size": args.batch_size,
                      "engine": args.engine, "device": args.device, "threads": torch.get_num_threads(),
                      "seconds": round(best, 3), "sentences_per_s": round(len(lines) / best, 1),
                      "tokens_per_s": round(tokens / best, 1)}), flush=True)


if __name__ == "__main__":
    main()
