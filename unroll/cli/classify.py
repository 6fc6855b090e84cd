"""``unroll classify``: train an LSTM text classifier (the classic IMDB sentiment setup or your own
labeled text), measure its error, and predict labels for new text.

Every field of ``ClassifierConfig`` and ``ClassifyConfig`` is a flag of ``classify train``
(``--emb-size 256``, ``--max-length 400 --overlong tail``, ``--optimizer adam``); flags override the preset
and ``--config FILE``. The Theano tutorial's names (``--dim-proj``, ``--maxlen`` ...) are accepted too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unroll.classify_config import ENCODER_FIELDS, ClassifierConfig, ClassifyConfig
from unroll.cli.common import (
    TrainingCommand,
    add_device_flag,
    add_field_flags,
    add_last_flag,
    add_run_flags,
    parse_duration,
    pick_preset,
    run_directory,
)
from unroll.config import PRECISIONS
from unroll.errors import UnrollError
from unroll.presets import CLASSIFY_PRESETS
from unroll.settings import canonical_names

MODEL_PREFIX, TRAIN_PREFIX = "cmodel__", "ctrain__"
_MAIN = {"data", "text_column", "label_column", "time_budget"}  # flags with their own description below


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classify", help="LSTM text classification: train, eval, predict (preset: imdb-lstm)",
                              description="Classify text with an LSTM: IMDB sentiment, or your own labeled text.")
    sub = p.add_subparsers(dest="classify_command", metavar="ACTION", required=True)
    _register_train(sub)
    _register_eval(sub)
    _register_predict(sub)
    _register_baseline(sub)


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a classifier",
        description="Train a classifier from --preset imdb-lstm, --config FILE or --data imdb | DIR | FILE.csv; any "
        "setting below "
        "overrides. DIR holds one folder of .txt files per class (or train/valid/test folders of those; an unsup "
        "folder, as in aclImdb, is skipped); a CSV/TSV has a header row with text and label columns. Without a valid "
        "split, valid_fraction of train is held out.",
        epilog="examples:\n  unroll classify train --preset imdb-lstm --out runs/imdb\n"
        "  unroll classify train --data reviews.csv --text-column review --label-column stars --out runs/stars\n"
        "  unroll classify train --preset imdb-lstm --init-from runs/imdb-lm/best --out runs/imdb-warm\n"
        "  unroll classify train --resume runs/imdb --epochs 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", dest=TRAIN_PREFIX + "data", metavar="imdb|DIR|FILE", default=argparse.SUPPRESS,
                   help="imdb, a folder with a sub-folder of .txt files per class, or a .csv/.tsv file")
    p.add_argument("--text-column", dest=TRAIN_PREFIX + "text_column", metavar="NAME", default=argparse.SUPPRESS,
                   help="CSV/TSV column with the text (default: text)")
    p.add_argument("--label-column", dest=TRAIN_PREFIX + "label_column", metavar="NAME", default=argparse.SUPPRESS,
                   help="CSV/TSV column with the label (default: label)")
    p.add_argument("--init-from", metavar="LMDIR", help="start from a trained language model's vocabulary, "
                   "embedding and LSTM weights (Dai & Le 2015); its cell and sizes are used")
    p.add_argument("--pretrain-lm", metavar="DURATION", type=parse_duration,
                   help="first train a language model of the classifier's size for this long (e.g. 10m) on the "
                   "training texts (and --unlabeled), into OUT-lm, then start the classifier from it (Dai & Le "
                   "2015; ULMFiT); see also --encoder-lr")
    p.add_argument("--unlabeled", metavar="DIR|FILE", help="--pretrain-lm also reads these texts: a folder of .txt "
                   "files (one example a file) or a text file (one a line)")
    add_run_flags(
        p, CLASSIFY_PRESETS, TRAIN_PREFIX + "time_budget",
        out_help="run directory: resumable checkpoint, best/, metrics.jsonl, curve.png",
        resume_help="continue the run in DIR from its last checkpoint",
        budget_help="stop training after this much wall time (e.g. 30m), validations included; the final "
        "errors are measured after it; none: no budget",
        quiet_help="no progress bar or per-validation lines",
    )
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
    add_last_flag(p)
    add_device_flag(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)


def _register_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="the label and its probability for each input line",
                       description="Classify each line of FILE (or standard input): prints the label and its "
                       "probability, tab-separated, one line per input line (the tutorial's pred_probs).")
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("file", metavar="FILE|-", nargs="?", default="-", help="text, one example a line (default: stdin)")
    add_last_flag(p)
    add_device_flag(p)
    p.add_argument("--json", action="store_true", help="one JSON object a line, with every class's probability")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the input (default: utf-8; e.g. latin-1)")
    p.set_defaults(func=run_predict)


def _register_baseline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline", help="a linear baseline (NB-SVM features, logistic regression) on the same split",
        description="Train NB-LR (Wang & Manning 2012: naive-Bayes log-count ratios on binary word uni+bigram "
        "features, logistic regression, C chosen on the valid split) on the data and split classify train would "
        "use (same --valid-fraction and --seed), and report its valid and test accuracy: what a linear model gets, "
        "to hold an LSTM against. Needs scikit-learn: pip install \"unroll-lm[baseline]\".")
    p.add_argument("--data", required=True, metavar="imdb|DIR|FILE", help="as for classify train")
    p.add_argument("--text-column", default="text", metavar="NAME", help="CSV/TSV column with the text (default: text)")
    p.add_argument("--label-column", default="label", metavar="NAME", help="CSV/TSV column with the label")
    p.add_argument("--valid-fraction", type=float, default=0.05, metavar="F",
                   help="share of train held out when the data has no valid split (default 0.05, as classify train)")
    p.add_argument("--seed", type=int, default=123, help="seeds the valid split (default 123, as classify train)")
    p.add_argument("--level", choices=["word", "whitespace"], default="word", help="tokens (default word: Treebank)")
    p.add_argument("--lower", action=argparse.BooleanOptionalAction, default=True, help="lowercase first (default)")
    p.add_argument("--encoding", metavar="NAME", help="text encoding of the data files (default: utf-8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_baseline)


def run_baseline(args: argparse.Namespace) -> int:
    from unroll.use.baseline import linear_baseline

    cfg = ClassifyConfig(data=args.data, text_column=args.text_column, label_column=args.label_column,
                         valid_fraction=args.valid_fraction, seed=args.seed, level=args.level, lower=args.lower,
                         encoding=args.encoding)
    res = linear_baseline(cfg)
    if args.json:
        print(json.dumps(res))
        return 0
    test = f" | test accuracy {100 * res['test_accuracy']:.2f}%" if "test_accuracy" in res else " | no test split"
    sizes = ", ".join(f"{s} {n:,}" for s, n in res["examples"].items())
    print(f"{res['model']}: valid accuracy {100 * res['valid_accuracy']:.2f}%{test} | C {res['c']:g} | "
          f"{res['features']:,} features | {sizes} | {res['seconds']:.1f} s")
    return 0


# ---- train -------------------------------------------------------------------------------

def _resolve(args: argparse.Namespace, model_over: dict[str, Any], train_over: dict[str, Any]) -> tuple[dict[str, Any], ClassifyConfig]:
    return resolve_settings(args.preset, model_over, train_over, lm_encoder=bool(args.init_from),
                            warm_start=bool(args.init_from) or args.pretrain_lm is not None)


def _start(args: argparse.Namespace, model: dict[str, Any], cfg: ClassifyConfig, out: str, **run: Any) -> Any:
    from unroll.train import train_classifier

    init_from = args.init_from
    if args.pretrain_lm is not None:
        init_from = _pretrain(args, model, cfg, Path(out), run)
    elif args.unlabeled:
        raise UnrollError("--unlabeled is text for --pretrain-lm; add --pretrain-lm DURATION")
    return train_classifier(cfg, model, out, init_from=init_from, device=args.device, **run)


def _pretrain(args: argparse.Namespace, model: dict[str, Any], cfg: ClassifyConfig, out: Path,
              run: dict[str, Any]) -> Path | None:
    """The language model for ``--pretrain-lm``, trained into ``OUT-lm``; None when ``OUT`` already
    holds the classifier's run (``--resume-if-exists`` then continues it as it is)."""
    from unroll.train.pretrain import pretrain_language_model
    from unroll.train.run import claim_out_dir
    from unroll.train.state import has_trainer_state

    if args.init_from:
        raise UnrollError("--pretrain-lm trains the language model --init-from names; give one of them")
    if run["resume_if_exists"] and has_trainer_state(out):
        return None
    claim_out_dir(out, run["dist"], run["overwrite"], restart=run["resume_if_exists"])  # refuse before hours of LM
    lm_out = out.with_name(out.name + "-lm")
    best = pretrain_language_model(cfg, model, lm_out, args.pretrain_lm, args.unlabeled, device=args.device,
                                   progress=run["progress"], echo=run["echo"],
                                   resume_if_exists=run["resume_if_exists"])
    if best is None:  # interrupted: its run is resumable like any language model's
        print(f"unroll: language-model pretraining stopped; continue it with: unroll train --resume {lm_out / 'run'}, "
              f"then classify with --init-from {lm_out / 'run' / 'best'}", file=sys.stderr)
        raise KeyboardInterrupt
    return best


