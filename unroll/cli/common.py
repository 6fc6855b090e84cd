"""What the subcommands share: the run flags, settings flags built from the settings' own field
metadata, durations, ``--config`` files, and "a run directory means its ``best/``".

Subcommands import from here, never from each other.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from unroll import rundir
from unroll.errors import UnrollError
from unroll.settings import field_aliases, field_help

DEVICE_HELP = "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"


def add_device_flag(p: argparse.ArgumentParser, help: str = DEVICE_HELP) -> None:
    p.add_argument("--device", default="auto", help=help)


def add_last_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--last", action="store_true", help="a run directory: use its last weights, not best/")


def add_run_flags(p: argparse.ArgumentParser, presets: Iterable[str], budget_dest: str, *, out_help: str,
                  resume_help: str, budget_help: str, quiet_help: str) -> None:
    """The flags of a training command: presets and settings files, run directory, budget, device."""
    p.add_argument("--preset", metavar="NAME", help="start from a named recipe: " + ", ".join(presets))
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--config", metavar="FILE", help="start from the settings in FILE (JSON, as --show-config "
                   "prints them); flags given with it override")
    p.add_argument("--show-config", action="store_true", help="print the resolved settings as JSON and exit")
    p.add_argument("--out", metavar="DIR", help=out_help)
    p.add_argument("--overwrite", action="store_true", help="--out may hold files: replace those a run writes "
                   "(checkpoint, trainer state, metrics, curve, best/) and leave the others")
    p.add_argument("--allow-data-change", action="store_true", help="with --resume: continue even though the "
                   "training or validation data differ from what the run was trained on")
    p.add_argument("--resume-if-exists", action="store_true", help="if --out holds a run, continue it: the same "
                   "command line starts a run and resumes it (torchrun --max-restarts, requeued jobs)")
    p.add_argument("--resume", metavar="DIR", help=resume_help)
    p.add_argument("--time-budget", dest=budget_dest, type=parse_duration, metavar="TIME",
                   default=argparse.SUPPRESS, help=budget_help)
    add_device_flag(p)
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def add_field_flags(group: argparse._ArgumentGroup, cls: type, prefix: str, skip: set[str]) -> None:
    """One flag per dataclass field, typed from its annotation, its help from the field's metadata.

    A field's older names (its aliases) are flags too, hidden and named in the field's help.
    """
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        aliases = [_flag(a) for a in field_aliases(f)]
        also = f" (also {', '.join(aliases)})" if aliases else ""
        _add_field_flag(group, _flag(f.name), prefix + f.name, hints[f.name], field_help(f) + also)
        for alias in aliases:
            _add_field_flag(group, alias, prefix + f.name, hints[f.name], argparse.SUPPRESS)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field_flag(group: argparse._ArgumentGroup, flag: str, dest: str, tp: Any, help: str) -> None:
    kw: dict[str, Any] = dict(dest=dest, default=argparse.SUPPRESS, help=help)
    args = typing.get_args(tp)
    if tp is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
    elif typing.get_origin(tp) is tuple and args[-1] is Ellipsis:  # any length: "2000,10000"
        group.add_argument(flag, type=_comma_list(args[0]), metavar="N,N,...", **kw)
    elif typing.get_origin(tp) is tuple:
        group.add_argument(flag, type=args[0], nargs=len(args), metavar="X", **kw)
    elif type(None) in args:  # X | None: "none" gives None
        inner = next(a for a in args if a is not type(None))
        group.add_argument(flag, type=_optional(inner), metavar=inner.__name__.upper() + "|none", **kw)
    else:
        group.add_argument(flag, type=tp, metavar=tp.__name__.upper(), **kw)


def _comma_list(inner: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            return tuple(inner(v) for v in text.split(",") if v.strip())
        except ValueError:
            kind = "integers" if inner is int else "numbers"
            raise argparse.ArgumentTypeError(f"expected {kind} separated by commas, got {text!r}") from None

    parse.__name__ = f"list of {inner.__name__}"
    return parse


def _optional(inner: type) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else inner(text)

    parse.__name__ = inner.__name__
    return parse


def field_overrides(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The config fields given as flags (those :func:`add_field_flags` added under ``prefix``)."""
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


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


