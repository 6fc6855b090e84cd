"""Is an adaptive softmax worth building into unroll? Full against adaptive output layers on PTB.

On a CPU without bf16 a training step of the PTB presets is matrix products at near the machine's
peak, and the output layer (hidden -> 10,000 words) is about half of them. An adaptive softmax
(Grave et al. 2017) computes the frequent words (the head) at full width and the rare ones (the
tail, reached through one extra "cluster" word of the head) at a quarter of it, and only for the
positions whose target is rare. This script measures what that buys before the engines get it:
a plain 2x650 LSTM (PyTorch's word_language_model, dropout 0.5, SGD lr 20, clip 0.25) trained
for the same number of updates with each output layer, side by side in one run:

- ``full``: a Linear to every word; ``full-tied``: its weight is the embedding.
- ``adaptive``: ``torch.nn.AdaptiveLogSoftmaxWithLoss`` (head ``--cutoff`` words, tail at H/4).
- ``adaptive-tied``: adaptive input and output tied (Baevski & Auli 2019): head words have
  H-wide embeddings, tail words H/4-wide ones through a projection [H, H/4]; the output layer
  reuses both the embeddings and the projection.

Prints each variant's median step time and its validation perplexity after ``--steps`` updates
(equal updates: what the output layer costs in perplexity) or after ``--seconds`` of training
steps (equal time: what the faster steps buy), and one JSON line. Run it alone on the machine.

    python benchmarks/output_layer.py                       # the four variants, 500 updates each
    python benchmarks/output_layer.py --seconds 300         # 5 minutes of steps each
    python benchmarks/output_layer.py --variants full,adaptive --cutoff 4000
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unroll.data import batchify, load_corpus

VARIANTS = ("full", "full-tied", "adaptive", "adaptive-tied")


class AdaptiveTied(nn.Module):
    """Adaptive input embeddings and an adaptive softmax that share their weights (two clusters)."""

    def __init__(self, vocab: int, width: int, cutoff: int):
        super().__init__()
        self.cutoff, self.width, narrow = cutoff, width, width // 4
        self.head = nn.Parameter(torch.empty(cutoff, width).uniform_(-0.1, 0.1))
        self.tail = nn.Parameter(torch.empty(vocab - cutoff, narrow).uniform_(-0.1, 0.1))
        # twice the embeddings' range: a projected tail embedding starts at about a head one's scale
        self.projection = nn.Parameter(torch.empty(width, narrow).uniform_(-0.2, 0.2))
        self.cluster = nn.Parameter(torch.zeros(1, width))  # the head's extra word: "some tail word"
        self.head_bias = nn.Parameter(torch.zeros(cutoff + 1))
        self.tail_bias = nn.Parameter(torch.zeros(vocab - cutoff))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        out = torch.empty(*ids.shape, self.width)
        frequent, rare = ids < self.cutoff, ids >= self.cutoff
        out[frequent] = F.embedding(ids[frequent], self.head)
        out[rare] = F.embedding(ids[rare] - self.cutoff, self.tail) @ self.projection.T
        return out

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of ``targets`` [N] given ``hidden`` [N, width]."""
        head = F.log_softmax(F.linear(hidden, torch.cat([self.head, self.cluster]), self.head_bias), -1)
        frequent = targets < self.cutoff
        total = -head[frequent].gather(1, targets[frequent, None]).sum()
        rare = ~frequent
        if rare.any():
            tail = F.log_softmax(F.linear(hidden[rare] @ self.projection, self.tail, self.tail_bias), -1)
            total = total - (head[rare, self.cutoff] + tail.gather(1, (targets[rare] - self.cutoff)[:, None])[:, 0]).sum()
        return total


