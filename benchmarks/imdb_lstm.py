"""IMDB sentiment with the classic LSTM setup (the ``imdb-lstm`` preset), under a time limit.

    UNROLL_DATA_DIR=MIRROR python benchmarks/imdb_lstm.py                  # the preset: 30 minutes
    UNROLL_DATA_DIR=MIRROR python benchmarks/imdb_lstm.py --pretrain 1800  # + Dai & Le 2015 warm start
    UNROLL_DATA_DIR=MIRROR python benchmarks/imdb_lstm.py --pretrain 900 --emb-size 256 \
        --precision bf16 --optimizer adam --lr 5e-4 --time-budget 1080             # 88.80%, see BENCHMARKS.md
    UNROLL_DATA_DIR=MIRROR python benchmarks/imdb_lstm.py --subset 200 --time-budget 20 --emb-size 16  # smoke

Prints the test accuracy of the best parameters and the wall time (data preparation, training,
final evaluation). ``--pretrain SECONDS`` first trains an LSTM language model of the same size
on the 50,000 unlabeled + 25,000 training reviews (lowercased Treebank words, one review a line)
and starts the classifier from its embedding and LSTM weights. ``--subset N`` uses N training and
N test reviews only (written as a folder per class), for a quick check that everything runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from unroll.classify_config import ENCODER_FIELDS
from unroll.data.labeled import clean_text, read_labeled
from unroll.presets import CLASSIFY_PRESETS


def write_subset(root: Path, n: int) -> Path:
    """N train and N test reviews, both classes, as root/{train,test}/{neg,pos}/*.txt."""
    raw = read_labeled("imdb")
    for split in ("train", "test"):
        examples = raw[split][: n // 2] + raw[split][-(n - n // 2):]
        for i, (text, label) in enumerate(examples):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            (root / split / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


def pretrain_lm(out: Path, seconds: float, model: dict, max_vocab: int, subset: int | None, precision: str) -> Path:
    """An LSTM language model on the unlabeled + training reviews; returns its best checkpoint."""
    from unroll.config import TrainConfig
    from unroll.data import imdb_examples, load_corpus
    from unroll.text import TextSpec
    from unroll.train import train

    reviews = [clean_text(t) for split in ("unsup", "train") for t, _ in imdb_examples(split)]
    if subset:
        reviews = reviews[:: max(1, len(reviews) // subset)]
    folder = out / "lm-data"
    folder.mkdir(parents=True, exist_ok=True)
    cut = len(reviews) * 99 // 100
    (folder / "train.txt").write_text("\n".join(" ".join(r.split()) for r in reviews[:cut]) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(" ".join(r.split()) for r in reviews[cut:]) + "\n", encoding="utf-8")
    corpus = load_corpus(folder, spec=TextSpec(level="word", lower=True, unit="line", eos=True), max_size=max_vocab)
    size = model.get("hidden_size") or model["emb_size"]
    cfg = TrainConfig(data=str(folder), batch_size=32, bptt=35, optimizer="adam", lr=2e-3, clip=1.0, schedule="cosine",
                      warmup_steps=100, epochs=10, time_budget=seconds, eval_batch_size=32, test_batch_size=32,
                      precision=precision)
    lm = dict(cell="lstm", emb_size=model["emb_size"], hidden_size=size, num_layers=model.get("num_layers", 1),
              dropout=0.1, init="fan_in")
    result = train(cfg, lm, out / "lm", corpus=corpus, progress=True, echo=print)
    print(f"language model: valid ppl {result.best_valid['ppl']:.1f} after {result.elapsed:.0f}s")
    return result.best_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--time-budget", type=float, help="classifier training seconds (default: the preset's 1800)")
    p.add_argument("--pretrain", type=float, metavar="SECONDS", help="pretrain a language model this long first")
    p.add_argument("--subset", type=int, metavar="N", help="only N train and N test reviews (smoke test)")
    p.add_argument("--emb-size", "--dim-proj", type=int, help="embedding / LSTM size (default: the preset's 128)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="default: the preset's fp32 (also for --pretrain)")
    p.add_argument("--optimizer", choices=["adadelta", "rmsprop", "sgd", "adam"], help="default: the preset's adadelta")
    p.add_argument("--lr", type=float, help="default: the optimizer's (adadelta 1.0, adam 1e-3, ...)")
    p.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    args = p.parse_args()

    from unroll.train.classify import train_classifier

    preset = CLASSIFY_PRESETS["imdb-lstm"]
    out = args.out or Path(tempfile.mkdtemp(prefix="imdb-lstm-"))
    model = dict(preset.model, **({"emb_size": args.emb_size} if args.emb_size else {}))
    cfg = preset.train
    for name in ("time_budget", "precision", "optimizer", "lr"):
        if getattr(args, name) is not None:
            cfg = replace(cfg, **{name: getattr(args, name)})
    t0 = time.perf_counter()
    if args.subset:
        cfg = replace(cfg, data=str(write_subset(out / "data", args.subset)))
    init_from = None
    if args.pretrain:
        init_from = pretrain_lm(out, args.pretrain, model, cfg.max_vocab, args.subset, cfg.precision)
        model = {k: v for k, v in model.items() if k not in ENCODER_FIELDS}
    result = train_classifier(cfg, model, out / "classifier", init_from=init_from, progress=True, echo=print)
    wall = time.perf_counter() - t0
    test = result.errors.get("test_err")
    print(f"imdb-lstm{' + LM warm start' if init_from else ''}: test accuracy "
          f"{100 * (1 - test):.2f}% | classifier training {result.elapsed:.0f}s ({result.stopped}, {result.epoch} epochs, "
          f"{result.steps} updates) | wall time {wall:.0f}s in all | {result.best_dir}")


if __name__ == "__main__":
    main()
