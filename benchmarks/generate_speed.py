"""Generation latency per token at batch 1 (one prime, one sample), the interactive case.

Two models with random weights (speed does not depend on what they learned):
- word: 2x650 LSTM, 10,000-word vocabulary (Zaremba's medium size; PTB's vocabulary). Target: <= 2 ms/token.
- char: 2x512 LSTM, 65 characters (the shakespeare-char preset).

Each run samples ``--tokens`` tokens at temperature 1 (softmax and the draw included, no stop at
<eos>) after a short prime; the time per token excludes the prime's forward pass. The best of
``--repeats`` runs is reported, per model, as JSON lines.

    python benchmarks/generate_speed.py                            # the timed run (the lead's)
    python benchmarks/generate_speed.py --tokens 5 --repeats 1     # smoke run
"""

from __future__ import annotations

import argparse
import json
import string
import time

import torch

from unroll.config import ModelConfig
from unroll.models import LanguageModel
from unroll.text import TextSpec, Vocab
from unroll.use.engine import LoadedModel
from unroll.use.generate import stream

MODELS = {
    "word": dict(cfg=dict(vocab_size=10_000, emb_size=650, hidden_size=650, num_layers=2), prime="the company said"),
    "char": dict(cfg=dict(vocab_size=65, emb_size=128, hidden_size=512, num_layers=2), prime="ROMEO:"),
}


def build(name: str, device: str, engine: str) -> LoadedModel:
    spec = MODELS[name]
    cfg = ModelConfig(cell="lstm", **spec["cfg"])
    if name == "word":
        vocab = Vocab(["<unk>", "<eos>", *spec["prime"].split(), *(f"w{i}" for i in range(cfg.vocab_size - 5))])
        text = TextSpec(level="whitespace", unit="line", eos=True)
    else:
        chars = list(dict.fromkeys("\n" + string.ascii_letters + " .,;:!?'-&$3"))[: cfg.vocab_size]
        vocab, text = Vocab(chars), TextSpec.for_level("char")
    assert len(vocab) == cfg.vocab_size
    torch.manual_seed(0)
    model = LanguageModel(cfg).to(device)
    if engine == "numpy":
        from unroll import reference

        model = reference.LanguageModel(cfg, model.checkpoint_params(), dtype="float32")
    return LoadedModel(model, vocab, text)


def ms_per_token(lm: LoadedModel, prime: str, tokens: int) -> float:
    pieces = stream(lm, prime, max_tokens=tokens, stop_at_eos=False, seed=0)
    next(pieces)  # the prime itself; the clock starts once its forward pass is done
    first = next(pieces)
    start = time.perf_counter()
    n = 0 if first.done else 1
    for piece in pieces:
        n += not piece.done
    return (time.perf_counter() - start) / max(n - 1, 1) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.models:
        lm = build(name, args.device, args.engine)
        ms_per_token(lm, MODELS[name]["prime"], min(args.tokens, 20))  # warm-up
        best = min(ms_per_token(lm, MODELS[name]["prime"], args.tokens) for _ in range(args.repeats))
        print(json.dumps({"model": name, **MODELS[name]["cfg"], "engine": args.engine, "device": args.device,
                          "threads": torch.get_num_threads(), "tokens": args.tokens, "ms_per_token": round(best, 4),
                          "tokens_per_s": round(1000 / best, 1)}), flush=True)


if __name__ == "__main__":
    main()