class WordLSTM(nn.Module):
    """PyTorch's word_language_model (2 layers, dropout 0.5) with a choice of output layer."""

    def __init__(self, variant: str, vocab: int, width: int, cutoff: int):
        super().__init__()
        self.variant, self.width = variant, width
        self.drop = nn.Dropout(0.5)
        self.rnn = nn.LSTM(width, width, 2, dropout=0.5)
        if variant == "adaptive-tied":
            self.io = AdaptiveTied(vocab, width, cutoff)
            return
        self.embedding = nn.Embedding(vocab, width)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if variant == "adaptive":
            self.output = nn.AdaptiveLogSoftmaxWithLoss(width, vocab, cutoffs=[cutoff], div_value=4.0)
        else:
            self.output = nn.Linear(width, vocab)
            nn.init.zeros_(self.output.bias)
            if variant == "full-tied":
                self.output.weight = self.embedding.weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
        """Mean negative log-likelihood of the window's targets, and the carried state."""
        embedded = self.io.embed(x) if self.variant == "adaptive-tied" else self.embedding(x)
        out, state = self.rnn(self.drop(embedded), state)
        hidden, targets = self.drop(out).reshape(-1, self.width), y.reshape(-1)
        if self.variant == "adaptive-tied":
            loss = self.io.nll(hidden, targets) / targets.numel()
        elif self.variant == "adaptive":
            loss = self.output(hidden, targets).loss
        else:
            loss = F.cross_entropy(self.output(hidden), targets)
        return loss, state


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def windows(data: torch.Tensor, bptt: int):
    for i in range(0, data.size(0) - 1, bptt):
        y = data[i + 1 : i + 1 + bptt]
        yield data[i : i + y.size(0)], y


@torch.no_grad()
def perplexity(model: WordLSTM, data: torch.Tensor, bptt: int) -> float:
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in windows(data, bptt):
        loss, state = model(x, y, state)
        total, count = total + loss.item() * y.numel(), count + y.numel()
    model.train()
    return math.exp(total / count)


def run(variant: str, corpus, args: argparse.Namespace) -> dict:
    torch.manual_seed(1111)
    train = torch.from_numpy(batchify(np.asarray(corpus.splits["train"]), 20))
    valid = torch.from_numpy(batchify(np.asarray(corpus.splits["valid"]), 10))
    model = WordLSTM(variant, len(corpus.vocab), args.hidden, args.cutoff)
    seconds, state, batches = [], None, windows(train, args.bptt)
    while len(seconds) < args.steps if args.seconds is None else sum(seconds) < args.seconds:
        try:
            x, y = next(batches)
        except StopIteration:
            state, batches = None, windows(train, args.bptt)
            x, y = next(batches)
        start = time.perf_counter()
        state = None if state is None else tuple(s.detach() for s in state)
        loss, state = model(x, y, state)
        model.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-20.0)
        seconds.append(time.perf_counter() - start)
    return {"variant": variant, "steps": len(seconds), "ms_per_step": 1000 * float(np.median(seconds[10:])),
            "valid_ppl": perplexity(model, valid, args.bptt),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--steps", type=int, default=500, help="updates per variant (an epoch is 1,327)")
    ap.add_argument("--seconds", type=float, help="train each variant this long (step time only) instead")
    ap.add_argument("--cutoff", type=int, default=2000, help="head size: the most frequent words (ids are ranked)")
    ap.add_argument("--hidden", type=int, default=650)
    ap.add_argument("--bptt", type=int, default=35)
    args = ap.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"unknown variants: {', '.join(sorted(unknown))}")
    torch.set_flush_denormal(True)
    corpus = load_corpus("ptb")
    train = np.asarray(corpus.splits["train"])
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"the {args.cutoff} most frequent words cover {np.mean(train < args.cutoff):.1%} of training tokens")
    results = []
    for variant in variants:
        results.append(run(variant, corpus, args))
        r = results[-1]
        print(f"{variant:<14} {r['ms_per_step']:6.0f} ms/step  valid ppl {r['valid_ppl']:7.2f} after {r['steps']} "
              f"updates  {r['parameters'] / 1e6:.2f}M parameters", flush=True)
    print(json.dumps({"steps": args.steps, "seconds": args.seconds, "cutoff": args.cutoff, "hidden": args.hidden, "results": results}))


if __name__ == "__main__":
    main()
