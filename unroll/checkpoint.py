"""The model checkpoint format, shared by the NumPy and the PyTorch engines.

A checkpoint is a directory::

    model.safetensors   the weights (safetensors: no pickle, safe to load from strangers)
    config.json         {"format": "unroll", "version": 1, "model": ModelConfig, "text": {...}, ...}
    vocab.json          the vocabulary (unroll.text.Vocab.to_dict())

Parameter names and shapes follow ``torch.nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` so that the fast
engine loads them with no renaming (H = hidden_size, E = emb_size, V = vocab_size, G = gates:
1 for RNN, 3 for GRU, 4 for LSTM; the input size of layer k is E for k = 0, else H)::

    embedding.weight        [V, E]
    rnn.weight_ih_l{k}      [G*H, in]   gate blocks stacked in PyTorch order:
    rnn.weight_hh_l{k}      [G*H, H]       LSTM (i, f, g, o); GRU (r, z, n)
    rnn.bias_ih_l{k}        [G*H]
    rnn.bias_hh_l{k}        [G*H]
    projection.weight       [E, H]      only when tied with E != H: the last layer's output -> E
    decoder.weight          [V, H]      absent when config.model.tie_weights: it is embedding.weight
    decoder.bias            [V]

With ``adaptive_softmax`` (cutoffs c_0 < ... < c_{n-1}, c_n = V; d_i = D // div_value^(i+1), D the
decoder's input width) the decoder is replaced by a head and n tail clusters::

    adaptive.head.weight    [c_0 + n, D]   the c_0 most frequent tokens, then one entry per cluster
    adaptive.head.bias      [c_0 + n]
    adaptive.tail.{i}.0.weight  [d_i, D]   cluster i's projection
    adaptive.tail.{i}.1.weight  [c_{i+1} - c_i, d_i]   its output layer (tokens c_i .. c_{i+1} - 1)

A cell without recurrent weights (``Cell.recurrent`` in ``unroll.cells``, e.g. the ``qrnn``) stores
only ``rnn.weight_ih_l{k}`` [G*H, in] and ``rnn.bias_ih_l{k}`` [G*H] per layer; a windowed cell's first
layer reads w = ``qrnn_window`` inputs, so its ``weight_ih_l0`` is [G*H, w * emb_size].

Each file is written atomically, so an interrupted save leaves the previous file intact; a
training run stages each checkpoint whole and renames it into place (``unroll.rundir``), and
every reader given a run directory reads its latest checkpoint.
A tokenizer that learned from the training split (``unroll.text.levels``) adds its own files.

This module owns the wrapper every task shares (format, version, task, weights, vocabulary,
text spec, tokenizer files: :func:`write_directory`, :func:`read_directory`); each task brings
its own config section and parameter shapes. Classifier checkpoints (``"task": "classify"``)
are in ``unroll.models.classifier``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from unroll import cells, rundir
from unroll.config import ModelConfig
from unroll.errors import CheckpointError, UnrollError
from unroll.io import atomic_write_bytes, atomic_write_json
from unroll.text.spec import TextSpec

FORMAT = "unroll"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.json"
# what to say when a directory holds another task's checkpoint, by the task it holds
WRONG_TASK = {
    None: "a language-model checkpoint, not a classifier; train one with unroll classify train",
    "classify": "a classifier checkpoint, not a language model; use unroll classify eval / predict",
}


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every stored parameter, in a fixed order."""
    g, h, recurrent = cfg.gates, cfg.hidden_size, cells.get(cfg.cell).recurrent
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (cfg.vocab_size, cfg.emb_size)}
    for k in range(cfg.num_layers):
        n_in = cfg.emb_size * cfg.qrnn_window if k == 0 else h
        shapes[f"rnn.weight_ih_l{k}"] = (g * h, n_in)
        if recurrent:
            shapes[f"rnn.weight_hh_l{k}"] = (g * h, h)
        shapes[f"rnn.bias_ih_l{k}"] = (g * h,)
        if recurrent:
            shapes[f"rnn.bias_hh_l{k}"] = (g * h,)
    if cfg.projects:
        shapes["projection.weight"] = (cfg.emb_size, h)
    if cfg.adaptive_softmax:
        shapes.update(adaptive_softmax_shapes(cfg))
        return shapes
    if not cfg.tie_weights:
        shapes["decoder.weight"] = (cfg.vocab_size, h)
    shapes["decoder.bias"] = (cfg.vocab_size,)
    return shapes


def adaptive_softmax_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The adaptive softmax's parameters, named as ``torch.nn.AdaptiveLogSoftmaxWithLoss`` names them."""
    D, edges = cfg.decoder_size, [*cfg.cutoffs, cfg.vocab_size]
    shapes: dict[str, tuple[int, ...]] = {"adaptive.head.weight": (edges[0] + len(cfg.cutoffs), D),
                                          "adaptive.head.bias": (edges[0] + len(cfg.cutoffs),)}
    for i, d in enumerate(cfg.tail_sizes):
        shapes[f"adaptive.tail.{i}.0.weight"] = (d, D)
        shapes[f"adaptive.tail.{i}.1.weight"] = (edges[i + 1] - edges[i], d)
    return shapes


