"""Time of one training step of a preset, and of its variants, measured side by side in one run.

Runs the trainer's own update (``LanguageModelRun.step``: forward, loss, backward, clip, optimizer)
on real PTB windows, ``--warmup`` steps first, then ``--steps`` timed ones, for each variant in
turn; the rounds alternate between the variants (``--rounds``) so that drift of a shared machine
spreads over all of them. Also times the dropout-mask draw against torch's ``uniform_`` for the
preset's weight-dropout shape.

    python benchmarks/step_time.py                                   # ptb-cpu-60min as it is
    python benchmarks/step_time.py --variant qrnn_window=2 --variant weight_dropout=0
    python benchmarks/step_time.py --preset ptb-cpu-60min-fp32 --variant batch_size=20,emb_size=400

A variant is one or more FIELD=VALUE settings (model or training fields) joined by commas; each
steps over its own batches, so variants of batch_size or bptt compare by tokens/s.
Prints a table and one JSON line. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import fields, replace

import torch

from unroll.config import ModelConfig, TrainConfig
from unroll.data import iter_bptt, load_corpus
from unroll.models.dropout import keep_mask
from unroll.presets import PRESETS
from unroll.train import LanguageModelRun
from unroll.train.distributed import current


def parse_variant(text: str) -> dict:
    """``"a=1,b=true,c=qrnn"`` -> ``{"a": 1, "b": True, "c": "qrnn"}`` (JSON values, else strings)."""
    settings = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value
    return settings


def make_trainer(preset_name: str, settings: dict, corpus, out: str) -> LanguageModelRun:
    preset = PRESETS[preset_name]
    train_fields = {f.name for f in fields(TrainConfig)}
    cfg = replace(preset.train, time_budget=None, **{k: v for k, v in settings.items() if k in train_fields})
    model = {**preset.model, **{k: v for k, v in settings.items() if k not in train_fields}}
    torch.manual_seed(0)
    return LanguageModelRun(cfg, ModelConfig(vocab_size=len(corpus.vocab), **model), corpus, out, current())


def time_masks(shape: tuple[int, ...], p: float, repeats: int = 20) -> dict:
    like = torch.empty(0)

    def seconds(fn) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    return {
        "shape": list(shape),
        "torch_uniform_ms": 1e3 * seconds(lambda: like.new_empty(shape).uniform_().ge_(p).div_(1 - p)),
        "keep_mask_ms": 1e3 * seconds(lambda: keep_mask(shape, p, like)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="ptb-cpu-60min")
    ap.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE[,FIELD=VALUE]",
                    help="a variant of the preset (repeatable); the preset itself is always measured")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=8)
    args = ap.parse_args()

    variants = {"preset": {}, **{v: parse_variant(v) for v in args.variant}}
    corpus = load_corpus(PRESETS[args.preset].train.data)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        trainers = {name: make_trainer(args.preset, s, corpus, os.path.join(out, str(i)))
                    for i, (name, s) in enumerate(variants.items())}
        # Each variant steps over its own batches: a batch_size or bptt variant changes their shape.
        windows = {name: [w[1:] for _, w in zip(range(args.warmup + args.steps), iter_bptt(t.train_data, t.cfg.bptt))]
                   for name, t in trainers.items()}
        tokens = {name: windows[name][0][0].size for name in trainers}
        times = {name: [] for name in trainers}
        for name, t in trainers.items():
            for x, y in windows[name][: args.warmup]:
                t.step(x, y)
        for _ in range(args.rounds):
            for name, t in trainers.items():
                start = time.perf_counter()
                for x, y in windows[name][args.warmup :]:
                    t.step(x, y)
                times[name].append((time.perf_counter() - start) / args.steps)
    model = PRESETS[args.preset].model
    weight_shape = (3 * model["hidden_size"], model["emb_size"]) if model.get("cell") == "qrnn" else (
        4 * model["hidden_size"], model["hidden_size"])
    masks = time_masks(weight_shape, model.get("weight_dropout") or 0.1)
    print(f"{args.preset}: CPU {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads; load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{'variant':40s} {'tokens':>7s} {'ms/step':>9s} {'tokens/s':>9s} {'x preset':>9s}   "
          f"(fastest of {args.rounds} rounds; x preset in tokens/s)")
    base = tokens["preset"] / min(times["preset"])
    result = {}
    for name, ts in times.items():
        best = min(ts)
        speed = tokens[name] / best
        result[name] = {"tokens_per_step": tokens[name], "ms_per_step": 1e3 * best, "all_ms": [1e3 * t for t in ts],
                        "tokens_per_s": speed}
        print(f"{name:40s} {tokens[name]:7d} {1e3 * best:9.1f} {speed:9.0f} {speed / base:9.2f}x")
    print(f"dropout mask {tuple(masks['shape'])}: torch uniform_ {masks['torch_uniform_ms']:.2f} ms, "
          f"keep_mask {masks['keep_mask_ms']:.2f} ms")
    print(json.dumps({"preset": args.preset, "machine": platform.processor() or platform.machine(),
                      "python": sys.version.split()[0], "torch": torch.__version__, "steps": result, "masks": masks}))


if __name__ == "__main__":
    main()
