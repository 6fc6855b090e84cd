"""``unroll average``: one checkpoint from the mean of a run's last N checkpoints (icefall's --avg)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "average",
        help="average the weights of a run's last N checkpoints into a new checkpoint",
        description="Average the weights of RUN's last N resumable checkpoints (those kept by --keep-last), or of "
        "the checkpoint directories given with --checkpoints, into the checkpoint directory --out, for unroll "
        "eval, export, score and generate. Checkpoints of different model settings or vocabularies are refused.",
    )
    p.add_argument("run", metavar="RUN", nargs="?", help="training run directory")
    p.add_argument("--last", type=int, metavar="N", help="average RUN's newest N checkpoints")
    p.add_argument("--checkpoints", nargs="+", metavar="DIR", help="average these checkpoint directories instead")
    p.add_argument("--out", metavar="DIR", required=True, help="the new checkpoint directory (must not hold files)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unroll.errors import UnrollError
    from unroll.export.average import last_checkpoints, write_average

    if args.checkpoints:
        if args.run or args.last is not None:
            raise UnrollError("give either RUN --last N or --checkpoints DIR ..., not both")
        directories = [Path(d) for d in args.checkpoints]
    else:
        if not args.run or args.last is None:
            raise UnrollError("give RUN --last N (or --checkpoints DIR ...)")
        directories = last_checkpoints(args.run, args.last)
    out = write_average(directories, args.out)
    print(f"averaged {len(directories)} checkpoints ({', '.join(d.name for d in directories)}) into {out}")
    return 0
