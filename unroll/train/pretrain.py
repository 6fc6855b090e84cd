"""Language-model pretraining for a classifier (Dai & Le 2015; ULMFiT, Howard & Ruder 2018).

``unroll classify train --pretrain-lm 10m`` first trains an LSTM language model of the
classifier's size on the texts it may learn from: the training split (never the examples held out
for validation, never the test split) and any unlabeled text the user adds; then the classifier
starts from its vocabulary, embedding and recurrent weights (``--init-from``). The texts go one
example a line, tokenized as the classifier tokenizes (Treebank words, lowercased by default), a
hundredth of them held out to pick the language model's best checkpoint.

The recipe is the one measured on IMDB (BENCHMARKS.md, "With language-model pretraining"): Adam
lr 2e-3 with warmup and a cosine schedule to the time budget, dropout 0.1, fan-in initialization,
batch 32, bptt 35; an adaptive softmax over vocabularies of 4,000 words or more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from unroll.classify_config import ClassifierConfig, ClassifyConfig
from unroll.config import TrainConfig
from unroll.data.files import read_text
from unroll.data.labeled import clean_text, read_labeled, training_splits
from unroll.errors import DataError
from unroll.io import atomic_write_text
from unroll.text import TextSpec

LM_HELD_OUT = 100  # one text in this many goes to the language model's valid split


def adaptive_cutoffs(vocab_size: int) -> tuple[int, ...]:
    """Where the language model's adaptive softmax clusters start: 2,000, 10,000 and 50,000 words,
    each where the vocabulary holds at least twice as many; none (a full softmax) below 4,000.

    The classifier takes only the embedding and the recurrent layers, so the output layer can be
    the cheaper one: the language model reads more text in the same budget."""
    return tuple(c for c in (2000, 10000, 50000) if 2 * c <= vocab_size)


def unlabeled_texts(source: str | Path, encoding: str | None = None) -> list[str]:
    """A text file (one example a line) or a folder of .txt files (one example a file, searched
    recursively, as aclImdb's ``unsup/``)."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise DataError(f"{path}: no .txt files for --unlabeled; give a folder of .txt files or a text file")
        return [read_text(f, encoding) for f in files]
    if path.is_file():
        return [line for line in read_text(path, encoding).splitlines() if line.strip()]
    raise DataError(f"{path}: no such file or folder for --unlabeled")


def write_lm_corpus(folder: Path, texts: list[str]) -> Path:
    """``folder/{train,valid}.txt``: one text a line (whitespace made single spaces)."""
    lines = [" ".join(clean_text(t).split()) for t in texts]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise DataError("too little text to pretrain a language model on (fewer than 2 non-empty examples)")
    held = set(range(0, len(lines), LM_HELD_OUT))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "train.txt", "\n".join(t for i, t in enumerate(lines) if i not in held) + "\n")
    atomic_write_text(folder / "valid.txt", "\n".join(lines[i] for i in sorted(held)) + "\n")
    return folder


def pretrain_language_model(
    cfg: ClassifyConfig,
    model: dict[str, Any],
    out: Path,
    budget: float,
    unlabeled: str | Path | None = None,
    *,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    resume_if_exists: bool = False,
) -> Path | None:
    """Train the language model into ``out`` (``corpus/`` its texts, ``run/`` its run) for
    ``budget`` seconds; returns its best checkpoint, or None when it was interrupted (``run/``
    then resumes like any language model's run). ``resume_if_exists``: continue a run there."""
    from unroll.data import load_corpus
    from unroll.train.lm import train

    if out.is_dir() and (foreign := sorted(p.name for p in out.iterdir() if p.name not in ("corpus", "run"))):
        raise DataError(f"{out} holds other files ({', '.join(foreign[:5])}); the language model goes there: "
                        f"move them, or choose another --out")

    splits = training_splits(read_labeled(cfg.data, cfg.text_column, cfg.label_column, cfg.encoding),
                             cfg.valid_fraction, cfg.seed)
    texts = [t for t, _ in splits["train"]]
    if unlabeled is not None:
        texts += unlabeled_texts(unlabeled, cfg.encoding)
    folder = write_lm_corpus(out / "corpus", texts)
    spec = TextSpec(level=cfg.level, lower=cfg.lower, unit="line", eos=True, vocab_size=cfg.vocab_size)
    corpus = load_corpus(folder, spec=spec, max_size=cfg.max_vocab)
    sizes = ClassifierConfig(vocab_size=1, num_classes=2, **model)
    cutoffs = adaptive_cutoffs(len(corpus.vocab))
    lm = dict(cell=sizes.cell, emb_size=sizes.emb_size, hidden_size=sizes.hidden, num_layers=sizes.num_layers,
              dropout=0.1, init="fan_in", adaptive_softmax=bool(cutoffs), cutoffs=cutoffs)
    def columns(split: str) -> int:  # 32, or fewer where a split is too short for 32 columns of 35 steps
        return max(1, min(32, len(corpus.splits[split]) // 36))

    train_cfg = TrainConfig(data=str(folder), batch_size=columns("train"), bptt=35, optimizer="adam", lr=2e-3,
                            clip=1.0, schedule="cosine", warmup_steps=100, epochs=50, time_budget=budget,
                            eval_batch_size=columns("valid"), test_batch_size=columns("valid"), final_test=False,
                            precision=cfg.precision, seed=cfg.seed)
    result = train(train_cfg, lm, out / "run", corpus=corpus, device=device, progress=progress, echo=echo,
                   resume_if_exists=resume_if_exists)
    if result.stopped == "interrupted":
        return None
    if echo:
        echo(f"language model: valid ppl {result.best_valid['ppl']:.1f} after {result.elapsed:.0f} s "
             f"on {len(texts):,} texts; the classifier starts from {result.best_dir}")
    return result.best_dir
