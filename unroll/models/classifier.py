"""An LSTM sentence classifier (the classic Theano LSTM sentiment tutorial) and its checkpoints.

    tokens [T, B] ─► embedding ─► LSTM (L layers, ─► pool over each example's ─► dropout ─► linear ─► logits [B, C]
    mask / lengths   (emb_size,    optionally both     real steps: mean (the                    (softmax: the class
                     embedding and directions)         tutorial), last, max or                  probabilities)
                     word dropout)                     concat (all three))

Padding is trailing and never reaches a result: left to right it comes after every real step,
the backward direction of a bidirectional model reads packed sequences, and pooling looks at the
real steps only. An example gets the same logits in any padded batch as alone.

A checkpoint is a directory in the language models' format family::

    model.safetensors   embedding.weight, rnn.* (torch nn.LSTM names; "_reverse" for the
                        backward direction), classifier.weight [C, F], classifier.bias [C]
    config.json         {"format": "unroll", "version": 1, "task": "classify", "classifier": {...},
                         "labels": [...], "text": {...}, "train": {...}, ...}
    vocab.json          the vocabulary

Warm start (Dai & Le 2015): the embedding and the recurrent weights of a trained
``LanguageModel`` have the same names and shapes here, so :func:`warm_start` copies them in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from unroll import cells
from unroll.checkpoint import CONFIG, Checkpoint, check_params, read_directory, write_directory
from unroll.classify_config import ClassifierConfig
from unroll.config import ModelConfig
from unroll.errors import CheckpointError
from unroll.init import orthogonal
from unroll.text import TextSpec, Vocab

TASK = "classify"


class Classifier(nn.Module):
    """Embedding -> recurrent layers -> pooling over time -> dropout -> linear, from a :class:`ClassifierConfig`."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_size)
        self.emb_dropout = nn.Dropout(cfg.emb_dropout)
        cell = cells.get(cfg.cell)  # a classifier cell's torch layer is one of torch's nn.RNNBase stacks
        between = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.rnn = cell.torch_class()(cfg.emb_size, cfg.hidden, cfg.num_layers, dropout=between,
                                      bidirectional=cfg.bidirectional, **cell.options)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.features, cfg.num_classes)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The tutorial's initialization: embedding and classifier N(0, 0.01^2), every square gate
        block orthogonal (others uniform +-1/sqrt(fan_in)), biases zero. Seeded by torch's generator."""
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        h = self.cfg.hidden
        for name, p in self.named_parameters():
            if name.startswith("rnn.weight"):
                blocks = [orthogonal(h, rng) if p.size(1) == h else
                          rng.uniform(-1, 1, (h, p.size(1))) / np.sqrt(p.size(1)) for _ in range(p.size(0) // h)]
                p.copy_(torch.from_numpy(np.concatenate(blocks)))
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.from_numpy(0.01 * rng.standard_normal(tuple(p.shape))))

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits ``[B, C]`` for token ids ``inputs [T, B]`` with ``lengths [B]`` real tokens each."""
        T, B = inputs.shape
        lengths = torch.full((B,), T, dtype=torch.int64) if lengths is None else torch.as_tensor(lengths).cpu()
        x = self.emb_dropout(self.embedding(inputs))
        if self.training and self.cfg.word_dropout:
            x = x * (torch.rand(T, B, 1, device=x.device) >= self.cfg.word_dropout).to(x.dtype)
        # Left to right, trailing padding cannot reach a real step, so only the backward direction
        # needs packing (which runs several times slower on CPUs: no oneDNN kernel).
        packed = self.cfg.bidirectional and bool((lengths != T).any())
        if packed:
            x = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.rnn(x)
        if packed:
            out = pad_packed_sequence(out, total_length=T)[0]
        return self.classifier(self.dropout(self.pool(out, lengths.to(out.device))))

    def pool(self, out: Tensor, lengths: Tensor) -> Tensor:
        """One feature vector ``[B, F]`` per example from the outputs ``[T, B, F]`` at its real steps."""
        out = out.to(torch.promote_types(out.dtype, torch.float32))  # sums over hundreds of steps: not in bf16
        mask = (torch.arange(out.size(0), device=out.device)[:, None] < lengths[None, :]).unsqueeze(-1)
        pooling = self.cfg.pooling
        if pooling == "concat":  # ULMFiT (Howard & Ruder 2018)
            return torch.cat([self._last(out, lengths), self._max(out, mask), self._mean(out, mask, lengths)], dim=-1)
        if pooling == "mean":
            return self._mean(out, mask, lengths)
        if pooling == "max":
            return self._max(out, mask)
        return self._last(out, lengths)

    @staticmethod
    def _mean(out: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        return (out * mask).sum(0) / lengths[:, None].to(out.dtype)  # the tutorial: (h * mask).sum(0) / mask.sum(0)

    @staticmethod
    def _max(out: Tensor, mask: Tensor) -> Tensor:
        return out.masked_fill(~mask, float("-inf")).max(0).values

    def _last(self, out: Tensor, lengths: Tensor) -> Tensor:
        """The output at each example's last real step (and, bidirectional, the backward direction's at step 0)."""
        last = out[lengths - 1, torch.arange(out.size(1), device=out.device)]  # [B, dirs * H] at each last real step
        if not self.cfg.bidirectional:
            return last
        h = self.cfg.hidden  # backward direction: its final state is its output at step 0
        return torch.cat([last[:, :h], out[0, :, h:]], dim=-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parameter_shapes(cfg: ClassifierConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every stored parameter (torch's nn.LSTM / nn.GRU / nn.RNN names)."""
    g, h, dirs = cells.get(cfg.cell).gates, cfg.hidden, ("", "_reverse") if cfg.bidirectional else ("",)
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (cfg.vocab_size, cfg.emb_size)}
    for k in range(cfg.num_layers):
        n_in = cfg.emb_size if k == 0 else h * len(dirs)
        for d in dirs:
            shapes |= {f"rnn.weight_ih_l{k}{d}": (g * h, n_in), f"rnn.weight_hh_l{k}{d}": (g * h, h),
                       f"rnn.bias_ih_l{k}{d}": (g * h,), f"rnn.bias_hh_l{k}{d}": (g * h,)}
    return shapes | {"classifier.weight": (cfg.num_classes, cfg.features), "classifier.bias": (cfg.num_classes,)}


