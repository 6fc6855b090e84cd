"""``unroll classify``: train an LSTM text classifier (the classic IMDB sentiment setup or your own
labeled text), measure its error, and predict labels for new text.

Every field of ``ClassifierConfig`` and ``ClassifyConfig`` is a flag of ``classify train``
(``--dim-proj 256``, ``--maxlen 400 --overlong tail``, ``--optimizer adam``); flags override the preset.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from unroll.classify_config import (
    CLASSIFY_PRESETS,
    ENCODER_FIELDS,
    ClassifierConfig,
    ClassifyConfig,
)
from unroll.cli.train import add_field_flags, field_overrides, parse_duration
from unroll.config import PRECISIONS
from unroll.errors import UnrollError

MODEL_PREFIX, TRAIN_PREFIX = "cmodel__", "ctrain__"
_MAIN = {"data", "text_column", "label_column", "time_budget"}  # flags with their own description below


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classify", help="LSTM text classification: train, eval, predict (preset: imdb-lstm)",
                              description="Classify text with an LSTM: IMDB sentiment, or your own labeled text.")
    sub = p.add_subparsers(dest="classify_command", metavar="ACTION", required=True)
    _register_train(sub)
    _register_eval(sub)
    _register_predict(sub)


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a classifier",
        description="Train a classifier from --preset imdb-lstm or on --data imdb | DIR | FILE.csv; any setting below "
        "overrides. DIR holds one folder of .txt files per class (or train/valid/test folders of those; an unsup "
        "folder, as in aclImdb, is skipped); a CSV/TSV has a header row with text and label columns. Without a valid "
        "split, valid_portion of train is held out.",
        epilog="examples:\n  unroll classify train --preset imdb-lstm --out runs/imdb\n"
        "  unroll classify train --data reviews.csv --text-column review --label-column stars --out runs/stars\n"
        "  unroll classify train --preset imdb-lstm --init-from runs/imdb-lm/best --out runs/imdb-warm\n"
        "  unroll classify train --resume runs/imdb --max-epochs 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", metavar="NAME", help="start from a named recipe: " + ", ".join(CLASSIFY_PRESETS))
    p.add_argument("--data", dest=TRAIN_PREFIX + "data", metavar="imdb|DIR|FILE", default=argparse.SUPPRESS,
                   help="imdb, a folder with a sub-folder of .txt files per class, or a .csv/.tsv file")
    p.add_argument("--text-column", dest=TRAIN_PREFIX + "text_column", metavar="NAME", default=argparse.SUPPRESS,
                   help="CSV/TSV column with the text (default: text)")
    p.add_argument("--label-column", dest=TRAIN_PREFIX + "label_column", metavar="NAME", default=argparse.SUPPRESS,
                   help="CSV/TSV column with the label (default: label)")
    p.add_argument("--out", metavar="DIR", help="run directory: resumable checkpoint, best/, metrics.jsonl, curve.png")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--init-from", metavar="LMDIR", help="start from a trained language model's vocabulary, "
                   "embedding and LSTM weights (Dai & Le 2015); its cell and sizes are used")
    p.add_argument("--time-budget", dest=TRAIN_PREFIX + "time_budget", type=parse_duration, metavar="TIME",
                   default=argparse.SUPPRESS, help="stop training after this much wall time (e.g. 30m), validations "
                   "included; the final errors are measured after it; none: no budget")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--show-config", action="store_true", help="print the resolved settings as JSON and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-validation lines")
    add_field_flags(p.add_argument_group("model settings (override the preset)"), ClassifierConfig, MODEL_PREFIX,
                     {"vocab_size", "num_classes"})
    add_field_flags(p.add_argument_group("training settings (override the preset)"), ClassifyConfig, TRAIN_PREFIX, _MAIN)
    p.set_defaults(func=run_train)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="error rate, accuracy and confusion matrix on labeled data",
                       description="Evaluate a classifier checkpoint. DIR is a checkpoint or a training run (its best/ "
                       "is used). imdb or a folder with train/valid/test folders: --split is read; a folder per class "
                       "or a CSV/TSV given with --data: all of it.")
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("--data", metavar="imdb|DIR|FILE", help="labeled data (default: what the model was trained on)")
    p.add_argument("--split", choices=["train", "valid", "test"], default="test", help="default: test")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="examples per batch (speed only)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 (default), bf16, or auto (bf16 where native)")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the input (default: utf-8; e.g. latin-1)")
    p.add_argument("--last", action="store_true", help="a run directory: use its last weights, not best/")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)


def _register_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="the label and its probability for each input line",
                       description="Classify each line of FILE (or standard input): prints the label and its "
                       "probability, tab-separated, one line per input line (the tutorial's pred_probs).")
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("file", metavar="FILE|-", nargs="?", default="-", help="text, one example a line (default: stdin)")
    p.add_argument("--last", action="store_true", help="a run directory: use its last weights, not best/")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--json", action="store_true", help="one JSON object a line, with every class's probability")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the input (default: utf-8; e.g. latin-1)")
    p.set_defaults(func=run_predict)


# ---- train -------------------------------------------------------------------------------

def run_train(args: argparse.Namespace) -> int:
    from unroll.train.distributed import session

    with session(args.device):  # under torchrun: join the other processes for the run
        return _run_train(args)


def _run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unroll.train.classify import resume_classifier, train_classifier
    from unroll.train.distributed import current

    if args.list_presets:
        for name, preset in CLASSIFY_PRESETS.items():
            print(f"{name:<12} {preset.description}")
        return 0
    model_over, train_over = field_overrides(args, MODEL_PREFIX), field_overrides(args, TRAIN_PREFIX)
    echo = None if args.quiet else (lambda line: tqdm.write(line, file=sys.stdout))
    if args.resume:
        if args.preset or model_over or args.init_from:
            raise UnrollError("--resume continues a run as it was configured; drop --preset, --init-from and model settings")
        if args.out and args.out != args.resume:
            raise UnrollError("--resume DIR writes into DIR; drop --out")
        result = resume_classifier(args.resume, train_over, device=args.device, progress=not args.quiet, echo=echo)
    else:
        model, cfg = resolve_settings(args.preset, model_over, train_over, lm_encoder=bool(args.init_from))
        if args.show_config:
            print(json.dumps({"model": model, "train": cfg.to_dict()}, indent=2))
            return 0
        if not args.out:
            raise UnrollError("--out DIR is required: where to write the checkpoint and metrics")
        result = train_classifier(cfg, model, args.out, init_from=args.init_from, device=args.device,
                                  progress=not args.quiet, echo=echo)
    if not current(args.device).is_main:  # rank 0 reports for all
        return 130 if result.stopped == "interrupted" else 0
    if result.stopped == "interrupted":
        print(f"unroll: interrupted; checkpoint saved, continue with: unroll classify train --resume {result.out}",
              file=sys.stderr)
        return 130
    print(f"stopped: {result.stopped} after {result.updates} updates, {result.epoch} epochs, {result.elapsed:.0f}s")
    if result.errors:
        print("best parameters: " + " | ".join(f"{k.removesuffix('_err')} error {v:.4f}" for k, v in result.errors.items()))
    print(f"checkpoint: {result.best_dir} (best), {result.out} (last, resumable); curve: {result.curve}")
    return 0


def resolve_settings(
    preset: str | None, model_over: dict[str, Any], train_over: dict[str, Any], lm_encoder: bool = False
) -> tuple[dict[str, Any], ClassifyConfig]:
    """Preset (or the tutorial's defaults for --data) + overrides -> model settings and ClassifyConfig.

    ``lm_encoder`` (``--init-from``): the encoder's cell and sizes come from the language model, so
    the preset's are left out; sizes given on the command line still must match it.
    """
    if preset is not None:
        if preset not in CLASSIFY_PRESETS:
            raise UnrollError(f"unknown preset {preset!r}; choose one of {', '.join(CLASSIFY_PRESETS)}")
        base_model, base_train = CLASSIFY_PRESETS[preset].model, CLASSIFY_PRESETS[preset].train.to_dict()
    elif "data" in train_over:
        base_model, base_train = {}, {}
    else:
        raise UnrollError("give --preset NAME or --data imdb|DIR|FILE (see unroll classify train --help)")
    cfg = ClassifyConfig.from_dict({**base_train, **train_over})
    if lm_encoder:
        base_model = {k: v for k, v in base_model.items() if k not in ENCODER_FIELDS}
    model = {**base_model, **model_over}
    ClassifierConfig(vocab_size=1, num_classes=2, **model)  # validate before reading data
    return model, cfg


# ---- eval and predict --------------------------------------------------------------------

def run_eval(args: argparse.Namespace) -> int:
    from unroll.use.classify import evaluate_classifier, run_directory

    if args.batch_size < 1:
        raise UnrollError(f"--batch-size must be at least 1, got {args.batch_size}")
    res = evaluate_classifier(run_directory(args.dir, args.last), data=args.data, split=args.split,
                              batch_size=args.batch_size, precision=args.precision, device=args.device,
                              encoding=args.encoding)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['split']}: error {res['error']:.4f} | accuracy {100 * res['accuracy']:.2f}% | "
          f"{res['examples']} examples | {res['checkpoint']}")
    width = max(8, *(len(name) for name in res["labels"]))
    print("confusion (rows: true label, columns: predicted)")
    print(" " * width + "".join(f"{name:>{width + 1}}" for name in res["labels"]))
    for name, row in zip(res["labels"], res["confusion"]):
        print(f"{name:<{width}}" + "".join(f"{n:>{width + 1}}" for n in row))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from unroll.data import read_text_or_stdin
    from unroll.models import resolve_device
    from unroll.models.classifier import load_classifier
    from unroll.use.classify import predict_texts, run_directory

    model, ckpt = load_classifier(run_directory(args.dir, args.last), device=resolve_device(args.device))
    text, _ = read_text_or_stdin(args.file, args.encoding)
    lines = text.splitlines()
    if not lines:
        raise UnrollError("no input lines to classify")
    for res in predict_texts(model, ckpt, lines):
        print(json.dumps(res) if args.json else f"{res['label']}\t{res['prob']:.4f}")
    return 0
