"""Typed settings shared by both engines.

``ModelConfig`` describes a language model completely: it is saved as ``config.json`` next to
the weights, and the NumPy reference engine and the PyTorch engine both build from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from unroll.errors import UnrollError
from unroll.settings import settings_from_dict

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # the classic cells (both engines, the classifier)
LM_CELLS = CELLS + ("qrnn",)  # language models also take qrnn (unroll.models.qrnn, unroll.reference.qrnn)
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "qrnn": 3}


@dataclass
class ModelConfig:
    """A recurrent language model: embedding -> N recurrent layers -> linear decoder -> softmax."""

    vocab_size: int
    cell: str = "lstm"  # rnn_tanh | rnn_relu | lstm | gru | qrnn
    emb_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    dropout: float = 0.0  # on non-recurrent connections, as Zaremba et al. 2014 (the last layer's output)
    input_dropout: float | None = None  # on the embedded input (AWD-LSTM's dropouti); none: as dropout
    hidden_dropout: float | None = None  # between recurrent layers (AWD-LSTM's dropouth); none: as dropout
    emb_dropout: float = 0.0  # drops whole words (rows of the embedding), as Gal & Ghahramani
    weight_dropout: float = 0.0  # DropConnect on the recurrent weights, one mask per batch (AWD-LSTM's wdrop)
    locked_dropout: bool = False  # variational dropout: one mask per sequence, not per step
    tie_weights: bool = False  # decoder.weight is embedding.weight; if emb_size != hidden_size, via a projection
    init: str = "uniform"  # uniform: U(-init_scale, init_scale); fan_in: U(-1/sqrt(n), 1/sqrt(n))
    init_scale: float = 0.1
    orthogonal_recurrent: bool = False  # orthogonal weight_hh (per gate block)
    forget_bias: float = 0.0  # added to the LSTM forget-gate bias at initialization
    qrnn_window: int = 1  # qrnn: inputs the first layer reads per step (2: x_t and x_{t-1}, as AWD-QRNN)

    def __post_init__(self) -> None:
        if self.cell not in LM_CELLS:
            raise UnrollError(f"unknown cell {self.cell!r}; choose one of {', '.join(LM_CELLS)}")
        if self.init not in ("uniform", "fan_in"):
            raise UnrollError(f"unknown init {self.init!r}; choose uniform or fan_in")
        if self.vocab_size < 1 or self.emb_size < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise UnrollError("vocab_size, emb_size, hidden_size and num_layers must be positive")
        for name in ("dropout", "input_dropout", "hidden_dropout", "emb_dropout", "weight_dropout"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) < 1.0:
                raise UnrollError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.forget_bias and self.cell not in ("lstm", "qrnn"):
            raise UnrollError(f"forget_bias applies to the lstm and qrnn cells only (cell is {self.cell}); set it to 0")
        if self.orthogonal_recurrent and self.cell == "qrnn":
            raise UnrollError("orthogonal_recurrent: the qrnn cell has no recurrent weight matrix; turn it off")
        if self.qrnn_window != 1 and self.cell != "qrnn":
            raise UnrollError(f"qrnn_window applies to the qrnn cell only (cell is {self.cell}); set it to 1")
        if self.qrnn_window < 1:
            raise UnrollError(f"qrnn_window must be at least 1, got {self.qrnn_window}")

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
    def gates(self) -> int:
        """How many weight blocks a cell stacks in weight_ih / weight_hh (4 for LSTM: i, f, g, o; QRNN: z, f, o)."""
        return GATES[self.cell]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return settings_from_dict(cls, d, "model")


# ---------------------------------------------------------------------------------------------
# Training settings and presets (unroll.train reads these; the CLI overrides any field).

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "ntasgd")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where the hardware runs it natively (unroll.models.device)
SCHEDULES = ("constant", "zaremba", "plateau", "cosine")


@dataclass
class TrainConfig:
    """How to train: data, batching, optimizer, schedule, stopping. Saved in config.json as "train".

    The loss is the MEAN cross-entropy per token. TensorFlow's PTB tutorial sums the loss over
    the ``num_steps`` time steps (and averages over the batch), so its gradients are ``bptt``
    times larger: its lr 1 / clip 5 at 20 steps equals lr 20 / clip 0.25 here. ptb-small stores
    the latter (a literal lr 20 / clip 5 diverges).
    """

    # data
    data: str = "tinyshakespeare"  # a registered dataset name or a path (file or directory)
    level: str | None = None  # char | word | whitespace; None: the dataset's own (ptb: whitespace)
    max_vocab: int | None = None  # keep the most frequent types; the rest become <unk>
    encoding: str | None = None  # text encoding of the data files (None: UTF-8)
    # batching
    batch_size: int = 20
    bptt: int = 35  # truncated-BPTT window (time steps per update)
    random_bptt: bool = False  # AWD-LSTM: window length ~ N(bptt, 5), bptt/2 with p=0.05
    eval_batch_size: int = 10
    test_batch_size: int = 1  # the TensorFlow tutorial tests with batch size 1
    final_test: bool = True  # when training ends, score the best checkpoint on the test split
    # optimization
    optimizer: str = "sgd"  # sgd | momentum | nesterov | adagrad | adadelta | rmsprop | adam | adamw | ntasgd
    lr: float = 20.0
    momentum: float = 0.9  # momentum / nesterov; rmsprop's momentum is 0 unless set here and used
    betas: tuple[float, float] = (0.9, 0.999)  # adam / adamw
    weight_decay: float = 0.0
    ar: float = 0.0  # activation regularization: + ar * mean(h^2) on the last layer's dropped output (AWD's alpha)
    tar: float = 0.0  # temporal activation regularization: + tar * mean((h_t - h_{t-1})^2), raw output (beta)
    clip: float = 0.25  # max global gradient norm; 0 = no clipping
    nonmono: int = 5  # ntasgd: switch to averaging when valid loss is no better than n evals ago
    average_from: float | None = None  # average the weights over the rest of the run from this fraction of it on
    #   (0.75: the last quarter, by updates or by the time budget); evaluation and best/ use the average
    # learning-rate schedule
    schedule: str = "zaremba"  # constant | zaremba | plateau | cosine
    max_epoch: int = 4  # zaremba: epochs at the initial lr; then lr *= lr_decay each epoch
    lr_decay: float = 0.5  # zaremba: factor per epoch; plateau: factor when valid stalls
    plateau_patience: int = 0  # plateau: evaluations without improvement before decaying
    warmup_steps: int = 0  # cosine: linear warmup steps
    min_lr: float = 0.0  # cosine: final lr; plateau: floor
    # length and stopping
    epochs: int = 13
    max_steps: int | None = None  # stop after this many updates (all epochs counted)
    time_budget: float | None = None  # seconds of wall time (evaluations included) for the whole run
    patience: int = 0  # early stopping: evaluations without improvement; 0 = off
    eval_every: int = 0  # also evaluate every N updates; 0 = only at the end of each epoch
    # numerics
    precision: str = "fp32"  # fp32 | bf16 (autocast; fp32 master weights and loss) | auto (bf16 where native)
    max_rollbacks: int = 3  # non-finite loss: roll back and halve the lr at most this often
    seed: int = 1234

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON gives a list
        for name, choices in (
            ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("precision", PRECISIONS),
        ):
            if getattr(self, name) not in choices:
                raise UnrollError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if self.level not in (None, "char", "word", "whitespace"):
            raise UnrollError(f"unknown level {self.level!r}; choose one of char, word, whitespace")
        for name in ("batch_size", "bptt", "eval_batch_size", "test_batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise UnrollError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or min(self.clip, self.weight_decay, self.ar, self.tar) < 0:
            raise UnrollError("lr must be positive and clip, weight_decay, ar and tar non-negative")
        if self.max_steps is not None and self.max_steps < 1:
            raise UnrollError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UnrollError(f"time_budget must be positive, got {self.time_budget}")
        if self.average_from is not None and not 0 <= self.average_from < 1:
            raise UnrollError(f"average_from is a fraction of the run in [0, 1), got {self.average_from}")
        if self.average_from is not None and self.optimizer == "ntasgd":
            raise UnrollError("ntasgd averages the weights itself; drop average_from or pick another optimizer")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return settings_from_dict(cls, d, "training")


@dataclass
class Preset:
    """A named recipe: model settings (all of ModelConfig but vocab_size) and training settings."""

    description: str
    model: dict[str, Any]
    train: TrainConfig
    # The recipe to use instead where this one's bf16 is not native (`unroll train` says so):
    # a recipe tuned for bf16 speed can lose its point in fp32.
    without_bf16: str | None = None


# Zaremba et al. 2014 (the TensorFlow PTB tutorial's SmallConfig / MediumConfig / LargeConfig).
# TF's lr and clip act on the loss summed over `bptt` steps; the values here are for the mean loss:
# lr = lr_tf * bptt, clip = clip_tf / bptt (small: 1 * 20 = 20, 5 / 20 = 0.25).
PRESETS: dict[str, Preset] = {
    "ptb-small": Preset(
        "Zaremba et al. 2014 small: 2x200 LSTM, no dropout, 13 epochs (published test ppl 114.5)",
        dict(cell="lstm", emb_size=200, hidden_size=200, num_layers=2, dropout=0.0, init_scale=0.1),
        TrainConfig(data="ptb", batch_size=20, bptt=20, optimizer="sgd", lr=20.0, clip=0.25,
                    schedule="zaremba", max_epoch=4, lr_decay=0.5, epochs=13, eval_batch_size=20),
    ),
    "ptb-medium": Preset(
        "Zaremba et al. 2014 medium: 2x650 LSTM, dropout 0.5, 39 epochs (published test ppl 82.7)",
        dict(cell="lstm", emb_size=650, hidden_size=650, num_layers=2, dropout=0.5, init_scale=0.05),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=35.0, clip=5 / 35,
                    schedule="zaremba", max_epoch=6, lr_decay=0.8, epochs=39, eval_batch_size=20),
    ),
    "ptb-large": Preset(
        "Zaremba et al. 2014 large: 2x1500 LSTM, dropout 0.65, 55 epochs (published test ppl 78.4)",
        dict(cell="lstm", emb_size=1500, hidden_size=1500, num_layers=2, dropout=0.65, init_scale=0.04),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=35.0, clip=10 / 35,
                    schedule="zaremba", max_epoch=14, lr_decay=1 / 1.15, epochs=55, eval_batch_size=20),
    ),
    # Best PTB perplexity in 60 minutes of wall time on a 2-core CPU (evaluation included).
    # Why these settings:
    # - A qrnn cell: every matrix product leaves the time loop, so a 2x650 qrnn trains at about
    #   1.8x the tokens/s of a 2x650 LSTM here, and per token it learns as fast: after 2 epochs
    #   with these settings (cosine over the 2 epochs), valid 161.8 against the LSTM's 161.1
    #   (measured 2026-11-23, one thread each). In an hour that is about twice the epochs.
    # - Tied weights (Press & Wolf 2017, Inan et al. 2017) and AWD-QRNN's regularizers (Merity et
    #   al. 2017/2018): variational (locked) dropout 0.4 on the input and output and 0.3 between
    #   layers, embedding dropout 0.1, weight dropout 0.1 on the qrnn weights, AR 2 / TAR 1.
    #   Locked masks are also far cheaper to draw on CPU than per-step ones. Not AWD's weight
    #   decay: with it, plain SGD can no longer fold the clip into the lr, and a step costs ~15%
    #   more. Per step (bf16, batch 20 x 35): 73 ms without these regularizers, 87 ms with them.
    # - SGD lr 20 / clip 0.25 on the mean loss, as the plain loop of BASELINES.md (test 78.68 in
    #   60 minutes), but with a cosine schedule that ends at the time budget instead of lr / 4 on
    #   a stall: the run knows its horizon, so it anneals exactly once, at the end.
    # - bf16 autocast on AMX and the fused decoder + loss (unroll.models.loss: at 650 wide, most
    #   of the FLOPs are in the 10k-word output layer). Precision "auto": fp32 on a CPU without
    #   native bf16, where a step costs 3.3x more (AVX2, 2026-11-30: 421 s an epoch against 127).
    # - Validation with batch 20 (one evaluation per epoch, inside the budget); the test with
    #   batch 10, as the plain loop tests.
    # History (benchmarks/ptb_60min.py, 2026-11-23): the first version (dropout 0.4 everywhere, no
    # weight dropout or AR/TAR) reached valid 82.63 / test 77.26 in 34 epochs; after about 25
    # epochs it stopped gaining, train ppl 64 under dropout against valid 83, hence the
    # regularizers. A third layer plus weight decay cost 60% more time per epoch (163 s against
    # 101 s), too much for the hour. BENCHMARKS.md has the runs.
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
    # The same hour on a CPU without bf16 (AVX2, fp32 compute), where a step costs ~3x more and
    # ptb-cpu-60min makes only ~6 epochs (it then loses to the plain loop: test 104.6 against 102.6,
    # BENCHMARKS.md). Why these settings (15-minute runs side by side, 2026-11-30, AVX2):
    # - No AWD extras (weight dropout, embedding dropout, AR/TAR): built for ~29 epochs, they cost
    #   more than they return in ~6-9. Without them, and with AWD-QRNN's window of 2 on the first
    #   layer: valid 169.4 at 15 minutes against the bf16 preset's 187.8 (plain loop: 182.0).
    # - A 400-wide tied embedding under the 650-wide layers, through a projection (ModelConfig.projects):
    #   the output layer, most of a step's FLOPs, shrinks by 400/650, so an epoch takes 388 s
    #   against 602 s; valid 153.5 at 15 minutes.
    # The hour (benchmarks/ptb_60min.py --preset ptb-cpu-60min-fp32, AVX2, 2026-11-30): valid 92.62 /
    # test 88.39 in 9.5 epochs; the plain loop on that machine kind: 105.52 / 102.62 in 4.8.
    # Tried for the hour and no better: a 300-wide embedding at batch 10 (88.30, twice the updates).
    "ptb-cpu-60min-fp32": Preset(
        "Best PTB perplexity in 60 minutes on a 2-core CPU without bf16 (AVX2): tied 2x650 qrnn (window 2) "
        "over a 400-wide embedding, variational dropout, cosine to the budget",
        dict(cell="qrnn", emb_size=400, hidden_size=650, num_layers=2, dropout=0.4, input_dropout=0.4,
             hidden_dropout=0.3, locked_dropout=True, tie_weights=True, qrnn_window=2, init_scale=0.1),
        TrainConfig(data="ptb", batch_size=20, bptt=35, optimizer="sgd", lr=20.0, clip=0.25,
                    schedule="cosine", warmup_steps=0, min_lr=0.2, epochs=100, time_budget=3600.0,
                    precision="auto", eval_batch_size=20, test_batch_size=10),
    ),
    # Targets here (benchmarks/shakespeare_char.py): valid < 1.886 nats/char within 71 s (nanoGPT's
    # CPU recipe) and <= 1.47 within 15 minutes, 90/10 split. bf16 autocast where native (auto):
    # the LSTM runs on oneDNN's bf16 kernels (AMX). bptt 64 rather than 128: twice the updates for the same tokens,
    # which is what a short budget needs (71 s: valid 1.712 at bptt 64 against 1.921 at bptt 128,
    # measured 2026-11-23). The cosine schedule ends at the time budget when one is given
    # (--time-budget 71s / 15m), so a short run still anneals.
    "shakespeare-char": Preset(
        "Tiny Shakespeare, characters: 2x512 LSTM, dropout 0.25, bf16, Adam with warmup + cosine",
        dict(cell="lstm", emb_size=128, hidden_size=512, num_layers=2, dropout=0.25, init="fan_in"),
        TrainConfig(data="tinyshakespeare", level="char", batch_size=32, bptt=64, optimizer="adam", lr=3e-3,
                    clip=1.0, schedule="cosine", warmup_steps=100, min_lr=1e-4, epochs=10,
                    eval_batch_size=32, test_batch_size=32, precision="auto"),
    ),
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
    if level == "char":
        char = PRESETS["char-cpu"]
        return Preset("defaults for character data", dict(char.model), replace(char.train, time_budget=None, epochs=10))
    return Preset(
        "defaults for word data",
        dict(cell="lstm", emb_size=256, hidden_size=256, num_layers=2, dropout=0.3, tie_weights=True, init_scale=0.1),
        TrainConfig(level=level, batch_size=20, bptt=35, optimizer="sgd", lr=20.0, clip=0.25, schedule="plateau",
                    lr_decay=0.25, epochs=20, patience=4, eval_batch_size=10, test_batch_size=10),
    )
