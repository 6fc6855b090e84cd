"""``unroll demo``: train a small character LSTM for about two minutes, offline, then show what it learned.

The text is Tiny Shakespeare when the local mirror or the download cache has it, otherwise the
Python standard library's own source code, which every Python installation carries.
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

from unroll.cli.common import add_device_flag, progress_echo, report_interrupted

STDLIB_CHARS = 1_000_000  # about the size of Tiny Shakespeare


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train a small character LSTM for ~2 minutes and show samples",
        description="Train a small character-level LSTM offline (Tiny Shakespeare if present, else the Python "
        "standard library's source), then print samples, validation bits per character and where the files are.",
    )
    p.add_argument("--seconds", type=float, default=120.0, help="training time, evaluation included (default 120)")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/demo, or runs/demo-N if taken)")
    p.add_argument("--data", metavar="NAME|PATH", help="train on this dataset or text file instead")
    p.add_argument("--samples", type=int, default=3, help="how many samples to print (default 3)")
    p.add_argument("--length", type=int, default=300, help="characters per sample (default 300)")
    add_device_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from unroll.errors import UnrollError
    from unroll.models import load_model
    from unroll.presets import PRESETS
    from unroll.text import Vocab
    from unroll.train import train
    from unroll.use.engine import LoadedModel
    from unroll.use.generate import generate

    if args.seconds <= 0 or args.samples < 0 or args.length < 1:
        raise UnrollError("--seconds and --length must be positive and --samples not negative")
    out = Path(args.out) if args.out else _free_dir(Path("runs") / "demo")
    source, what, prime = _choose_text(args.data)
    preset = PRESETS["char-cpu"]
    cfg = replace(preset.train, data=source, level="char", time_budget=args.seconds, epochs=1000)
    print(f"unroll demo: training a {preset.model['hidden_size']}-unit character LSTM for {args.seconds:g}s "
          f"on {what}; writing to {out}")
    result = train(cfg, preset.model, out, device=args.device, progress=True, echo=progress_echo(quiet=False))
    if result.stopped == "interrupted":
        return report_interrupted(result, "unroll train")
    model, ckpt = load_model(result.best_dir)
    spec, vocab = ckpt.text, Vocab.from_dict(ckpt.vocab)
    if not all(ch in vocab for ch in prime):
        prime = ""
    texts = generate(LoadedModel(model, vocab, spec), prime, num_samples=args.samples, max_tokens=args.length,
                     temperature=0.8, seed=0) if args.samples else []
    for i, text in enumerate(texts):
        print(f"\n--- sample {i + 1} (temperature 0.8) ---\n{text}")
    print()
    if result.best_valid:
        print(f"validation: {result.best_valid['bpc']:.3f} bits per character "
              f"({result.best_valid['loss']:.3f} nats) after {result.steps} updates in {result.elapsed:.0f}s")
    print(f"checkpoint: {result.best_dir}")
    print(f"learning curve: {result.curve}")
    print(f"next: unroll eval {out}   |   unroll train --resume {out} --time-budget 10m")
    return 0


def _choose_text(data: str | None) -> tuple[str, str, str]:
    """(source for load_corpus, a description, a prime for the samples). The standard library's
    text goes into the download cache: the run directory holds only what the run writes."""
    from unroll.data import get_dataset, locate
    from unroll.data.download import cache_dir

    if data:
        return data, data, ""
    if locate(get_dataset("tinyshakespeare")) is not None:
        return "tinyshakespeare", "Tiny Shakespeare", "ROMEO:"
    path = cache_dir() / "demo" / "stdlib.txt"
    if not path.is_file():
        from unroll.io import atomic_write_text

        atomic_write_text(path, stdlib_text(STDLIB_CHARS))
    return str(path), "the Python standard library's source (Tiny Shakespeare is not downloaded)", "def "


def stdlib_text(max_chars: int) -> str:
    """The first ``max_chars`` characters of the standard library's top-level modules, in name order."""
    parts, size = [], 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            break
    return "".join(parts)[:max_chars]


def _free_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3`` ... if a run is already there."""
    candidate, n = base, 1
    while (candidate / "trainer_state.json").exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
