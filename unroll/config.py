"""Typed settings shared by both engines.

``ModelConfig`` describes a language model completely: it is saved as ``config.json`` next to
the weights, and the NumPy reference engine and the PyTorch engine both build from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from unroll import cells
from unroll.errors import UnrollError
from unroll.settings import check_fields, setting, settings_from_dict
from unroll.text import levels



@dataclass
class ModelConfig:
    """A recurrent language model: embedding -> N recurrent layers -> linear decoder -> softmax."""

    vocab_size: int = setting(help="tokens the embedding and the decoder hold (from the data)", above=0)
    cell: str = setting("lstm", "recurrent cell, a name in unroll.cells: rnn_tanh | rnn_relu | lstm | gru | qrnn")
    emb_size: int = setting(200, "word (or character) embedding size", above=0)
    hidden_size: int = setting(200, "recurrent units per layer", above=0)
    num_layers: int = setting(2, "stacked recurrent layers", above=0)
    dropout: float = setting(0.0, "on non-recurrent connections, as Zaremba et al. 2014 (the last layer's output)",
                             at_least=0, below=1)
    input_dropout: float | None = setting(None, "on the embedded input (AWD-LSTM's dropouti); none: as dropout",
                                          at_least=0, below=1)
    hidden_dropout: float | None = setting(None, "between recurrent layers (AWD-LSTM's dropouth); none: as dropout",
                                           at_least=0, below=1)
    emb_dropout: float = setting(0.0, "drops whole words (rows of the embedding), as Gal & Ghahramani",
                                 at_least=0, below=1)
    weight_dropout: float = setting(0.0, "DropConnect on the recurrent weights, one mask per batch (AWD-LSTM's wdrop)",
                                    at_least=0, below=1)
    locked_dropout: bool = setting(False, "variational dropout: one mask per sequence, not per step")
    tie_weights: bool = setting(False, "decoder.weight is embedding.weight; if emb_size != hidden_size, "
                                "via a projection")
    init: str = setting("uniform", "uniform: U(-init_scale, init_scale); fan_in: U(-1/sqrt(n), 1/sqrt(n))")
    init_scale: float = setting(0.1, "the bound of the uniform initialization", above=0)
    orthogonal_recurrent: bool = setting(False, "orthogonal weight_hh (per gate block)")
    forget_bias: float = setting(0.0, "added to the LSTM forget-gate bias at initialization")
    qrnn_window: int = setting(1, "qrnn: inputs the first layer reads per step (2: x_t and x_{t-1}, as AWD-QRNN)",
                          at_least=1)
    adaptive_softmax: bool = setting(False, "output layer for large vocabularies (Grave et al. 2017): a softmax over "
                                     "the most frequent words and one entry per cluster of rarer ones")
    cutoffs: tuple[int, ...] = setting((), "adaptive softmax: where each cluster starts in the frequency-ranked "
                                       "vocabulary, e.g. 2000,10000", above=0)
    div_value: float = setting(4.0, "adaptive softmax: each cluster's projection is this many times narrower "
                               "than the one before", at_least=1)

    def __post_init__(self) -> None:
        check_fields(self)
        cell = cells.get(self.cell)
        if self.init not in ("uniform", "fan_in"):
            raise UnrollError(f"unknown init {self.init!r}; choose uniform or fan_in")
        if self.forget_bias and not cell.forget_gate:
            raise UnrollError(f"forget_bias applies to cells with a forget gate only (cell is {self.cell}); set it to 0")
        if self.orthogonal_recurrent and not cell.recurrent:
            raise UnrollError(f"orthogonal_recurrent: the {self.cell} cell has no recurrent weight matrix; turn it off")
        if self.qrnn_window != 1 and not cell.windowed:
            windowed = " and ".join(name for name in cells.names() if cells.get(name).windowed)
            raise UnrollError(f"qrnn_window applies to the {windowed} cell only (cell is {self.cell}); set it to 1")
        self._check_adaptive_softmax()

    def _check_adaptive_softmax(self) -> None:
        if not self.adaptive_softmax:
            if self.cutoffs:
                raise UnrollError("cutoffs apply to the adaptive softmax; add --adaptive-softmax or drop --cutoffs")
            return
        c = self.cutoffs
        if not c:
            raise UnrollError("adaptive_softmax needs cutoffs, e.g. --cutoffs 2000,10000")
        if any(b <= a for a, b in zip(c, c[1:])) or c[-1] >= self.vocab_size:
            raise UnrollError(f"cutoffs must increase and stay below the vocabulary size {self.vocab_size}, "
                              f"got {','.join(map(str, c))}")
        if self.tie_weights:
            raise UnrollError("tie_weights ties a full decoder to the embedding; the adaptive softmax has no full "
                              "decoder: turn one of them off")
        if self.tail_sizes[-1] < 1:
            raise UnrollError(f"div_value {self.div_value:g} makes the last cluster's projection of "
                              f"{self.decoder_size} units empty; use a smaller div_value or fewer cutoffs")

    @property
    def p_input(self) -> float:
        """Dropout on the embedded input."""
        return self.dropout if self.input_dropout is None else self.input_dropout

    @property
    def p_hidden(self) -> float:
        """Dropout between recurrent layers (none with one layer)."""
        if self.num_layers == 1:
            return 0.0
        return self.dropout if self.hidden_dropout is None else self.hidden_dropout

    @property
    def regularized(self) -> bool:
        """Any dropout at all (the NumPy reference engine has none)."""
        return bool(self.dropout or self.p_input or self.p_hidden or self.emb_dropout or self.weight_dropout)

    @property
    def projects(self) -> bool:
        """Tied weights across sizes: a linear map H -> E (no bias) between the last layer and the decoder.

        As Press & Wolf 2017 tie an output embedding of another size. A small tied embedding under
        wide layers (AWD-LSTM's 400 under 1150) makes the output layer, the bulk of a step's FLOPs
        with a 10k vocabulary, cheaper by E / H while the state stays [L, B, H].
        """
        return self.tie_weights and self.emb_size != self.hidden_size

    @property
    def decoder_size(self) -> int:
        """The width of the decoder's input: E when tied (projected there if H differs), else H."""
        return self.emb_size if self.tie_weights else self.hidden_size

    @property
    def tail_sizes(self) -> list[int]:
        """Adaptive softmax: each cluster's projection width, ``decoder_size // div_value^(i+1)``
        (as ``torch.nn.AdaptiveLogSoftmaxWithLoss``)."""
        return [int(self.decoder_size // (self.div_value ** (i + 1))) for i in range(len(self.cutoffs))]

    @property
    def gates(self) -> int:
        """How many weight blocks a cell stacks in weight_ih / weight_hh (4 for LSTM: i, f, g, o; QRNN: z, f, o)."""
        return cells.get(self.cell).gates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return settings_from_dict(cls, d, "model")


# ---------------------------------------------------------------------------------------------
# Training settings (unroll.train reads these; the CLI overrides any field; unroll.presets names recipes).

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "ntasgd")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where the hardware runs it natively (unroll.models.device)
SCHEDULES = ("constant", "zaremba", "plateau", "cosine")
SEED_MAX = 2**32 - 1  # numpy's legacy np.random.seed takes no more


@dataclass
class TrainConfig:
    """How to train: data, batching, optimizer, schedule, stopping. Saved in config.json as "train".

    The loss is the MEAN cross-entropy per token. TensorFlow's PTB tutorial sums the loss over
    the ``num_steps`` time steps (and averages over the batch), so its gradients are ``bptt``
    times larger: its lr 1 / clip 5 at 20 steps equals lr 20 / clip 0.25 here. ptb-small stores
    the latter (a literal lr 20 / clip 5 diverges).
    """

    # data
    data: str = setting("tinyshakespeare", "a registered dataset name or a path (file or directory)")
    level: str | None = setting(None, "char | word | whitespace | bpe | unigram; none: the dataset's own (ptb: whitespace)")
    vocab_size: int | None = setting(None, "bpe / unigram: pieces in the subword vocabulary, learned from the "
                                     "train split; none: 8000", at_least=2)
    max_vocab: int | None = setting(None, "keep the most frequent types; the rest become <unk>",
                                     at_least=2)
    encoding: str | None = setting(None, "text encoding of the data files (none: UTF-8)")
    # batching
    batch_size: int = setting(20, "sequences (columns of the token stream) per update", at_least=1)
    bptt: int = setting(35, "truncated-BPTT window (time steps per update)", at_least=1)
    random_bptt: bool = setting(False, "AWD-LSTM: window length ~ N(bptt, 5), bptt/2 with p=0.05")
    eval_batch_size: int = setting(10, "columns read in parallel when validating", at_least=1)
    test_batch_size: int = setting(1, "columns read in parallel for the test (the TensorFlow tutorial tests with 1)",
                                  at_least=1)
    final_test: bool = setting(True, "when training ends, score the best checkpoint on the test split")
    # optimization
    optimizer: str = setting("sgd", "sgd | momentum | nesterov | adagrad | adadelta | rmsprop | adam | adamw | ntasgd")
    lr: float = setting(20.0, "learning rate for the mean loss per token (the TensorFlow tutorial's lr times bptt)",
                        above=0)
    momentum: float = setting(0.9, "momentum / nesterov; rmsprop's momentum is 0 unless set here and used",
                              at_least=0, below=1)
    betas: tuple[float, float] = setting((0.9, 0.999), "adam / adamw", at_least=0, below=1)
    weight_decay: float = setting(0.0, "L2 penalty the optimizer applies to every weight", at_least=0)
    ar: float = setting(0.0, "activation regularization: + ar * mean(h^2) on the last layer's dropped output "
                        "(AWD's alpha)", at_least=0)
    tar: float = setting(0.0, "temporal activation regularization: + tar * mean((h_t - h_{t-1})^2), raw output "
                         "(beta)", at_least=0)
    clip: float = setting(0.25, "max global gradient norm; 0 = no clipping", at_least=0)
    nonmono: int = setting(5, "ntasgd: switch to averaging when valid loss is no better than n evals ago",
                           at_least=1)
    average_from: float | None = setting(None, "average the weights over the rest of the run from this fraction "
                                         "of it on (0.75: the last quarter, by updates or by the time budget); "
                                         "evaluation and best/ use the average", at_least=0, below=1)
    # learning-rate schedule
    schedule: str = setting("zaremba", "constant | zaremba | plateau | cosine")
    max_epoch: int = setting(4, "zaremba: epochs at the initial lr; then lr *= lr_decay each epoch",
                             at_least=0)
    lr_decay: float = setting(0.5, "zaremba: factor per epoch; plateau: factor when valid stalls",
                              above=0, at_most=1)
    plateau_patience: int = setting(0, "plateau: evaluations without improvement before decaying",
                                    at_least=0)
    warmup_steps: int = setting(0, "cosine: linear warmup steps", at_least=0)
    min_lr: float = setting(0.0, "cosine: final lr; plateau: floor", at_least=0)
    # length and stopping
    epochs: int = setting(13, "passes over the training text at most", at_least=1)
    max_steps: int | None = setting(None, "stop after this many updates (all epochs counted)",
                                     at_least=1)
    time_budget: float | None = setting(None, "seconds of wall time (evaluations included) for the whole run",
                                         above=0)
    patience: int = setting(0, "early stopping: evaluations without improvement; 0 = off",
                           at_least=0)
    eval_every: int = setting(0, "also evaluate every N updates; 0 = only at the end of each epoch",
                              at_least=0)
    # numerics
    precision: str = setting("fp32", "fp32 | bf16 (autocast; fp32 master weights and loss) | auto (bf16 where native)")
    max_rollbacks: int = setting(3, "non-finite loss: roll back and halve the lr at most this often",
                                 at_least=0)
    rollback_every: int = setting(200, "non-finite loss: the state rolled back to is at most this many updates old "
                                  "(a copy of weights, optimizer and data position in memory)", at_least=1)
    keep_last: int = setting(1, "resumable checkpoints kept in the run directory, the newest ones", at_least=1)
    seed: int = setting(1234, "seeds the initialization, dropout and the data order",
                        at_least=0, at_most=SEED_MAX)

    def __post_init__(self) -> None:
        check_fields(self)
        for name, choices in (
            ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("precision", PRECISIONS),
        ):
            if getattr(self, name) not in choices:
                raise UnrollError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if self.level is not None:
            levels.get(self.level)
        if self.vocab_size is not None and (self.level is None or not levels.get(self.level).learns):
            raise UnrollError("vocab_size (--vocab-size) is for a subword level: add --level bpe or --level unigram")
        if self.average_from is not None and self.optimizer == "ntasgd":
            raise UnrollError("ntasgd averages the weights itself; drop average_from or pick another optimizer")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return settings_from_dict(cls, d, "training")