# ---- warm start from a language model ----------------------------------------------------

def encoder_from_lm(lm: ModelConfig) -> dict[str, Any]:
    """The classifier settings that make a language model's weights fit (:func:`warm_start`)."""
    return {"cell": lm.cell, "emb_size": lm.emb_size, "hidden_size": lm.hidden_size, "num_layers": lm.num_layers}


@torch.no_grad()
def warm_start(model: Classifier, lm: Checkpoint) -> list[str]:
    """Copy a language model's ``embedding.weight`` and ``rnn.*`` into ``model`` (Dai & Le 2015).

    The backward direction of a bidirectional classifier and the linear layer keep their fresh
    initialization. Returns the names copied.
    """
    own = dict(model.named_parameters())
    copied = []
    for name, value in lm.params.items():
        if name != "embedding.weight" and not name.startswith("rnn."):
            continue
        if name not in own or tuple(own[name].shape) != value.shape:
            have = tuple(own[name].shape) if name in own else "nothing"
            raise CheckpointError(
                f"the language model's {name} {value.shape} does not fit the classifier ({have}); "
                f"keep cell, emb_size, hidden_size and num_layers as the language model has them"
            )
        own[name].copy_(torch.from_numpy(np.asarray(value)))
        copied.append(name)
    return copied


# ---- checkpoints -------------------------------------------------------------------------

@dataclass
class ClassifierCheckpoint:
    """What a classifier checkpoint directory holds."""

    model: ClassifierConfig
    params: dict[str, np.ndarray]
    vocab: Vocab
    labels: list[str]
    text: TextSpec
    extra: dict[str, Any] = field(default_factory=dict)  # other config.json sections ("train", "results", ...)


def save_classifier(
    model: Classifier, directory: str | os.PathLike, vocab: Vocab, labels: list[str], text: TextSpec,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` as a checkpoint directory (each file atomically; see :mod:`unroll.checkpoint`)."""
    params = {k: v.detach().float().cpu().numpy().copy() for k, v in model.state_dict().items()}
    header = {"classifier": model.cfg.to_dict(), "labels": list(labels)}
    write_directory(directory, params, parameter_shapes(model.cfg), header, vocab.to_dict(), text=text, extra=extra,
                    task=TASK)


def read_classifier(directory: str | os.PathLike) -> ClassifierCheckpoint:
    """Read and check a classifier checkpoint; any problem is a one-line :class:`CheckpointError`."""
    stored = read_directory(directory, TASK)
    sections = stored.sections
    try:
        cfg = ClassifierConfig.from_dict(sections["classifier"])
        labels, vocab = [str(x) for x in sections["labels"]], Vocab.from_dict(stored.vocab)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{stored.directory / CONFIG}: incomplete classifier config ({type(e).__name__}: {e})") from None
    if stored.text is None:
        raise CheckpointError(f"{stored.directory / CONFIG}: incomplete classifier config (no text section)")
    if len(labels) != cfg.num_classes or len(vocab) != cfg.vocab_size:
        raise CheckpointError(f"{stored.directory}: labels / vocabulary do not match the classifier config")
    check_params(stored.params, parameter_shapes(cfg), stored.directory)
    extra = {k: v for k, v in sections.items() if k not in ("classifier", "labels", "text")}
    return ClassifierCheckpoint(cfg, stored.params, vocab, labels, stored.text, extra)


def load_classifier(
    directory: str | os.PathLike, device: torch.device | str | None = None
) -> tuple[Classifier, ClassifierCheckpoint]:
    """The model (float32, eval mode) and the checkpoint's vocabulary, labels and settings."""
    ckpt = read_classifier(directory)
    model = Classifier(ckpt.model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in ckpt.params.items()})
    return model.to(device).eval(), ckpt

