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

The ``qrnn`` cell (``unroll.models.qrnn``, ``unroll.reference.qrnn``) has no recurrent matrix: each layer
stores only ``rnn.weight_ih_l{k}`` [3H, in] and ``rnn.bias_ih_l{k}`` [3H], gate blocks (z, f, o);
with ``qrnn_window`` w, the first layer's ``weight_ih_l0`` is [3H, w * emb_size].

Each file is written atomically, so an interrupted save leaves the previous file intact.
Classifier checkpoints (``"task": "classify"`` in config.json) use the same three files; see
``unroll.models.classifier``.
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

from unroll.config import ModelConfig
from unroll.errors import CheckpointError
from unroll.io import atomic_write_bytes, atomic_write_json

FORMAT = "unroll"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
VOCAB = "vocab.json"


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every stored parameter, in a fixed order."""
    g, h = cfg.gates, cfg.hidden_size
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (cfg.vocab_size, cfg.emb_size)}
    for k in range(cfg.num_layers):
        n_in = cfg.emb_size * cfg.qrnn_window if k == 0 else h
        shapes[f"rnn.weight_ih_l{k}"] = (g * h, n_in)
        if cfg.cell != "qrnn":  # qrnn: no recurrent weights (see the module docstring)
            shapes[f"rnn.weight_hh_l{k}"] = (g * h, h)
        shapes[f"rnn.bias_ih_l{k}"] = (g * h,)
        if cfg.cell != "qrnn":
            shapes[f"rnn.bias_hh_l{k}"] = (g * h,)
    if cfg.projects:
        shapes["projection.weight"] = (cfg.emb_size, h)
    if not cfg.tie_weights:
        shapes["decoder.weight"] = (cfg.vocab_size, h)
    shapes["decoder.bias"] = (cfg.vocab_size,)
    return shapes


@dataclass
class Checkpoint:
    """What a checkpoint directory holds, as plain NumPy arrays and dicts."""

    params: dict[str, np.ndarray]
    model: ModelConfig
    vocab: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # other config.json sections ("text", "train", ...)


def save_checkpoint(directory: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Write weights, config and vocabulary into ``directory`` (created if needed)."""
    directory = Path(directory)
    _check_params(ckpt.params, ckpt.model, directory)
    arrays = {k: np.ascontiguousarray(v) for k, v in ckpt.params.items()}
    atomic_write_bytes(directory / WEIGHTS, st_save(arrays, metadata={"format": FORMAT}))
    config = {"format": FORMAT, "version": VERSION, "model": ckpt.model.to_dict(), **ckpt.extra}
    atomic_write_json(directory / CONFIG, config)
    atomic_write_json(directory / VOCAB, ckpt.vocab)


def load_checkpoint(directory: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint directory; any problem becomes a one-line :class:`CheckpointError`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    config = read_json(directory / CONFIG)
    if config.get("task") == "classify":
        raise CheckpointError(f"{directory}: a classifier checkpoint, not a language model; use unroll classify eval / predict")
    if config.get("format") != FORMAT or "model" not in config:
        raise CheckpointError(f"{directory / CONFIG}: not an unroll checkpoint config")
    if config.get("version") != VERSION:
        raise CheckpointError(
            f"{directory / CONFIG}: checkpoint version {config.get('version')} is not supported "
            f"by this unroll (expects {VERSION}); upgrade unroll"
        )
    model = ModelConfig.from_dict(config["model"])
    vocab = read_json(directory / VOCAB)
    params = read_weights(directory)
    _check_params(params, model, directory)
    extra = {k: v for k, v in config.items() if k not in ("format", "version", "model")}
    return Checkpoint(params=params, model=model, vocab=vocab, extra=extra)


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


def _check_params(params: dict[str, np.ndarray], cfg: ModelConfig, where: Path) -> None:
    expected = parameter_shapes(cfg)
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
