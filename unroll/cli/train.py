"""``unroll train``: train a language model from a preset or on any corpus, or resume a run.

Every field of ``ModelConfig`` and ``TrainConfig`` is a flag (``--hidden-size 650``, ``--lr 10``,
``--tie-weights``); flags override the preset and ``--config FILE``. ``--show-config`` prints
the result, as JSON that ``--config`` reads back, and exits.
"""

from __future__ import annotations

import argparse
from typing import Any

from unroll.cli.common import TrainingCommand, add_field_flags, add_run_flags, pick_preset
from unroll.config import ModelConfig, TrainConfig
from unroll.errors import UnrollError
from unroll.presets import PRESETS, default_preset
from unroll.text import levels

MODEL_PREFIX, TRAIN_PREFIX = "model__", "train__"
# TrainConfig fields with their own flag description below (they are the command's main options).
_MAIN = {"data", "level", "time_budget"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a language model (presets: " + ", ".join(PRESETS) + ")",
        description="Train a recurrent language model. Start from --preset NAME, --config FILE or --data NAME|PATH "
        "(with defaults for its --level); any setting below overrides. Ctrl-C saves a resumable checkpoint.",
        epilog="examples:\n  unroll train --preset ptb-small --out runs/small\n"
        "  unroll train --data notes.txt --level char --hidden-size 512 --time-budget 10m --out runs/notes\n"
        "  unroll train --preset ptb-small --show-config > small.json; unroll train --config small.json --out runs/s\n"
        "  unroll train --resume runs/small",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", dest=TRAIN_PREFIX + "data", metavar="NAME|PATH", default=argparse.SUPPRESS,
                   help="registered dataset (ptb, tinyshakespeare, wikitext2) or a text file / folder")
    p.add_argument("--level", dest=TRAIN_PREFIX + "level", choices=levels.names(),
                   default=argparse.SUPPRESS, help="tokenization (default: the dataset's own; word for files)")
    add_run_flags(
        p, PRESETS, TRAIN_PREFIX + "time_budget",
        out_help="run directory: checkpoint, best/, metrics.jsonl, curve.png",
        resume_help="continue the run in DIR exactly where it stopped",
        budget_help="stop after this much wall time (e.g. 90s, 60m, 1h30m), evaluate and keep the best "
        "checkpoint; counts all resumes of the run; none: no budget",
        quiet_help="no progress bar or per-evaluation lines",
    )
    add_field_flags(p.add_argument_group("model settings (override the preset)"), ModelConfig, MODEL_PREFIX, {"vocab_size"})
    add_field_flags(p.add_argument_group("training settings (override the preset)"), TrainConfig, TRAIN_PREFIX, _MAIN)
    p.set_defaults(func=run)


def _resolve(args: argparse.Namespace, model_over: dict[str, Any], train_over: dict[str, Any]) -> tuple[dict[str, Any], TrainConfig]:
    return resolve_settings(args.preset, model_over, train_over)


def _start(args: argparse.Namespace, model: dict[str, Any], cfg: TrainConfig, out: str, **run: Any) -> Any:
    from unroll.train import train

    if run["echo"] is not None and run["dist"].is_main:
        note = fp32_note(args.preset, cfg.precision, args.device)
        if note:
            run["echo"](note)
    return train(cfg, model, out, device=args.device, **run)


def _resume(args: argparse.Namespace, train_over: dict[str, Any], **run: Any) -> Any:
    from unroll.train import resume

    return resume(args.resume, train_over, device=args.device, **run)


def _report(result: Any) -> None:
    for what, res in (("best valid", result.best_valid), ("test (best checkpoint)", result.test)):
        if res:
            bpc = f" | bpc {res['bpc']:.4f} | word ppl {res['word_ppl']:.2f}" if "bpc" in res else ""
            print(f"{what}: loss {res['loss']:.4f} | ppl {res['ppl']:.2f}{bpc}")


def resolve_settings(preset: str | None, model_over: dict[str, Any], train_over: dict[str, Any]) -> tuple[dict[str, Any], TrainConfig]:
    """Preset (or the defaults for --data's level) + overrides -> model settings and TrainConfig."""
    if preset is not None:
        base = pick_preset(preset, PRESETS)
    elif "data" in train_over:
        base = default_preset(train_over.get("level"))
    else:
        raise UnrollError("give --preset NAME, --config FILE or --data NAME|PATH (see unroll train --help)")
    cfg = TrainConfig.from_dict({**base.train.to_dict(), **train_over})
    # validate before reading data; a huge placeholder vocabulary defers only the checks that need the real one
    full = ModelConfig.from_dict({**base.model, **model_over, "vocab_size": 2**31}).to_dict()
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


run = TrainingCommand(
    command="unroll train", presets=PRESETS, model_prefix=MODEL_PREFIX, train_prefix=TRAIN_PREFIX,
    shaping_flags="--preset, --config and model settings", resolve=_resolve, start=_start, resume=_resume,
    report=_report,
)