@dataclass
class Checkpoint:
    """What a language-model checkpoint directory holds, as plain NumPy arrays and dicts."""

    params: dict[str, np.ndarray]
    model: ModelConfig
    vocab: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # other config.json sections ("text", "train", ...)
    text: TextSpec | None = None  # written as the "text" section, with a learned tokenizer's files


def save_checkpoint(directory: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Write weights, config and vocabulary into ``directory`` (created if needed)."""
    write_directory(directory, ckpt.params, parameter_shapes(ckpt.model), {"model": ckpt.model.to_dict()},
                    ckpt.vocab, text=ckpt.text, extra=ckpt.extra)


def load_checkpoint(directory: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint directory; any problem becomes a one-line :class:`CheckpointError`."""
    stored = read_directory(directory)
    if "model" not in stored.sections:
        raise CheckpointError(f"{stored.directory / CONFIG}: not an unroll checkpoint config")
    model = ModelConfig.from_dict(stored.sections["model"])
    check_params(stored.params, parameter_shapes(model), stored.directory)
    extra = {k: v for k, v in stored.sections.items() if k != "model"}
    return Checkpoint(params=stored.params, model=model, vocab=stored.vocab, extra=extra, text=stored.text)


# ---- the wrapper every task shares ---------------------------------------------------------

@dataclass
class Stored:
    """A checkpoint directory read and checked up to the task's own sections."""

    directory: Path
    sections: dict[str, Any]  # config.json without format, version and task
    params: dict[str, np.ndarray]
    vocab: dict[str, Any]
    text: TextSpec | None  # the "text" section, its learned tokenizer loaded


def write_directory(
    directory: str | os.PathLike,
    params: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    header: dict[str, Any],
    vocab: dict[str, Any],
    *,
    text: TextSpec | None = None,
    extra: dict[str, Any] | None = None,
    task: str | None = None,
) -> None:
    """Write a checkpoint: config.json is ``{format, version[, task], **header[, text], **extra}``."""
    directory = Path(directory)
    check_params(params, shapes, directory)
    tag = {"format": FORMAT} | ({"task": task} if task else {})
    arrays = {k: np.ascontiguousarray(v) for k, v in params.items()}
    atomic_write_bytes(directory / WEIGHTS, st_save(arrays, metadata=tag))
    config = {"format": FORMAT, "version": VERSION} | ({"task": task} if task else {}) | header
    if text is not None:
        config["text"] = text.to_dict()
        text.save_files(directory)
    atomic_write_json(directory / CONFIG, config | dict(extra or {}))
    atomic_write_json(directory / VOCAB, vocab)


def read_directory(directory: str | os.PathLike, task: str | None = None) -> Stored:
    """Read the shared wrapper of a ``task`` checkpoint (None: a language model); given a
    training run's directory, its latest checkpoint."""
    directory = rundir.resolve(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    config = read_json(directory / CONFIG)
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{directory / CONFIG}: not an unroll checkpoint config")
    found = config.get("task")
    if found != task:
        raise CheckpointError(f"{directory}: {WRONG_TASK.get(found, f'a {found!r} checkpoint')}")
    if config.get("version") != VERSION:
        raise CheckpointError(
            f"{directory / CONFIG}: checkpoint version {config.get('version')} is not supported "
            f"by this unroll (expects {VERSION}); upgrade unroll"
        )
    vocab = read_json(directory / VOCAB)
    params = read_weights(directory)
    text = read_text(directory, config["text"]) if "text" in config else None
    sections = {k: v for k, v in config.items() if k not in ("format", "version", "task")}
    return Stored(directory, sections, params, vocab, text)


def read_text(directory: Path, section: Any) -> TextSpec:
    """The text spec of config.json's "text" section, with its learned tokenizer's files read."""
    if not isinstance(section, dict):
        raise CheckpointError(f"{directory / CONFIG}: the text section is not a JSON object")
    try:
        spec = TextSpec.from_dict(section)
    except (UnrollError, TypeError) as e:
        raise CheckpointError(f"{directory / CONFIG}: bad text section ({e})") from None
    try:
        return spec.load_files(directory)
    except OSError as e:
        raise CheckpointError(f"{directory}: missing or unreadable tokenizer file ({e})") from None


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """The arrays in ``directory/model.safetensors`` (no pickle), or a one-line CheckpointError."""
    path = directory / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        return st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated weights file ({e})") from None


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing file; is this a checkpoint directory?")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return obj


def check_params(params: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], where: Path) -> None:
    """A one-line CheckpointError unless ``params`` has exactly the ``expected`` names and shapes."""
    missing = [k for k in expected if k not in params]
    unexpected = [k for k in params if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: parameters do not match the config (missing: {missing or 'none'}; "
            f"unexpected: {unexpected or 'none'})"
        )
    for name, shape in expected.items():
        if tuple(params[name].shape) != shape:
            raise CheckpointError(
                f"{where}: {name} has shape {tuple(params[name].shape)}, config says {shape}"
            )
