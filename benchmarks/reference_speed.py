"""Speed of the reference engine against the word-RNN tutorial's per-sentence NumPy loop.

The tutorial (WildML, "Recurrent Neural Networks Tutorial, Part 2") trains a vanilla RNN one
sentence per SGD step: ``forward_propagation`` over the sentence, ``bptt`` truncated to 4 steps,
one-hot inputs by indexing a column of U. That loop is written out below, unchanged in substance,
and timed against ``unroll.reference`` on the same model size (V=8000, H=100, 45-token sentences,
truncation 4) with a batch of 32 sentences per SGD step. The tutorial runs in float64 (NumPy's
default); the engine is timed in float64 (like for like) and in float32.

    python benchmarks/reference_speed.py                       # the timed run (the lead's)
    python benchmarks/reference_speed.py --tutorial-steps 2 --engine-steps 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from unroll.config import ModelConfig
from unroll.reference import SGD, LanguageModel


# ---- the tutorial's implementation (per sentence, float64) --------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


class RNNNumpy:
    """s_t = tanh(U x_t + W s_{t-1}), o_t = softmax(V s_t); U [H, V], V [V, H], W [H, H]."""

    def __init__(self, word_dim: int, hidden_dim: int = 100, bptt_truncate: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.word_dim, self.hidden_dim, self.bptt_truncate = word_dim, hidden_dim, bptt_truncate
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))

    def forward_propagation(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim))  # s[-1] is the initial state, zeros
        o = np.zeros((T, self.word_dim))
        for t in np.arange(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))  # U x_t by indexing: x_t is one-hot
            o[t] = softmax(self.V.dot(s[t]))
        return o, s

    def calculate_total_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        o, _ = self.forward_propagation(x)
        return float(-np.sum(np.log(o[np.arange(len(y)), y])))

    def bptt(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of the summed cross-entropy; the loss at t goes back bptt_truncate steps."""
        T = len(y)
        o, s = self.forward_propagation(x)
        dLdU, dLdV, dLdW = np.zeros(self.U.shape), np.zeros(self.V.shape), np.zeros(self.W.shape)
        delta_o = o
        delta_o[np.arange(len(y)), y] -= 1.0
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], s[t].T)
            delta_t = self.V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
            for bptt_step in np.arange(max(0, t - self.bptt_truncate), t + 1)[::-1]:
                dLdW += np.outer(delta_t, s[bptt_step - 1])
                dLdU[:, x[bptt_step]] += delta_t
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return dLdU, dLdV, dLdW

    def sgd_step(self, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        dLdU, dLdV, dLdW = self.bptt(x, y)
        self.U -= learning_rate * dLdU
        self.V -= learning_rate * dLdV
        self.W -= learning_rate * dLdW


# ---- timing ---------------------------------------------------------------------------------------


def time_tutorial(vocab: int, hidden: int, length: int, truncate: int, steps: int, rng: np.random.Generator) -> float:
    """Tokens per second of the tutorial's per-sentence SGD steps."""
    model = RNNNumpy(vocab, hidden, truncate)
    sentences = rng.integers(0, vocab, (steps + 1, length + 1))
    model.sgd_step(sentences[0, :-1], sentences[0, 1:], 0.005)  # warm-up
    start = time.perf_counter()
    for s in sentences[1:]:
        model.sgd_step(s[:-1], s[1:], 0.005)
    return steps * length / (time.perf_counter() - start)


def time_engine(
    vocab: int, hidden: int, length: int, truncate: int, batch: int, steps: int, dtype: str, rng: np.random.Generator
) -> float:
    """Tokens per second of unroll.reference SGD steps on batches of ``batch`` sentences."""
    cfg = ModelConfig(vocab_size=vocab, cell="rnn_tanh", emb_size=hidden, hidden_size=hidden, num_layers=1, init="fan_in")
    model = LanguageModel(cfg, dtype=dtype)
    optimizer = SGD(model.params, lr=0.005)
    data = rng.integers(0, vocab, (steps + 1, length + 1, batch))
    for i, d in enumerate(data):
        if i == 1:  # the first step is a warm-up
            start = time.perf_counter()
        _, grads, _ = model.loss_and_grads(d[:-1], d[1:], truncate=truncate)
        optimizer.step(grads)
    return steps * length * batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--length", type=int, default=45, help="tokens per sentence")
    p.add_argument("--truncate", type=int, default=4)
    p.add_argument("--batch", type=int, default=32, help="sentences per step for the engine")
    p.add_argument("--tutorial-steps", type=int, default=30)
    p.add_argument("--engine-steps", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    tutorial = time_tutorial(args.vocab, args.hidden, args.length, args.truncate, args.tutorial_steps, rng)
    engine = {
        dtype: time_engine(args.vocab, args.hidden, args.length, args.truncate, args.batch, args.engine_steps,
                           dtype, rng)
        for dtype in ("float64", "float32")
    }
    if args.json:
        print(json.dumps({"tutorial_tokens_per_s": tutorial, "engine_tokens_per_s": engine,
                          "ratio": {k: v / tutorial for k, v in engine.items()}, **vars(args)}))
        return
    print(f"tutorial per-sentence loop (float64): {tutorial:8.0f} tokens/s ({1000 * args.length / tutorial:.1f} ms per step)")
    for dtype, speed in engine.items():
        print(f"unroll.reference, batch {args.batch} ({dtype}): {speed:8.0f} tokens/s, {speed / tutorial:.1f}x")


if __name__ == "__main__":
    main()
