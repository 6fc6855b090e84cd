"""``unroll eval``: perplexity, bits per character and byte, and word perplexity of a checkpoint
on a split or a text file."""

from __future__ import annotations

import argparse
import json
from unroll.cli.common import add_device_flag, add_last_flag, run_directory
from unroll.config import PRECISIONS
from unroll.settings import check_value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="perplexity, bits per character, word perplexity of a checkpoint",
        description="Perplexity over a whole split with the hidden state carried, as papers report it, "
        "and the figures that compare across levels: bits per character and byte, word perplexity "
        "(docs/metrics.md). "
        "DIR is a checkpoint or a training run (its best/ checkpoint is used).",
    )
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("--data", metavar="NAME|PATH", help="dataset or folder (its --split is read) or a text file "
                   "(all of it is read); default: the data the model was trained on")
    p.add_argument("--split", choices=["train", "valid", "test"], default="valid", help="default: valid")
    p.add_argument("--batch-size", type=int, metavar="N", help="columns read in parallel; 1 = one stream as the "
                   "TensorFlow tutorial's test (default: the run's eval / test batch size)")
    p.add_argument("--bptt", type=int, default=35, metavar="T", help="window length (speed only; default 35)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 (default), bf16, or auto (bf16 where native)")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the input (default: utf-8; e.g. latin-1)")
    add_last_flag(p)
    add_device_flag(p)
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch",
                   help="torch (default) or numpy: the NumPy reference engine in float64 (no bf16)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unroll.use.evaluate import evaluate_checkpoint

    if args.batch_size is not None:
        check_value("--batch-size", args.batch_size, at_least=1)
    check_value("--bptt", args.bptt, at_least=1)
    res = evaluate_checkpoint(run_directory(args.dir, args.last), data=args.data, split=args.split,
                              batch_size=args.batch_size, bptt=args.bptt, precision=args.precision,
                              device=args.device, encoding=args.encoding, engine=args.engine)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['split']}: loss {res['loss']:.4f} | ppl {res['ppl']:.2f} | bpc {res['bpc']:.4f} "
              f"| bpb {res['bpb']:.4f} | word ppl {res['word_ppl']:.2f} | {res['tokens']} tokens, {res['chars']} chars "
              f"| batch {res['batch_size']} | {res['checkpoint']}")
    return 0
