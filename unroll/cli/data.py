"""``unroll data``: list, fetch and describe datasets and text files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from unroll.errors import UnrollError
from unroll.settings import check_value
from unroll.text import levels


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="list, download and describe datasets")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="the registered datasets and where their files are")
    ls.set_defaults(func=cmd_list)

    fetch = sub.add_parser("fetch", help="download a dataset into the cache (or check the local mirror)")
    fetch.add_argument("name", help="dataset name (see `unroll data list`)")
    fetch.set_defaults(func=cmd_fetch)

    prep = sub.add_parser("prepare", help="tokenize a corpus once into the token cache (train, eval and stats reuse it)")
    _corpus_arguments(prep)
    prep.set_defaults(func=cmd_prepare)

    stats = sub.add_parser("stats", help="tokens per split, vocabulary size, OOV rate, sentence lengths")
    _corpus_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_stats)


def _corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="NAME|PATH", help="dataset name, text file, CSV file or folder with train/valid/test files")
    p.add_argument("--level", choices=levels.names(), help="tokenization (default: the dataset's own, else word)")
    p.add_argument("--vocab-size", type=int, metavar="N", help="bpe / unigram: pieces learned from the train "
                   "split (default 8000)")
    p.add_argument("--lower", action="store_true", help="lowercase the text first")
    p.add_argument("--encoding", help="text encoding of the files (default: utf-8)")
    p.add_argument("--column", help="CSV column name or 0-based index (default: the first)")
    p.add_argument("--max-size", type=int, help="keep at most this many vocabulary entries")
    p.add_argument("--min-freq", type=int, default=1, help="keep tokens seen at least this often")


def _check_corpus_arguments(args: argparse.Namespace) -> None:
    check_value("--min-freq", args.min_freq, at_least=1)
    if args.max_size is not None:
        check_value("--max-size", args.max_size, at_least=1)  # <unk> alone still describes the data
    if args.vocab_size is not None:
        check_value("--vocab-size", args.vocab_size, at_least=2)
        if args.level is None or not levels.get(args.level).learns:
            raise UnrollError("--vocab-size is for a subword level: add --level bpe or --level unigram")


def _load(args: argparse.Namespace, progress: bool = False):  # -> unroll.data.Corpus
    from unroll.data import load_corpus

    return load_corpus(
        args.source, args.level, lower=args.lower, encoding=args.encoding, column=args.column,
        max_size=args.max_size, min_freq=args.min_freq, vocab_size=args.vocab_size, progress=progress,
    )


def cmd_list(args: argparse.Namespace) -> int:
    from unroll.data import DATASETS, locate

    for ds in DATASETS.values():
        where = locate(ds)
        print(f"{ds.name:<16} {ds.description}")
        source = f"built here from {ds.source.url.removeprefix('unroll:')}" if ds.build else f"source {ds.source.url}"
        missing = 'not built' if ds.build else 'not downloaded'
        print(f"{'':<16} {'files: ' + str(where) if where else missing}; {source}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from unroll.data import fetch, get_dataset

    ds = get_dataset(args.name)
    folder = fetch(ds)
    for name in sorted(f for f in (ds.mirror_files or {}) | ds.files if (folder / f).is_file()):
        print(folder / name)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from unroll.data import corpus_stats
    from unroll.data.imdb import imdb_stats

    _check_corpus_arguments(args)
    if args.source == "imdb":
        stats = imdb_stats(args.level or "whitespace", args.lower, args.vocab_size)
    else:
        stats = corpus_stats(_load(args, progress=True))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import time

    _check_corpus_arguments(args)
    began = time.perf_counter()
    corpus = _load(args, progress=True)
    split = next(iter(corpus.splits.values()))
    folder = Path(split.filename).parent if isinstance(split, np.memmap) else None
    print(f"{corpus.name}: {corpus.text.level} tokens, vocabulary {len(corpus.vocab):,}, ids as {split.dtype} "
          f"({time.perf_counter() - began:.1f} s)")
    for name, ids in corpus.splits.items():
        print(f"  {name:<6} {len(ids):>12,} tokens")
    if folder is not None:
        print(f"cached in {folder}")
    return 0


def format_stats(stats: dict) -> str:
    """A small table: one row per split."""
    text = stats["text"]
    lines = [f"{stats['name']}: {text['level']} tokens{', lowercased' if text.get('lower') else ''}; "
             f"vocabulary {stats['vocab_size']:,}"]
    least = stats.get("least_frequent")
    if least:
        lines[0] += f"; least frequent kept token {least['token']!r} (count {least['count']:,})"
    unit = next(k for k in next(iter(stats["splits"].values())) if k in ("lines", "sentences", "reviews_length"))
    label = {"lines": "lines", "sentences": "sentences", "reviews_length": "reviews"}[unit]
    lines.append(f"{'split':<7} {'tokens':>11} {'OOV':>7} {label:>10}   length min / mean / median / p95 / max")
    for split, s in stats["splits"].items():
        n = s[unit]
        shape = f"{n['min']} / {n['mean']} / {n['median']:g} / {n['p95']:g} / {n['max']}" if n.get("count") else "-"
        lines.append(f"{split:<7} {s['tokens']:>11,} {s['oov_rate']:>7.2%} {n['count']:>10,}   {shape}")
    return "\n".join(lines)
