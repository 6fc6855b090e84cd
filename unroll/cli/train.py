"""``unroll train``: train a language model from a preset or on any corpus, or resume a run.

Every field of ``ModelConfig`` and ``TrainConfig`` is a flag (``--hidden-size 650``, ``--lr 10``,
``--tie-weights``); flags override the preset. ``--show-config`` prints the result and exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import typing
from typing import Any

from unroll.config import PRESETS, ModelConfig, TrainConfig
from unroll.errors import UnrollError

MODEL_PREFIX, TRAIN_PREFIX = "model__", "train__"
# TrainConfig fields with their own flag description below (they are the command's main options).
_MAIN = {"data", "level", "time_budget"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a language model (presets: " + ", ".join(PRESETS) + ")",
        description="Train a recurrent language model. Start from --preset NAME or from --data NAME|PATH "
        "(with defaults for its --level); any setting below overrides. Ctrl-C saves a resumable checkpoint.",
        epilog="examples:\n  unroll train --preset ptb-small --out runs/small\n"
        "  unroll train --data notes.txt --level char --hidden-size 512 --time-budget 10m --out runs/notes\n"
        "  unroll train --resume runs/small",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", metavar="NAME", help="start from a named recipe (see --list-presets)")
    p.add_argument("--data", dest=TRAIN_PREFIX + "data", metavar="NAME|PATH", default=argparse.SUPPRESS,
                   help="registered dataset (ptb, tinyshakespeare, wikitext2) or a text file / folder")
    p.add_argument("--level", dest=TRAIN_PREFIX + "level", choices=["char", "word", "whitespace"],
                   default=argparse.SUPPRESS, help="tokenization (default: the dataset's own; word for files)")
    p.add_argument("--out", metavar="DIR", help="run directory: checkpoint, best/, metrics.jsonl, curve.png")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
    p.add_argument("--time-budget", dest=TRAIN_PREFIX + "time_budget", type=parse_duration, metavar="TIME",
                   default=argparse.SUPPRESS, help="stop after this much wall time (e.g. 90s, 60m, 1h30m), "
                   "evaluate and keep the best checkpoint; counts all resumes of the run; none: no budget")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--show-config", action="store_true", help="print the resolved settings as JSON and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-evaluation lines")
    add_field_flags(p.add_argument_group("model settings (override the preset)"), ModelConfig, MODEL_PREFIX, {"vocab_size"})
    add_field_flags(p.add_argument_group("training settings (override the preset)"), TrainConfig, TRAIN_PREFIX, _MAIN)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unroll.train.distributed import session

    with session(args.device):  # under torchrun: join the other processes for the run
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unroll.train import resume, train
    from unroll.train.distributed import current

    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name:<18} {preset.description}")
        return 0
    model_over = field_overrides(args, MODEL_PREFIX)
    train_over = field_overrides(args, TRAIN_PREFIX)
    echo = None if args.quiet else (lambda line: tqdm.write(line, file=sys.stdout))
    if args.resume:
        if args.preset or model_over:
            raise UnrollError("--resume continues a run as it was configured; drop --preset and model settings")
        if args.out and args.out != args.resume:
            raise UnrollError("--resume DIR writes into DIR; drop --out")
        out = args.resume
        result = resume(out, train_over, device=args.device, progress=not args.quiet, echo=echo)
    else:
        model, cfg = resolve_settings(args.preset, model_over, train_over)
        if args.show_config:
            print(json.dumps({"model": model, "train": cfg.to_dict()}, indent=2))
            return 0
        if not args.out:
            raise UnrollError("--out DIR is required: where to write the checkpoint, metrics and plot")
        out = args.out
        if echo is not None and current(args.device).is_main:
            note = fp32_note(args.preset, cfg.precision, args.device)
            if note:
                echo(note)
        result = train(cfg, model, out, device=args.device, progress=not args.quiet, echo=echo)
    if not current(args.device).is_main:  # rank 0 reports for all
        return 130 if result.stopped == "interrupted" else 0
    if result.stopped == "interrupted":
        print(f"unroll: interrupted; checkpoint saved, continue with: unroll train --resume {out}", file=sys.stderr)
        return 130
    print(f"stopped: {result.stopped} after {result.steps} updates, {result.epoch} epochs, {result.elapsed:.0f}s")
    for what, res in (("best valid", result.best_valid), ("test (best checkpoint)", result.test)):
        if res:
            bpc = f" | bpc {res['bpc']:.4f}" if result.level == "char" else ""
            print(f"{what}: loss {res['loss']:.4f} | ppl {res['ppl']:.2f}{bpc}")
    print(f"checkpoint: {result.best_dir} (best), {result.out} (last, resumable); curve: {result.curve}")
    return 0


def resolve_settings(preset: str | None, model_over: dict[str, Any], train_over: dict[str, Any]) -> tuple[dict[str, Any], TrainConfig]:
    """Preset (or the defaults for --data's level) + overrides -> model settings and TrainConfig."""
    from unroll.config import default_preset

    if preset is not None:
        if preset not in PRESETS:
            raise UnrollError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = PRESETS[preset]
    elif "data" in train_over:
        base = default_preset(train_over.get("level"))
    else:
        raise UnrollError("give --preset NAME or --data NAME|PATH (see unroll train --help)")
    cfg = TrainConfig.from_dict({**base.train.to_dict(), **train_over})
    full = ModelConfig(vocab_size=1, **{**base.model, **model_over}).to_dict()  # validate before reading data
    del full["vocab_size"]  # comes from the corpus
    return full, cfg


def fp32_note(preset: str | None, precision: str, device: str | None) -> str | None:
    """A pointer to the preset's ``without_bf16`` recipe when the run will compute in fp32 here: a
    recipe sized for bf16 speed makes far fewer updates in its time budget without it."""
    from unroll.models.device import resolve_device, resolve_precision

    other = PRESETS[preset].without_bf16 if preset in PRESETS else None
    if other is None or precision == "bf16" or resolve_precision("auto", resolve_device(device)) != "fp32":
        return None  # no other recipe, bf16 asked for, or bf16 is native here (fp32 then is a choice)
    return (f"note: {preset} is tuned for bf16, which this device does not compute natively, so it trains "
            f"in fp32 here; --preset {other} is the recipe for such a device")


def parse_duration(text: str) -> float | None:
    """Seconds in ``90``, ``90s``, ``60m``, ``1.5h``, ``1h30m``; ``none``: no budget (a preset's is lifted)."""
    if text.strip().lower() == "none":
        return None
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 90s, 60m or 1h30m")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mins * 60 + s
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the time budget must be positive")
    return seconds


def field_overrides(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The config fields given as flags (those :func:`add_field_flags` added under ``prefix``)."""
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


def add_field_flags(group: argparse._ArgumentGroup, cls: type, prefix: str, skip: set[str]) -> None:
    """One flag per dataclass field, typed from its annotation, help from its source comment."""
    hints = typing.get_type_hints(cls)
    docs = _field_comments(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag, dest, tp = "--" + f.name.replace("_", "-"), prefix + f.name, hints[f.name]
        help_text = docs.get(f.name, "") or None
        kw: dict[str, Any] = dict(dest=dest, default=argparse.SUPPRESS, help=help_text)
        args = typing.get_args(tp)
        if tp is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif typing.get_origin(tp) is tuple:
            group.add_argument(flag, type=args[0], nargs=len(args), metavar="X", **kw)
        elif type(None) in args:  # X | None: "none" gives None
            inner = next(a for a in args if a is not type(None))
            group.add_argument(flag, type=_optional(inner), metavar=inner.__name__.upper() + "|none", **kw)
        else:
            group.add_argument(flag, type=tp, metavar=tp.__name__.upper(), **kw)


def _optional(inner: type) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else inner(text)

    parse.__name__ = inner.__name__
    return parse


def _field_comments(cls: type) -> dict[str, str]:
    """``name: type = default  # comment`` lines of a dataclass's source -> {name: comment}."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s{4}(\w+):[^#\n]*#\s*(.+)$", source, flags=re.M))
