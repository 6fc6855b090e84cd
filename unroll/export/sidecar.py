"""The JSON file beside an exported model: everything another program needs to drive it.

``model.onnx`` gets ``model.json`` (the same path with ``.json``)::

    {"format": "unroll-onnx", "version": 1,
     "model": "model.onnx", "quantization": null | "int8-dynamic",
     "exporter": "legacy" | "dynamo", "opset": 17,
     "cell": "lstm", "num_layers": 2, "hidden_size": 650, "emb_size": 650, "vocab_size": 10000,
     "tied": true, "projection": false, "qrnn_window": 1,
     "inputs": {"tokens": {"shape": ["time", "batch"], "dtype": "int64"}},
     "output": {"name": "log_probs", "scores": "log_probs" | "logits", "last_only": false,
                "shape": ["time", "batch", 10000], "dtype": "float32"},
     "state": [{"input": "h_l0", "output": "h_l0_out", "what": "h", "layer": 0,
                "shape": ["batch", 650], "dtype": "float32", "batch_axis": 0, "initial": "zeros"}, ...],
     "vocab": {...},                 # unroll.text.Vocab.to_dict(): "itos", the id of each token
     "text": {...},                  # unroll.text.TextSpec.to_dict(): level, lower, unit, bos, eos
     "start_tokens": ["<eos>"],      # fed before a unit's first token, as in training
     "line_end": "\n",               # appended to a line before it is tokenized (markers, closing newline)
     "joiner": " ",                  # what joins tokens back into text
     "tokenizer_files": [],          # a learned tokenizer's files, beside the model
     "checked": {...}}               # what the export's own check measured

This module reads and writes it with the standard library only, so a program that runs the model
with onnxruntime alone can use it too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from unroll.errors import UnrollError

FORMAT = "unroll-onnx"
VERSION = 1


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where a model's sidecar is: the model's path with ``.json`` for ``.onnx``."""
    return Path(model_path).with_suffix(".json")


def encode(sidecar: dict[str, Any]) -> bytes:
    return (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read(model_path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of ``model_path``, checked to be one this unroll wrote; else a one-line UnrollError."""
    path = sidecar_path(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UnrollError(f"{path}: cannot read the model's sidecar ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnrollError(f"{path}: corrupt sidecar JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UnrollError(f"{path}: not an unroll ONNX sidecar")
    if data.get("version") != VERSION:
        raise UnrollError(f"{path}: sidecar version {data.get('version')} is not supported (expects {VERSION})")
    return data
