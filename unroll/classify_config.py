"""Settings for sentence classification: the model and the training run.

The model and the data handling follow the classic Theano LSTM sentiment tutorial (``lstm.py`` /
``imdb.py``): embedding 128 (its dim_proj), vocabulary of 10,000 words, examples longer than 100
tokens left out, dropout 0.5 on the pooled features. The training defaults are regularized for
the small data most users have (chosen by measurement on 10,000 one-sentence reviews,
BENCHMARKS.md "Small-data classification"): Adam, batch 64, dropout on the embeddings (0.5) and
of whole words (0.3), best parameters and early stopping by the valid loss with patience 3. The
``imdb-lstm`` preset is the tutorial's recipe (adadelta, batch 16, no embedding dropout, the
valid error, patience 10). Field names are the language model's where the setting is the same
(``docs/settings.md`` maps the tutorial's names); the tutorial's names still load as aliases.
Free of torch, so the CLI builds its flags without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from unroll import cells
from unroll.config import PRECISIONS, SEED_MAX
from unroll.errors import UnrollError
from unroll.settings import check_fields, setting, settings_from_dict
from unroll.text import levels

POOLINGS = ("mean", "last", "max", "concat")
CLASSIFY_OPTIMIZERS = ("adadelta", "rmsprop", "sgd", "adam", "adamw")
DEFAULT_LR = {"adadelta": 1.0, "rmsprop": 1e-3, "sgd": 0.1, "adam": 1e-3, "adamw": 1e-3}
STOP_ON = ("loss", "error")
OVERLONG = ("drop", "head", "tail")
ENCODER_FIELDS = ("cell", "emb_size", "hidden_size", "num_layers")  # taken from the LM on a warm start


@dataclass
class ClassifierConfig:
    """Embedding -> recurrent layers -> pooling over the real time steps -> dropout -> linear -> softmax."""

    vocab_size: int = setting(help="tokens the embedding holds (from the data)", above=0)
    num_classes: int = setting(help="labels the classifier tells apart (from the data)", at_least=2)
    cell: str = setting("lstm", "recurrent cell: lstm | gru | rnn_tanh | rnn_relu")
    emb_size: int = setting(128, "word embedding size (the tutorial's dim_proj)", aliases=("dim_proj",),
                             above=0)
    hidden_size: int | None = setting(None, "recurrent units per direction; none: emb_size, as the tutorial",
                                        above=0)
    num_layers: int = setting(1, "stacked recurrent layers", above=0)
    bidirectional: bool = setting(False, "also read each example right to left; features = both directions")
    pooling: str = setting("mean", "mean over the unmasked steps (the tutorial) | last (final state) | max | "
                           "concat (last, max and mean side by side: ULMFiT's concat pooling; the default for a "
                           "warm start from a language model without a preset)")
    dropout: float = setting(0.5, "on the pooled features (the tutorial's use_dropout) and between stacked layers",
                             at_least=0, below=1)
    emb_dropout: float = setting(0.5, "on the embedded words, before the recurrent layers", at_least=0, below=1)
    word_dropout: float = setting(0.3, "in training, each token's embedding zeroed whole with this probability "
                                  "(Iyyer et al. 2015's word dropout)", at_least=0, below=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.cell not in cells.names(classifier=True):
            raise UnrollError(f"unknown cell {self.cell!r}; choose one of {', '.join(cells.names(classifier=True))}")
        if self.pooling not in POOLINGS:
            raise UnrollError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")

    @property
    def hidden(self) -> int:
        """Recurrent units per direction."""
        return self.hidden_size or self.emb_size

    @property
    def features(self) -> int:
        """Size of the pooled vector the linear layer reads."""
        return self.hidden * (2 if self.bidirectional else 1) * (3 if self.pooling == "concat" else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        return settings_from_dict(cls, d, "classifier")


@dataclass
class ClassifyConfig:
    """How to read the labeled data and train the classifier. Saved in config.json as "train"."""

    # data
    data: str = setting("imdb", "imdb, a folder DIR/<class>/*.txt (or DIR/{train,valid,test}/<class>/), "
                        "or a .csv/.tsv file")
    text_column: str = setting("text", "CSV/TSV: the column holding the text")
    label_column: str = setting("label", "CSV/TSV: the column holding the label")
    encoding: str | None = setting(None, "text encoding of the data files (none: UTF-8)")
    valid_fraction: float = setting(0.05, "share of train held out for validation (seeded) when the data has "
                                    "no valid split", aliases=("valid_portion",), at_least=0, below=1)
    # preprocessing (the tutorial: Treebank words, lowercased, HTML line breaks removed)
    level: str = setting("word", "tokens: word (Treebank) | whitespace | char | bpe | unigram")
    vocab_size: int | None = setting(None, "bpe / unigram: pieces in the subword vocabulary, learned from the "
                                     "train examples; none: 8000", at_least=2)
    lower: bool = setting(True, "lowercase before tokenizing")
    max_vocab: int = setting(10000, "vocabulary size, <unk> included; rarer words become <unk> (not for bpe / "
                             "unigram: see vocab_size)", aliases=("n_words",), at_least=2)
    max_length: int | None = setting(100, "examples longer than this many tokens: see overlong; none: no limit",
                                     aliases=("maxlen",), at_least=1)
    overlong: str = setting("drop", "drop: leave them out of train/valid (the tutorial) | head: keep the first "
                            "max_length tokens | tail: keep the last")
    sort_by_len: bool = setting(True, "batch examples of similar length together (less padding, faster)")
    # optimization
    optimizer: str = setting("adam", "adam | adamw | adadelta (the tutorial) | rmsprop | sgd")
    lr: float | None = setting(None, "learning rate; none: adam and adamw 1e-3, adadelta 1.0, rmsprop 1e-3, sgd 0.1",
                               above=0)
    encoder_lr: float | None = setting(None, "lr of the embedding and recurrent layers (ULMFiT's discriminative "
                                       "rates: lower for weights that come from a language model); none: lr",
                                       above=0)
    weight_decay: float = setting(0.0, "weight decay of every parameter (decoupled with adamw, an L2 term in the "
                                  "gradient otherwise)", at_least=0)
    gradual_unfreezing: bool = setting(False, "ULMFiT's gradual unfreezing: the first epoch trains the output "
                                       "layer alone, each later one also the next recurrent layer down (the "
                                       "embedding with the first); on by default for a warm start from a "
                                       "language model (--pretrain-lm, --init-from) without a preset")
    output_l2: float = setting(0.0, "L2 penalty output_l2 * sum(W**2) on the output layer's weights "
                               "(the tutorial's decay_c)", aliases=("decay_c",), at_least=0)
    clip: float = setting(0.0, "max global gradient norm; 0 = no clipping (the tutorial)", at_least=0)
    batch_size: int = setting(64, "examples per update (the tutorial: 16)", at_least=1)
    eval_batch_size: int = setting(64, "examples per batch when measuring errors (speed only)",
                                   aliases=("valid_batch_size",), at_least=1)
    # length, validation and stopping
    epochs: int = setting(100, "passes over the training examples at most", aliases=("max_epochs",),
                         at_least=1)
    max_steps: int | None = setting(None, "stop after this many updates (all epochs counted); none: no limit",
                                     at_least=1)
    eval_every: int = setting(0, "validate every N updates; 0 = at the end of every epoch", aliases=("valid_freq",),
                             at_least=0)
    patience: int = setting(3, "stop after this many validations without a better valid figure (stop_on); "
                           "0 = never", at_least=0)
    stop_on: str = setting("loss", "the valid figure that picks best/ and counts patience: loss (mean cross-entropy: "
                           "smoother than the error on a small valid split) | error (the tutorial)")
    log_every: int = setting(10, "refresh the progress bar's loss every N updates", aliases=("disp_freq",),
                            at_least=1)
    time_budget: float | None = setting(None, "seconds of wall time for training and validations (all resumes "
                                        "counted)", above=0)
    history_test: bool = setting(True, "also measure the test error at each validation (the tutorial's "
                                 "history_errs)")
    precision: str = setting("fp32", "fp32 | bf16 (autocast; fp32 weights and loss) | auto (bf16 where native)")
    max_rollbacks: int = setting(3, "non-finite loss: roll back and halve the lr at most this often", at_least=0)
    rollback_every: int = setting(200, "non-finite loss: the state rolled back to is at most this many updates old "
                                  "(a copy of weights, optimizer and data position in memory)", at_least=1)
    keep_last: int = setting(1, "resumable checkpoints kept in the run directory, the newest ones", at_least=1)
    seed: int = setting(123, "seeds the initialization, the valid split and the batch order",
                        at_least=0, at_most=SEED_MAX)

    def __post_init__(self) -> None:
        check_fields(self)
        for name, choices in (
            ("optimizer", CLASSIFY_OPTIMIZERS), ("overlong", OVERLONG), ("stop_on", STOP_ON), ("precision", PRECISIONS),
            ("level", levels.names()),
        ):
            if getattr(self, name) not in choices:
                raise UnrollError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if self.vocab_size is not None and not levels.get(self.level).learns:
            raise UnrollError("vocab_size (--vocab-size) is for a subword level: add --level bpe or --level unigram")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifyConfig":
        return settings_from_dict(cls, d, "classification")
