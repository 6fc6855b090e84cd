"""Sentence classification on small, short-text data: the linear baseline, the classifier's
defaults, and language-model pretraining, side by side on the same splits.

The data are made from the mirror's IMDB reviews, no download: each review cut to its first
sentence (Punkt; at least 5 words, else the first two), ``--sizes`` training examples drawn
(seeded, both classes alike) from the 25,000 training reviews, and the first sentences of
``--test`` of the 25,000 test reviews, balanced. Written as folders (``train/{neg,pos}``,
``test/{neg,pos}``), read by the commands a user types. For each size:

- ``baseline``: ``unroll classify baseline`` (NB-LR over uni+bigrams);
- ``tutorial``: ``unroll classify train --data DIR`` with the Theano tutorial's training settings
  (the defaults before they were regularized for small data: the ``imdb-lstm`` preset's);
- ``defaults``: ``unroll classify train --data DIR`` with no other setting;
- ``pretrained``: the same with ``--pretrain-lm --unlabeled`` (the first sentences of the 50,000
  unlabeled reviews and of the training reviews not drawn), ``--pretrain-minutes`` long;
- ``pretrained-reviews`` (not run unless named): the same with those reviews whole as the
  unlabeled text (about 13M words instead of 1.4M: what a user with in-domain documents has).

Test accuracy and wall time, one JSON line per (size, variant). Run it alone on the machine.

    UNROLL_DATA_DIR=MIRROR python benchmarks/classify_small.py --sizes 10000
    UNROLL_DATA_DIR=MIRROR python benchmarks/classify_small.py --sizes 2000 --variants baseline,defaults
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model
from unroll.data import imdb_examples
from unroll.text.tokenize import split_sentences

VARIANTS = ("baseline", "tutorial", "defaults", "pretrained")
EXTRA_VARIANTS = ("pretrained-reviews",)
TUTORIAL = ["--optimizer", "adadelta", "--batch-size", "16", "--emb-dropout", "0", "--word-dropout", "0",
            "--stop-on", "error", "--patience", "10"]


def first_sentence(text: str) -> str:
    sentences = split_sentences(" ".join(text.replace("<br />", " ").split()))
    if not sentences:
        return text[:200]
    first = sentences[0]
    return first if len(first.split()) >= 5 or len(sentences) == 1 else " ".join(sentences[:2])


def balanced(examples: list[tuple[str, int]], n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """``n`` indices, half of each label, and the indices left over."""
    chosen = []
    for label in (0, 1):
        pool = [i for i, (_, y) in enumerate(examples) if y == label]
        chosen += rng.choice(pool, n // 2, replace=False).tolist()
    left = sorted(set(range(len(examples))) - set(chosen))
    return sorted(chosen), left


def write_folder(root: Path, split: str, rows: list[tuple[str, int]]) -> None:
    for i, (text, label) in enumerate(rows):
        folder = root / split / ("pos" if label else "neg")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return round(time.perf_counter() - start, 1), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="2000,10000,25000", help="training examples, comma-separated")
    p.add_argument("--test", type=int, default=5000, help="test examples (balanced)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--pretrain-minutes", type=float, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="write the data and runs here (a new folder) instead of a temporary one")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    train_examples = imdb_examples("train")
    train_reviews = [t for t, _ in train_examples]
    train = [(first_sentence(t), y) for t, y in train_examples]
    test_all = [(first_sentence(t), y) for t, y in imdb_examples("test")]
    test = [test_all[i] for i in balanced(test_all, args.test, rng)[0]]
    unsup_reviews = [" ".join(t.replace("<br />", " ").split()) for t, _ in imdb_examples("unsup")]
    unsup = [first_sentence(t) for t in unsup_reviews]
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS + EXTRA_VARIANTS):
        p.error(f"unknown variants {sorted(unknown)}; choose from {VARIANTS + EXTRA_VARIANTS}")
    unroll = [sys.executable, "-m", "unroll", "classify"]
    print(json.dumps({"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "pretrain_minutes": args.pretrain_minutes}), flush=True)
    for size in map(int, args.sizes.split(",")):
        chosen, left = balanced(train, min(size, len(train)), rng) if size < len(train) else (list(range(len(train))), [])
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) if args.keep is None else args.keep / str(size)
            write_folder(root / "data", "train", [train[i] for i in chosen])
            write_folder(root / "data", "test", test)
            (root / "unlabeled.txt").write_text("\n".join(unsup + [train[i][0] for i in left]) + "\n", encoding="utf-8")
            if "pretrained-reviews" in variants:
                reviews = unsup_reviews + [" ".join(train_reviews[i].replace("<br />", " ").split()) for i in left]
                (root / "unlabeled-reviews.txt").write_text("\n".join(reviews) + "\n", encoding="utf-8")
            data = str(root / "data")
            words = float(np.mean([len(train[i][0].split()) for i in chosen]))
            for variant in variants:
                row = {"size": len(chosen), "words_per_example": round(words, 1), "variant": variant}
                if variant == "baseline":
                    seconds, out = timed([*unroll, "baseline", "--data", data, "--json"])
                    res = json.loads(out)
                    row |= {"test_accuracy": res["test_accuracy"], "c": res["c"]}
                else:
                    extra = {"tutorial": TUTORIAL, "defaults": [],
                             "pretrained": ["--pretrain-lm", f"{args.pretrain_minutes}m",
                                            "--unlabeled", str(root / "unlabeled.txt")],
                             "pretrained-reviews": ["--pretrain-lm", f"{args.pretrain_minutes}m",
                                                    "--unlabeled", str(root / "unlabeled-reviews.txt")]}[variant]
                    run = root / f"run-{variant}"
                    seconds, _ = timed([*unroll, "train", "--data", data, *extra, "--quiet", "--out", str(run)])
                    _, out = timed([*unroll, "eval", str(run), "--split", "test", "--json"])
                    row |= {"test_accuracy": json.loads(out)["accuracy"]}
                row["seconds"] = seconds
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
