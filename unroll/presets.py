"""Named recipes: ``unroll train --preset NAME`` and ``unroll classify train --preset NAME``.

Each preset is one line of what it is and a link to its section of BENCHMARKS.md, where the
measurements behind its settings are. Free of torch, like the settings it fills in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from unroll.classify_config import ClassifyConfig
from unroll.config import TrainConfig
from unroll.text import levels


@dataclass
class Preset:
    """A language-model recipe: model settings (all of ModelConfig but vocab_size) and training settings."""

    description: str
    model: dict[str, Any]
    train: TrainConfig
    # The recipe to use instead where this one's bf16 is not native (`unroll train` says so):
    # a recipe tuned for bf16 speed can lose its point in fp32.
    without_bf16: str | None = None


@dataclass
class ClassifyPreset:
    """A classifier recipe: classifier settings (all but vocab_size and num_classes) and training settings."""

    description: str
    model: dict[str, Any]
    train: ClassifyConfig


# Zaremba et al. 2014 (the TensorFlow PTB tutorial's SmallConfig / MediumConfig / LargeConfig).
# TF's lr and clip act on the loss summed over `bptt` steps; the values here are for the mean loss:
# lr = lr_tf * bptt, clip = clip_tf / bptt (small: 1 * 20 = 20, 5 / 20 = 0.25).
PRESETS: dict[str, Preset] = {
    # BENCHMARKS.md#ptb-zaremba-et-al-small-reproduced
    "ptb-small": Preset(
        "Zaremba et al. 2014 small: 2x200 LSTM, no dropout, 13 epochs (published test ppl 114.5)",
        dict(cell="lstm", emb_size=200, hidden_size=200, num_layers=2, dropout=0.0, init_scale=0.1),
        TrainConfig(data="ptb", batch_size=20, bptt=20, optimizer="sgd", lr=20.0, clip=0.25,
                    schedule="zaremba", max_epoch=4, lr_decay=0.5, epochs=13, eval_batch_size=20),
    ),
    # BENCHMARKS.md#ptb-medium-and-large-on-this-cpu-time-per-epoch-no-gpu-in-this-session
    "ptb-medium": Preset(
        "Zaremba et al. 2014 medium: 2x650 LSTM, dropout 0.5, 39 epochs (published test ppl 82.7)",
        dict(cell="lstm", emb_size=650, hidden_size=650, num_layers=2, dropout=0.5, init_scale=0.05),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=35.0, clip=5 / 35,
                    schedule="zaremba", max_epoch=6, lr_decay=0.8, epochs=39, eval_batch_size=20),
    ),
    # BENCHMARKS.md#ptb-medium-and-large-on-this-cpu-time-per-epoch-no-gpu-in-this-session
    "ptb-large": Preset(
        "Zaremba et al. 2014 large: 2x1500 LSTM, dropout 0.65, 55 epochs (published test ppl 78.4)",
        dict(cell="lstm", emb_size=1500, hidden_size=1500, num_layers=2, dropout=0.65, init_scale=0.04),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=35.0, clip=10 / 35,
                    schedule="zaremba", max_epoch=14, lr_decay=1 / 1.15, epochs=55, eval_batch_size=20),
    ),
    # BENCHMARKS.md#ptb-cpu-60min
    "ptb-cpu-60min": Preset(
        "Best PTB perplexity in 60 minutes on a 2-core CPU with bf16 (AMX): tied 2x650 qrnn, AWD regularizers, "
        "cosine to the budget",
        dict(cell="qrnn", emb_size=650, hidden_size=650, num_layers=2, dropout=0.4, input_dropout=0.4,
             hidden_dropout=0.3, emb_dropout=0.1, weight_dropout=0.1, locked_dropout=True, tie_weights=True,
             init_scale=0.1),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=20.0, clip=0.25, ar=2.0, tar=1.0,
                    schedule="cosine", warmup_steps=0, min_lr=0.2, epochs=100, time_budget=3600.0,
                    precision="auto", eval_batch_size=20, test_batch_size=10),
        without_bf16="ptb-cpu-60min-fp32",
    ),
    # BENCHMARKS.md#ptb-cpu-60min-fp32
    "ptb-cpu-60min-fp32": Preset(
        "Best PTB perplexity in 60 minutes on a 2-core CPU without bf16 (AVX2): tied 2x650 qrnn (window 2) "
        "over a 400-wide embedding, variational dropout, cosine to the budget",
        dict(cell="qrnn", emb_size=400, hidden_size=650, num_layers=2, dropout=0.4, input_dropout=0.4,
             hidden_dropout=0.3, locked_dropout=True, tie_weights=True, qrnn_window=2, init_scale=0.1),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=20.0, clip=0.25,
                    schedule="cosine", warmup_steps=0, min_lr=0.2, epochs=100, time_budget=3600.0,
                    precision="auto", eval_batch_size=20, test_batch_size=10),
    ),
    # BENCHMARKS.md#shakespeare-char
    "shakespeare-char": Preset(
        "Tiny Shakespeare, characters: 2x512 LSTM, dropout 0.25, bf16, Adam with warmup + cosine",
        dict(cell="lstm", emb_size=128, hidden_size=512, num_layers=2, dropout=0.25, init="fan_in"),
        TrainConfig(data="tinyshakespeare", level="char", batch_size=32, bptt=64, optimizer="adam", lr=3e-3,
                    clip=1.0, schedule="cosine", warmup_steps=100, min_lr=1e-4, epochs=10,
                    eval_batch_size=32, test_batch_size=32, precision="auto"),
    ),
    # BENCHMARKS.md#char-cpu
    "char-cpu": Preset(
        "A small character LSTM that learns in minutes on a laptop CPU (what `unroll demo` trains)",
        dict(cell="lstm", emb_size=64, hidden_size=256, num_layers=1, dropout=0.0, init="fan_in"),
        TrainConfig(data="tinyshakespeare", level="char", batch_size=32, bptt=64, optimizer="adam", lr=4e-3,
                    clip=1.0, schedule="cosine", warmup_steps=50, min_lr=4e-4, epochs=5, time_budget=120.0,
                    eval_batch_size=32, test_batch_size=32),
    ),
}


def default_preset(level: str | None) -> Preset:
    """The recipe for ``unroll train --data X`` without ``--preset``: a small model that learns
    in minutes on a CPU; characters as char-cpu (no time budget), words a tied 2x256 LSTM."""
    if level is not None and levels.get(level).characters:
        char = PRESETS["char-cpu"]
        return Preset("defaults for character data", dict(char.model), replace(char.train, time_budget=None, epochs=10))
    return Preset(
        "defaults for word data",
        dict(cell="lstm", emb_size=256, hidden_size=256, num_layers=2, dropout=0.3, tie_weights=True, init_scale=0.1),
        TrainConfig(level=level, batch_size=20, bptt=35, optimizer="sgd", lr=20.0, clip=0.25, schedule="plateau",
                    lr_decay=0.25, epochs=20, patience=4, eval_batch_size=10, test_batch_size=10),
    )


CLASSIFY_PRESETS: dict[str, ClassifyPreset] = {
    # BENCHMARKS.md#imdb-lstm
    "imdb-lstm": ClassifyPreset(
        "IMDB sentiment, the classic LSTM tutorial: 128-d LSTM, mean pooling, adadelta, batch 16; "
        "reviews cut to their last 400 tokens; 30 minutes",
        dict(cell="lstm", emb_size=128, num_layers=1, bidirectional=False, pooling="mean", dropout=0.5,
             emb_dropout=0.0, word_dropout=0.0),
        ClassifyConfig(data="imdb", max_vocab=10000, lower=True, max_length=400, overlong="tail", optimizer="adadelta",
                       batch_size=16, eval_batch_size=64, valid_fraction=0.05, epochs=100, eval_every=0,
                       patience=10, stop_on="error", time_budget=1800.0, history_test=False, seed=123),
    ),
}