def settings_overrides(args: argparse.Namespace, model_prefix: str, train_prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, training) settings: those of ``--config FILE``, then the flags given on top."""
    model, train = read_settings_file(args.config) if args.config else ({}, {})
    return {**model, **field_overrides(args, model_prefix)}, {**train, **field_overrides(args, train_prefix)}


def read_settings_file(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``{"model": {...}, "train": {...}}`` as ``--show-config`` prints it -> (model, train)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UnrollError(f"--config {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UnrollError(f"--config {path}: not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(d, dict) or set(d) - {"model", "train"} or not all(isinstance(v, dict) for v in d.values()):
        raise UnrollError(f"--config {path}: expected {{\"model\": {{...}}, \"train\": {{...}}}}, as --show-config prints")
    return dict(d.get("model", {})), dict(d.get("train", {}))


def show_settings(model: Mapping[str, Any], train: Mapping[str, Any]) -> None:
    """What ``--show-config`` prints and ``--config FILE`` reads back."""
    print(json.dumps({"model": dict(model), "train": dict(train)}, indent=2))


def list_presets(presets: Mapping[str, Any]) -> None:
    width = max(len(name) for name in presets) + 1
    for name, preset in presets.items():
        print(f"{name:<{width}} {preset.description}")


def pick_preset(name: str, presets: Mapping[str, Any]) -> Any:
    if name not in presets:
        raise UnrollError(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
    return presets[name]


@dataclass
class TrainingCommand:
    """What ``unroll train`` and ``unroll classify train`` do alike: presets, ``--config`` and
    flags, ``--show-config``, a new run or ``--resume``, one ``Distributed`` for the command, and
    the exit code; each supplies only its settings and library calls."""

    command: str  # as the user types it, for "continue with: ..."
    presets: Mapping[str, Any]
    model_prefix: str
    train_prefix: str
    shaping_flags: str  # what --resume refuses, named for its error line
    resolve: Callable[[argparse.Namespace, dict[str, Any], dict[str, Any]], tuple[dict[str, Any], Any]]
    start: Callable[..., Any]  # (args, model, cfg, out, dist=, progress=, echo=) -> result: a new run
    resume: Callable[..., Any]  # (args, train_over, dist=, progress=, echo=) -> result
    report: Callable[[Any], None]  # the task's results, printed by rank 0 between "stopped" and "checkpoint"

    def __call__(self, args: argparse.Namespace) -> int:
        from unroll.train.distributed import current, session

        with session(args.device):  # under torchrun: join the other processes for the run
            if args.list_presets:
                list_presets(self.presets)
                return 0
            dist = current(args.device)
            model_over, train_over = settings_overrides(args, self.model_prefix, self.train_prefix)
            run = dict(dist=dist, progress=not args.quiet, echo=progress_echo(args.quiet))
            if args.resume:
                if model_over or getattr(args, "init_from", None) or args.preset or args.config:
                    raise UnrollError(f"--resume continues a run as it was configured; drop {self.shaping_flags}")
                if args.out and args.out != args.resume:
                    raise UnrollError("--resume DIR writes into DIR; drop --out")
                result = self.resume(args, train_over, allow_data_change=args.allow_data_change, **run)
            else:
                model, cfg = self.resolve(args, model_over, train_over)
                if args.show_config:
                    show_settings(model, cfg.to_dict())
                    return 0
                if not args.out:
                    raise UnrollError("--out DIR is required: where to write the checkpoint, metrics and plot")
                result = self.start(args, model, cfg, args.out, overwrite=args.overwrite,
                                    resume_if_exists=args.resume_if_exists, **run)
            if not dist.is_main:  # rank 0 reports for all
                return 128 + (result.signal or signal.SIGINT) if result.stopped == "interrupted" else 0
            if result.stopped == "interrupted":
                return report_interrupted(result, self.command)
            print(f"stopped: {result.stopped} after {result.steps} updates, {result.epoch} epochs, "
                  f"{result.elapsed:.0f}s")
            self.report(result)
            print(f"checkpoint: {result.best_dir} (best), {result.checkpoint or result.out} (last, resumable); curve: {result.curve}")
            return 0


def progress_echo(quiet: bool) -> Callable[[str], None] | None:
    """Lines printed above the progress bar (none with ``--quiet``)."""
    if quiet:
        return None
    from tqdm import tqdm

    return lambda line: tqdm.write(line, file=sys.stdout)


def report_interrupted(result: Any, command: str) -> int:
    """An interrupted run says how to continue it. Its exit code is the shell's for a process
    stopped by that signal, 128 + its number: 130 for Ctrl-C, 143 for SIGTERM, 138 for SIGUSR1."""
    name = signal.Signals(result.signal or signal.SIGINT).name
    print(f"unroll: stopped by {name}; checkpoint saved, continue with: {command} --resume {result.out}",
          file=sys.stderr)
    return 128 + (result.signal or signal.SIGINT)


def run_directory(directory: str | Path, last: bool = False) -> Path:
    """A checkpoint, or a training run whose ``best/`` checkpoint is meant (with ``last``: its
    latest checkpoint)."""
    best = rundir.best(directory)
    if not last and (best / "model.safetensors").is_file():
        return best
    return rundir.resolve(directory)
