"""Character, subword and word models of the same text, compared by bits per character.

Each level trains a tied 2-layer LSTM whose width is chosen so that every level has the same
number of parameters (``--params``; the embedding grows with the vocabulary, so the character
model is the widest), for the same wall time (``--minutes``), with the same recipe (Adam, cosine
to the budget, dropout 0.3, batch 20, bptt 35 tokens). Then the best checkpoint is evaluated on
valid and test with ``unroll eval --json`` (bits per character over the same character count at
every level: docs/levels.md), and the training throughput is read from its metrics log.

    python benchmarks/levels.py --data ptb --minutes 4
    python benchmarks/levels.py --data wikitext2 --minutes 4 --levels char,bpe:1000,bpe:8000,word
    python benchmarks/levels.py --data ptb --minutes 0.2 --out /tmp/lv   # a smoke run

It prints a markdown table, the CPU model (lscpu), the date and each command. Run it alone on
the machine: the levels share the wall time budget, not the CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import subprocess
import sys
from pathlib import Path

from machine import cpu_model

LEVELS = "char,bpe:1000,bpe:8000,unigram:8000,word"


def width_for(params: int, vocab: int, layers: int = 2) -> int:
    """Hidden (= embedding) width H of a tied LSTM with about ``params`` parameters:
    V*H + V (embedding/decoder, bias) + layers * (8H^2 + 8H)."""
    a, b, c = 8 * layers, vocab + 8 * layers, vocab - params
    return max(8, int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))


def unroll(*argv: str) -> str:
    cmd = [sys.executable, "-m", "unroll", *argv]
    print("$ unroll " + " ".join(argv), flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def vocab_of(data: str, level: str, size: str | None) -> int:
    sized = ["--vocab-size", size] if size else []
    stats = json.loads(unroll("data", "stats", data, "--level", level, *sized, "--json"))
    return int(stats["vocab_size"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="ptb", help="a registered corpus with train/valid/test (ptb, wikitext2)")
    p.add_argument("--levels", default=LEVELS, help=f"comma-separated level[:vocab size] (default {LEVELS})")
    p.add_argument("--minutes", type=float, default=4.0, help="training wall time per level")
    p.add_argument("--params", type=int, default=4_000_000, help="parameters per model (default 4M)")
    p.add_argument("--out", default="runs/levels", help="run directories go under here")
    args = p.parse_args()

    word_level = "whitespace" if args.data in ("ptb", "wikitext2") else "word"
    rows = []
    for entry in args.levels.split(","):
        level, _, size = entry.partition(":")
        level = word_level if level == "word" else level
        vocab = vocab_of(args.data, level, size or None)
        width = width_for(args.params, vocab)
        out = Path(args.out) / f"{args.data}-{entry.replace(':', '')}"
        sized = ["--vocab-size", size] if size else []
        unroll("train", "--data", args.data, "--level", level, *sized, "--cell", "lstm", "--num-layers", "2",
               "--hidden-size", str(width), "--emb-size", str(width), "--tie-weights", "--dropout", "0.3",
               "--optimizer", "adam", "--lr", "0.003", "--schedule", "cosine", "--min-lr", "0.0001",
               "--batch-size", "20", "--bptt", "35", "--epochs", "1000", "--no-final-test", "--quiet",
               "--time-budget", f"{args.minutes * 60:.0f}s", "--overwrite", "--out", str(out))
        valid = json.loads(unroll("eval", str(out), "--split", "valid", "--json"))
        test = json.loads(unroll("eval", str(out), "--split", "test", "--batch-size", "10", "--json"))
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
        last = records[-1]
        stats = json.loads(unroll("data", "stats", args.data, "--level", level, *sized, "--json"))
        chars_per_token = valid["chars"] / valid["tokens"]
        rows.append({"level": entry, "vocab": vocab, "width": width, "tokens_seen": last["tokens"],
                     "tok_s": last["tokens"] / last["elapsed"], "chars_per_token": chars_per_token,
                     "valid_bpc": valid["bpc"], "test_bpc": test["bpc"], "test_ppl": test["ppl"],
                     "test_word_ppl": test["word_ppl"], "train_tokens": stats["splits"]["train"]["tokens"]})

    print(f"\n{args.data}; {cpu_model()}; {datetime.date.today().isoformat()}; {args.minutes:g} min a level; "
          f"tied 2-layer LSTM of about {args.params / 1e6:g}M parameters\n")
    print("| level | vocab | width | valid bpc | test bpc | test word ppl | test ppl (per token) | tok/s | chars/s | epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['level']} | {r['vocab']:,} | {r['width']} | {r['valid_bpc']:.4f} | {r['test_bpc']:.4f} | "
              f"{r['test_word_ppl']:.1f} | {r['test_ppl']:.2f} | {r['tok_s']:,.0f} | "
              f"{r['tok_s'] * r['chars_per_token']:,.0f} | {r['tokens_seen'] / r['train_tokens']:.2f} |")
    print("\ntok/s: training tokens over the run's wall time, evaluations included; chars/s: the same times "
          "the validation split's characters per token. Valid and test: 10 columns, the state carried.")


if __name__ == "__main__":
    main()
