"""``unroll score``: log-probability and perplexity of each line, per-token surprisal, ranking."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from unroll.text import levels

RANK_HELP = """\
--rank input: one candidate a line, groups of candidates separated by one or more blank lines.
Each group is printed best first (highest log-probability, or per token with --normalize).

  the cat sat on the mat
  the cat sat on the hat

  a dog barked
  a dog barks
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score sentences: log-probability, perplexity, surprisal; rank candidates",
        description="Score each line of FILE (or stdin) with a checkpoint: total log-probability (natural log), "
        "per-token log-probabilities, perplexity and token count, sentence markers included as in training. "
        "Blank lines are skipped. DIR is a checkpoint or a training run (its best/ checkpoint is used).",
        epilog=RANK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="text, one sentence a line (UTF-8 unless --encoding); - is stdin")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per line (per group with --rank)")
    out.add_argument("--tsv", action="store_true", help="tab-separated values with a header row")
    p.add_argument("--rank", action="store_true", help="order each group of candidates by probability (see below)")
    p.add_argument("--normalize", action="store_true", help="--rank by log-probability per token, not in total")
    p.add_argument("--html", metavar="OUT.html", help="also write the per-token surprisal as a self-contained HTML page")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour tokens by surprisal in the text output (auto: when stdout is a terminal)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="sentences per forward pass (default 64)")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the input (default: utf-8; e.g. latin-1)")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch",
                   help="torch (fast) or numpy (the reference engine); both give the same scores")
    p.add_argument("--device", default="auto", help="torch engine: auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unroll.data.files import read_text_or_stdin
    from unroll.errors import UnrollError
    from unroll.io import atomic_write_text
    from unroll.use import surprisal
    from unroll.use.engine import load
    from unroll.use.score import parse_groups, rank, score

    if args.normalize and not args.rank:
        raise UnrollError("--normalize applies to --rank; add --rank")
    if args.batch_size < 1:
        raise UnrollError(f"--batch-size must be at least 1, got {args.batch_size}")
    text, name = read_text_or_stdin(args.file, args.encoding)
    color = args.color == "always" or (args.color == "auto" and _is_terminal())
    lm = load(args.dir, engine=args.engine, device=args.device)
    joiner = levels.get(lm.spec.level).joiner
    if args.rank:
        groups = parse_groups(text)
        ranked = rank(lm, groups, args.normalize, args.batch_size)
        _print_ranking(ranked, args, color, joiner)
        scores = [s for g in ranked for _, s in g]
        labels = [f"group {i + 1}, #{r + 1} (candidate {j + 1})" for i, g in enumerate(ranked)
                  for r, (j, _) in enumerate(g)]
    else:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        labels = [f"{name}, line {n}" for n, _ in lines]
        scores = score(lm, [line for _, line in lines], args.batch_size, labels)
        _print_scores(scores, [n for n, _ in lines], args, color, joiner)
    if args.html:
        page = surprisal.html_page(scores, labels, joiner, f"unroll score: {args.dir}")
        atomic_write_text(args.html, page)
    return 0


def _is_terminal() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _ppl(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "n/a"


def _print_scores(scores, line_numbers, args, color: bool, joiner: str) -> None:
    from unroll.use import surprisal

    if args.json:
        for n, s in zip(line_numbers, scores):
            print(json.dumps({"line": n, **s.to_dict()}))
        return
    if args.tsv:
        print("line\tlogprob\tcount\tperplexity\tunk\ttext")
        for n, s in zip(line_numbers, scores):
            print(f"{n}\t{s.logprob:.6f}\t{s.count}\t{_ppl(s.perplexity)}\t{s.unknown}\t{s.text}")
        return
    if color:
        print(surprisal.ansi_legend())
    print(f"{'line':>6} {'logprob':>11} {'tokens':>6} {'ppl':>10}  sentence")
    for n, s in zip(line_numbers, scores):
        shown = surprisal.ansi_line(s, joiner) if color else s.text
        print(f"{n:>6} {s.logprob:>11.4f} {s.count:>6} {_ppl(s.perplexity):>10}  {shown}")
    total, count = sum(s.logprob for s in scores), sum(s.count for s in scores)
    ppl = _ppl(math.exp(-total / count) if count else None)
    print(f"total: {len(scores)} sentences, {count} tokens, log-prob {total:.4f}, perplexity {ppl}")


def _print_ranking(ranked, args, color: bool, joiner: str) -> None:
    from unroll.use import surprisal

    if args.json:
        for i, group in enumerate(ranked, 1):
            order = [{"rank": r, "candidate": j + 1, "score": s.key(args.normalize), **s.to_dict()}
                     for r, (j, s) in enumerate(group, 1)]
            print(json.dumps({"group": i, "ranking": order}))
        return
    if args.tsv:
        print("group\trank\tcandidate\tscore\tlogprob\tcount\tperplexity\ttext")
        for i, group in enumerate(ranked, 1):
            for r, (j, s) in enumerate(group, 1):
                print(f"{i}\t{r}\t{j + 1}\t{s.key(args.normalize):.6f}\t{s.logprob:.6f}\t{s.count}\t"
                      f"{_ppl(s.perplexity)}\t{s.text}")
        return
    if color:
        print(surprisal.ansi_legend())
    what = "log-prob per token" if args.normalize else "log-prob"
    for i, group in enumerate(ranked, 1):
        print(f"group {i} (best first by {what}; #candidate, score, tokens, ppl):")
        for r, (j, s) in enumerate(group, 1):
            shown = surprisal.ansi_line(s, joiner) if color else s.text
            print(f"{r:>4}. #{j + 1:<3} {s.key(args.normalize):>11.4f} {s.count:>6} {_ppl(s.perplexity):>10}  {shown}")
