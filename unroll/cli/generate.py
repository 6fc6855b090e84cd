"""``unroll generate``: sample text from a checkpoint, streamed to stdout as it is produced."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a checkpoint",
        description="Sample continuations of prime texts (tokenized like the training text). All primes and "
        "samples run as one batch; text streams to stdout as it is produced, sample after sample. "
        "DIR is a checkpoint or a training run (its best/ checkpoint is used).",
    )
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("--prime", metavar="TEXT", nargs="+", action="extend", default=None,
                   help="text(s) to continue; several primes are sampled together (default: start a new line)")
    p.add_argument("--num-samples", type=int, default=1, metavar="N", help="samples per prime (default 1)")
    p.add_argument("--max-tokens", type=int, default=100, metavar="N", help="tokens per sample at most (default 100)")
    p.add_argument("--min-length", type=int, default=0, metavar="N",
                   help="no <eos> before N tokens (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="divide the logits by T: <1 safer, >1 wilder, 0 greedy (default 1)")
    p.add_argument("--top-k", type=int, metavar="K", help="draw from the K most likely tokens only")
    p.add_argument("--top-p", type=float, metavar="P", help="nucleus: draw from the most likely tokens that make up P")
    p.add_argument("--greedy", action="store_true", help="always the most likely token (deterministic)")
    p.add_argument("--allow-unk", action="store_true", help="let <unk> be drawn (default: re-sample it)")
    p.add_argument("--no-stop", action="store_true", help="go on past <eos> up to --max-tokens")
    p.add_argument("--seed", type=int, help="make the samples reproducible (printed with --json)")
    p.add_argument("--json", action="store_true", help="one JSON object per sample, each as it finishes")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch",
                   help="torch (fast) or numpy (the reference engine); the same seed gives the same samples")
    p.add_argument("--device", default="auto", help="torch engine: auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import secrets

    from unroll.use.engine import load
    from unroll.use.generate import in_order, stream

    primes = args.prime or [""]
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    lm = load(args.dir, engine=args.engine, device=args.device)
    pieces = in_order(stream(
        lm, primes, num_samples=args.num_samples, max_tokens=args.max_tokens, stop_at_eos=not args.no_stop,
        seed=seed, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy,
        min_length=args.min_length, allow_unk=args.allow_unk,
    ))
    many = len(primes) * args.num_samples > 1
    shown, parts = -1, []
    for piece in pieces:  # sequence by sequence, each prime first, then its pieces as they come
        if args.json:
            parts.append(piece.text)
            if piece.done:
                print(json.dumps({"prime": primes[piece.prime], "sample": piece.sample, "text": "".join(parts),
                                  "tokens": piece.tokens, "stopped": piece.stopped, "seed": seed}), flush=True)
                parts = []
            continue
        if many and piece.index != shown:
            print(f"--- prime {piece.prime + 1}, sample {piece.sample + 1} ---")
            shown = piece.index
        sys.stdout.write(piece.text + ("\n\n" if piece.done and many else "\n" if piece.done else ""))
        sys.stdout.flush()
    return 0