def _resume(args: argparse.Namespace, train_over: dict[str, Any], **run: Any) -> Any:
    from unroll.train import resume_classifier

    if args.pretrain_lm is not None or args.unlabeled:
        raise UnrollError("--resume continues a run as it was configured; drop --pretrain-lm and --unlabeled")
    return resume_classifier(args.resume, train_over, device=args.device, **run)


def _report(result: Any) -> None:
    if result.errors:
        print("best parameters: " + " | ".join(f"{k.removesuffix('_err')} error {v:.4f}" for k, v in result.errors.items()))


run_train = TrainingCommand(
    command="unroll classify train", presets=CLASSIFY_PRESETS, model_prefix=MODEL_PREFIX, train_prefix=TRAIN_PREFIX,
    shaping_flags="--preset, --config, --init-from and model settings", resolve=_resolve, start=_start,
    resume=_resume, report=_report,
)


# Without a preset, a classifier that starts from a language model fine-tunes as ULMFiT does:
# concat pooling and gradual unfreezing (BENCHMARKS.md, "Small, short-text classification").
WARM_START_MODEL = {"pooling": "concat"}
WARM_START_TRAIN = {"gradual_unfreezing": True}


def resolve_settings(
    preset: str | None, model_over: dict[str, Any], train_over: dict[str, Any], lm_encoder: bool = False,
    warm_start: bool = False,
) -> tuple[dict[str, Any], ClassifyConfig]:
    """Preset (or the small-data defaults for --data) + overrides -> model settings and ClassifyConfig.

    The model settings are all of ClassifierConfig but what the data decides (vocab_size,
    num_classes). ``lm_encoder`` (``--init-from``): the encoder's cell and sizes come from the
    language model, so they are left out unless given; those given still must match it.
    ``warm_start`` (``--init-from`` or ``--pretrain-lm``) without a preset: the fine-tuning
    defaults (``WARM_START_MODEL``, ``WARM_START_TRAIN``) under the overrides.
    """
    if preset is not None:
        base = pick_preset(preset, CLASSIFY_PRESETS)
        base_model, base_train = base.model, base.train.to_dict()
    elif "data" in train_over:
        base_model, base_train = (WARM_START_MODEL, WARM_START_TRAIN) if warm_start else ({}, {})
    else:
        raise UnrollError("give --preset NAME, --config FILE or --data imdb|DIR|FILE (see unroll classify train --help)")
    cfg = ClassifyConfig.from_dict({**base_train, **train_over})
    model_over = canonical_names(ClassifierConfig, model_over)  # a --config file may use the tutorial's names
    settings = {**base_model, **model_over}
    if lm_encoder:
        settings = {k: v for k, v in settings.items() if k not in ENCODER_FIELDS or k in model_over}
    from_data_or_lm = {"vocab_size", "num_classes"} | (set(ENCODER_FIELDS) - set(settings) if lm_encoder else set())
    full = ClassifierConfig.from_dict({**settings, "vocab_size": 1, "num_classes": 2}).to_dict()  # validate now
    return {k: v for k, v in full.items() if k not in from_data_or_lm}, cfg


# ---- eval and predict --------------------------------------------------------------------

def run_eval(args: argparse.Namespace) -> int:
    from unroll.use.classify import evaluate_classifier

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
    from unroll.use.classify import predict_texts

    model, ckpt = load_classifier(run_directory(args.dir, args.last), device=resolve_device(args.device))
    text, _ = read_text_or_stdin(args.file, args.encoding)
    lines = text.splitlines()
    if not lines:
        raise UnrollError("no input lines to classify")
    for res in predict_texts(model, ckpt, lines):
        print(json.dumps(res) if args.json else f"{res['label']}\t{res['prob']:.4f}")
    return 0
