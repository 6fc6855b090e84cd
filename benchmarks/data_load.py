"""How long loading a corpus takes, and its peak memory: the first time (tokenize into the token
cache) and every later time (memory-map it), each in a fresh process with an empty cache to start.

    UNROLL_DATA_DIR=MIRROR python benchmarks/data_load.py ptb wikitext2 tinyshakespeare
    UNROLL_DATA_DIR=MIRROR python benchmarks/data_load.py imdb-lm --level word --first-update
    UNROLL_DATA_DIR=MIRROR python benchmarks/data_load.py imdb-lm --level word --old c07e447~1

A NAME is a registered dataset or a path (a file, or a folder of train/valid/test.txt).
``--old REV`` also loads it with the loader of git revision REV (checked out in a temporary
worktree), for the before-and-after. ``--first-update`` times a fresh process on the warm cache
from its start (imports included) to the end of its first update of the default word model
(``unroll train``'s, 2x256 LSTM) over that vocabulary, with a full softmax and with an
adaptive one. Prints one JSON line per corpus. Peak memory
is the largest resident set of the process and of its worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]

LOAD = """
import json, resource, sys, time
t = time.perf_counter()
from unroll.data import load_corpus
corpus = load_corpus(sys.argv[1], **json.loads(sys.argv[2]))
seconds = time.perf_counter() - t
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": round(seconds, 2), "peak_mb": round(peak / 1024), "vocab": len(corpus.vocab),
                  "tokens": {k: int(len(v)) for k, v in corpus.splits.items()}}))
"""


def load_in_a_fresh_process(name: str, options: dict, cache: Path, code_root: Path) -> dict:
    env = {**os.environ, "UNROLL_CACHE_DIR": str(cache), "PYTHONPATH": str(code_root)}
    out = subprocess.run([sys.executable, "-c", LOAD, name, json.dumps(options)], env=env, cwd=code_root,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


FIRST_UPDATE = """
import json, sys, time
start = time.perf_counter()
import torch
from unroll.config import ModelConfig
from unroll.data import batchify, load_corpus
from unroll.models import LanguageModel
from unroll.presets import default_preset
imported = time.perf_counter()
corpus = load_corpus(sys.argv[1], **json.loads(sys.argv[2]))
loaded = time.perf_counter()
preset = default_preset(corpus.text.level)
changes = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sys.argv[3]).items()}
model = LanguageModel(ModelConfig(vocab_size=len(corpus.vocab), **{**preset.model, **changes}))
optimizer = torch.optim.SGD(model.parameters(), lr=preset.train.lr)
built = time.perf_counter()
train = corpus.splits["train"][: 36 * preset.train.batch_size].astype("int64")
ids = torch.from_numpy(batchify(train, preset.train.batch_size))
loss, _ = model(ids[:-1], targets=ids[1:])
loss.backward()
optimizer.step()
end = time.perf_counter()
print(json.dumps({"seconds": round(end - start, 2), "imports": round(imported - start, 2),
                  "load": round(loaded - imported, 2), "model_and_optimizer": round(built - loaded, 2),
                  "update": round(end - built, 2)}))
"""

# The remedy for a vocabulary this large: an adaptive softmax whose head holds the 20,000 most
# frequent words (it has no full decoder to tie to the embedding).
ADAPTIVE = {"adaptive_softmax": True, "cutoffs": [20000, 60000], "tie_weights": False}


def first_update(name: str, options: dict, cache: Path, model: dict) -> dict:
    """Seconds from a fresh process's start to the end of its first update, on a warm cache, and
    where they go (imports, load, the model and its optimizer: torch imports its compiler,
    torch._dynamo, when the first optimizer is made; the update)."""
    env = {**os.environ, "UNROLL_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", FIRST_UPDATE, name, json.dumps(options), json.dumps(model)],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def old_worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    return where


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", default=["ptb"])
    p.add_argument("--level", help="tokenization (default: the dataset's own)")
    p.add_argument("--old", metavar="REV", help="also load with the loader of this git revision")
    p.add_argument("--first-update", action="store_true", help="also time unroll train to its first update")
    args = p.parse_args()
    options = {"level": args.level} if args.level else {}
    for name in args.names:
        if Path(name).exists():
            name = str(Path(name).resolve())
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "cache"
            row: dict = {"corpus": name, "level": args.level or "default"}
            if args.old:
                tree = old_worktree(args.old, Path(tmp) / "old")
                try:
                    row["old"] = {"rev": args.old, **load_in_a_fresh_process(name, options, Path(tmp) / "old-cache", tree)}
                finally:
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
            row["first"] = load_in_a_fresh_process(name, options, cache, REPO)
            row["later"] = load_in_a_fresh_process(name, options, cache, REPO)
            if args.first_update:
                row["first_update"] = first_update(name, options, cache, {})
                if row["later"]["vocab"] > ADAPTIVE["cutoffs"][-1]:
                    row["first_update_adaptive"] = first_update(name, options, cache, ADAPTIVE)
            row["cpu"] = cpu_model()
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
