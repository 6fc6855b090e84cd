"""Settings for sentence classification: the model, the training run, and the ``imdb-lstm`` preset.

The defaults follow the classic Theano LSTM sentiment tutorial (``lstm.py`` / ``imdb.py``):
dim_proj 128, adadelta, batch 16, vocabulary of 10,000 words, reviews longer than 100 tokens left
out, dropout 0.5 on the pooled features. Kept apart from ``unroll.config`` (the language-model
settings) and free of torch, so the CLI builds its flags without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from unroll.config import CELLS, PRECISIONS
from unroll.errors import UnrollError
from unroll.settings import settings_from_dict

POOLINGS = ("mean", "last", "max")
CLASSIFY_OPTIMIZERS = ("adadelta", "rmsprop", "sgd", "adam")
DEFAULT_LR = {"adadelta": 1.0, "rmsprop": 1e-3, "sgd": 0.1, "adam": 1e-3}
OVERLONG = ("drop", "head", "tail")
ENCODER_FIELDS = ("cell", "dim_proj", "hidden_size", "num_layers")  # taken from the LM on a warm start


@dataclass
class ClassifierConfig:
    """Embedding -> recurrent layers -> pooling over the real time steps -> dropout -> linear -> softmax."""

    vocab_size: int
    num_classes: int
    cell: str = "lstm"  # lstm | gru | rnn_tanh | rnn_relu
    dim_proj: int = 128  # word embedding size (the tutorial's dim_proj)
    hidden_size: int | None = None  # recurrent units per direction; none: dim_proj, as the tutorial
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = False  # also read each example right to left; features = both directions
    pooling: str = "mean"  # mean over the unmasked steps (the tutorial) | last (final state) | max
    dropout: float = 0.5  # on the pooled features (the tutorial's use_dropout) and between stacked layers

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise UnrollError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.pooling not in POOLINGS:
            raise UnrollError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.num_classes < 2:
            raise UnrollError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        if min(self.vocab_size, self.dim_proj, self.hidden, self.num_layers) < 1:
            raise UnrollError("vocab_size, dim_proj, hidden_size and num_layers must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise UnrollError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def hidden(self) -> int:
        """Recurrent units per direction."""
        return self.hidden_size or self.dim_proj

    @property
    def features(self) -> int:
        """Size of the pooled vector the linear layer reads."""
        return self.hidden * (2 if self.bidirectional else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        return settings_from_dict(cls, d, "classifier")


@dataclass
class ClassifyConfig:
    """How to read the labeled data and train the classifier. Saved in config.json as "train"."""

    # data
    data: str = "imdb"  # imdb, a folder DIR/<class>/*.txt (or DIR/{train,valid,test}/<class>/), or a .csv/.tsv file
    text_column: str = "text"  # CSV/TSV: the column holding the text
    label_column: str = "label"  # CSV/TSV: the column holding the label
    encoding: str | None = None  # text encoding of the data files (None: UTF-8)
    valid_portion: float = 0.05  # share of train held out for validation (seeded) when the data has no valid split
    # preprocessing (the tutorial: Treebank words, lowercased, HTML line breaks removed)
    level: str = "word"  # tokens: word (Treebank) | whitespace | char
    lower: bool = True  # lowercase before tokenizing
    n_words: int = 10000  # vocabulary size, <unk> included; rarer words become <unk>
    maxlen: int | None = 100  # examples longer than this many tokens: see overlong; none: no limit
    overlong: str = "drop"  # drop: leave them out of train/valid (the tutorial) | head: keep the first maxlen tokens | tail: keep the last
    sort_by_len: bool = True  # batch examples of similar length together (less padding, faster)
    # optimization
    optimizer: str = "adadelta"  # adadelta (the tutorial) | rmsprop | sgd | adam
    lr: float | None = None  # none: adadelta 1.0, rmsprop 1e-3, sgd 0.1, adam 1e-3
    decay_c: float = 0.0  # L2 penalty decay_c * sum(W**2) on the classifier weights (the tutorial's decay_c)
    clip: float = 0.0  # max global gradient norm; 0 = no clipping (the tutorial)
    batch_size: int = 16
    valid_batch_size: int = 64
    # length, validation and stopping
    max_epochs: int = 100
    valid_freq: int = 0  # validate every N updates; 0 = at the end of every epoch
    patience: int = 10  # stop after this many validations without a better valid error; 0 = never
    disp_freq: int = 10  # refresh the progress bar's loss every N updates
    time_budget: float | None = None  # seconds of wall time for training and validations (all resumes counted)
    history_test: bool = True  # also measure the test error at each validation (the tutorial's history_errs)
    precision: str = "fp32"  # fp32 | bf16 (autocast; fp32 weights and loss) | auto (bf16 where native)
    seed: int = 123

    def __post_init__(self) -> None:
        for name, choices in (
            ("optimizer", CLASSIFY_OPTIMIZERS), ("overlong", OVERLONG), ("precision", PRECISIONS),
            ("level", ("word", "whitespace", "char")),
        ):
            if getattr(self, name) not in choices:
                raise UnrollError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if not 0.0 <= self.valid_portion < 1.0:
            raise UnrollError(f"valid_portion must be in [0, 1), got {self.valid_portion}")
        for name in ("batch_size", "valid_batch_size", "max_epochs", "disp_freq"):
            if getattr(self, name) < 1:
                raise UnrollError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_words < 2:
            raise UnrollError(f"n_words must be at least 2 (<unk> and one word), got {self.n_words}")
        if self.maxlen is not None and self.maxlen < 1:
            raise UnrollError(f"maxlen must be at least 1 (or none), got {self.maxlen}")
        if (self.lr is not None and self.lr <= 0) or self.decay_c < 0 or self.clip < 0:
            raise UnrollError("lr must be positive and decay_c, clip non-negative")
        if self.valid_freq < 0 or self.patience < 0:
            raise UnrollError("valid_freq and patience must be non-negative")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UnrollError(f"time_budget must be positive, got {self.time_budget}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifyConfig":
        return settings_from_dict(cls, d, "classification")


@dataclass
class ClassifyPreset:
    """A named recipe: classifier settings (all but vocab_size and num_classes) and training settings."""

    description: str
    model: dict[str, Any]
    train: ClassifyConfig


CLASSIFY_PRESETS: dict[str, ClassifyPreset] = {
    # The tutorial's setup, adapted to a 2-core CPU and 30 minutes. The tutorial drops every review
    # longer than 100 tokens, which keeps only ~9% of IMDB's training reviews (median ~230 Treebank
    # tokens); here long reviews are cut to their LAST 400 tokens instead (reviews tend to end with
    # the verdict), which keeps ~85% of them whole. Batches hold reviews of similar length. The test
    # error is measured once, at the end (history_test off: 25,000 reviews at every validation
    # would cost a quarter of the budget). With adadelta and the tutorial's small initialization
    # the loss sits near log 2 for the first ~2,000 updates before it falls; --optimizer adam
    # learns at once (but overfits sooner).
    "imdb-lstm": ClassifyPreset(
        "IMDB sentiment, the classic LSTM tutorial: 128-d LSTM, mean pooling, adadelta, batch 16; "
        "reviews cut to their last 400 tokens; 30 minutes",
        dict(cell="lstm", dim_proj=128, num_layers=1, bidirectional=False, pooling="mean", dropout=0.5),
        ClassifyConfig(data="imdb", n_words=10000, lower=True, maxlen=400, overlong="tail", optimizer="adadelta",
                       batch_size=16, valid_batch_size=64, valid_portion=0.05, max_epochs=100, valid_freq=0,
                       patience=10, time_budget=1800.0, history_test=False, seed=123),
    ),
}
