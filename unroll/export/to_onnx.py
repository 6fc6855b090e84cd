"""``unroll export --format onnx``: a checkpoint -> a checked ONNX model and its sidecar.

    export_onnx("runs/ptb", int8=True)   # runs/ptb/model.onnx + model.json, model.int8.onnx + model.int8.json

Everything is built in a temporary directory beside the destination: the graph (``exporters``),
its check against PyTorch (``verify``), the int8 version and its check (``quantize``), the
sidecars. Only when every check passed are the files moved into place, each atomically, the
sidecar last; a failed check leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unroll.errors import UnrollError
from unroll.export import sidecar as sidecars
from unroll.export.graph import Outputs

NEEDS = ("onnx", "onnxruntime", "onnxscript")  # the "onnx" extra of pyproject.toml


@dataclass
class Exported:
    """What ``export_onnx`` wrote and measured."""

    model: Path
    exporter: str
    opset: int
    check: str  # verify.Report.summary()
    max_abs: float
    int8: Path | None = None
    int8_check: str | None = None
    files: list[Path] = field(default_factory=list)  # everything written, sidecars included


def require_onnx() -> None:
    """A one-line error naming the extra when onnx, onnxruntime or onnxscript is not installed."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise UnrollError(f"ONNX export needs {', '.join(missing)}: pip install 'unroll-lm[onnx]'")


def default_out(directory: str | os.PathLike) -> Path:
    return Path(directory) / "model.onnx"


def export_onnx(
    directory: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    int8: bool = False,
    scores: str = "log_probs",
    last_only: bool = False,
    exporter: str = "auto",
    echo: Callable[[str], None] | None = None,
) -> Exported:
    """Export the checkpoint (or training run) ``directory`` to ``out`` (default ``DIR/model.onnx``)."""
    require_onnx()
    from unroll.use.engine import load

    out = Path(out) if out is not None else default_out(directory)
    if out.suffix != ".onnx":
        raise UnrollError(f"--out {out}: the file name must end in .onnx (the sidecar goes beside it as .json)")
    lm = load(directory, device="cpu")
    created = _missing_parents(out)
    parent = _writable_parent(out)
    try:
        with tempfile.TemporaryDirectory(dir=parent, prefix=".unroll-export-") as tmp:
            result = _build(lm, Path(tmp), out, Outputs(scores, last_only), int8, exporter, str(directory), echo)
            _put_in_place(Path(tmp), out.parent, result.files)
    except BaseException:
        for d in created:  # directories made for --out, innermost first: a failed export leaves nothing
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    result.files = [out.parent / f.name for f in result.files]
    return result


def _missing_parents(out: Path) -> list[Path]:
    """The directories above ``out`` that do not exist yet, innermost first."""
    missing, d = [], out.parent
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    return missing


def _build(lm: Any, tmp: Path, out: Path, outputs: Outputs, int8: bool, exporter: str, source: str,
           echo: Callable[[str], None] | None) -> Exported:
    import onnx

    from unroll.export import exporters, quantize, verify
    from unroll.export.layout import StateLayout
    from unroll.export.runtime import OnnxLM

    model = lm.model
    layout = StateLayout.of(model)
    path = tmp / out.name
    used = exporters.export(model, layout, outputs, path, exporter)
    opset = next(o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain in ("", "ai.onnx"))
    side = _sidecar(lm, layout, outputs, used, opset, path.name, source)
    onnx_lm = OnnxLM(path, sidecar=side)
    report = verify.verify(model, layout, outputs, onnx_lm)
    side["checked"] = {"against": "pytorch fp32", "rtol": verify.RTOL, "atol": verify.ATOL,
                       "max_abs_diff": report.max_abs, "shapes": [list(s) for s in verify.SHAPES],
                       "streaming_steps": verify.STREAM_STEPS}
    if echo:
        echo(f"checked with onnxruntime: {report.summary()}")
    files = _tokenizer_files(lm, tmp)
    result = Exported(out, used, opset, report.summary(), report.max_abs)
    if int8:
        q = tmp / f"{out.stem}.int8.onnx"
        quantize.quantize(path, q)
        q_side = {**side, "model": q.name, "quantization": "int8-dynamic"}
        tokens = verify.sample_tokens(model, quantize.STEPS, quantize.BATCH, seed=7)
        q_report = quantize.check(onnx_lm, OnnxLM(q, sidecar=q_side), tokens)
        q_side["checked"] = {"against": "fp32 onnx", "perplexity_fp32": q_report.ppl_fp32,
                             "perplexity_int8": q_report.ppl_int8, "perplexity_rtol": quantize.PPL_RTOL,
                             "max_abs_log_prob_diff": q_report.max_abs_log_prob}
        if echo:
            echo(f"int8 checked with onnxruntime: {q_report.summary()}")
        _write_json(sidecars.sidecar_path(q), q_side)
        files += [q, sidecars.sidecar_path(q)]
        result.int8, result.int8_check = out.parent / q.name, q_report.summary()
    _write_json(sidecars.sidecar_path(path), side)
    result.files = files + [path, sidecars.sidecar_path(path)]  # the fp32 sidecar last
    return result


def _sidecar(lm: Any, layout: Any, outputs: Outputs, exporter: str, opset: int, name: str, source: str) -> dict[str, Any]:
    from unroll.text import levels
    from unroll.use.engine import start_tokens

    cfg = lm.model.cfg
    return {
        "format": sidecars.FORMAT, "version": sidecars.VERSION, "model": name, "quantization": None,
        "exporter": exporter, "opset": opset, "checkpoint": source,
        "cell": cfg.cell, "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size, "emb_size": cfg.emb_size,
        "vocab_size": cfg.vocab_size, "tied": cfg.tie_weights, "projection": cfg.projects,
        "qrnn_window": cfg.qrnn_window,
        "inputs": {"tokens": {"shape": ["time", "batch"], "dtype": "int64"}},
        "output": {"name": outputs.scores, "scores": outputs.scores, "last_only": outputs.last_only,
                   "shape": outputs.shape(cfg.vocab_size), "dtype": "float32"},
        "state": layout.describe(),
        "vocab": lm.vocab.to_dict(), "text": lm.spec.to_dict(),
        "start_tokens": start_tokens(lm.spec, lm.vocab),
        # a line is tokenized with this appended, as unroll.use.engine.unit_tokens does
        "line_end": "\n" if lm.spec.unit != "text" or "\n" in lm.vocab else "",
        "joiner": levels.get(lm.spec.level).joiner,
        "tokenizer_files": list(levels.get(lm.spec.level).files),
    }


def _tokenizer_files(lm: Any, tmp: Path) -> list[Path]:
    """A learned tokenizer's files, saved beside the model (named in the sidecar)."""
    from unroll.text import levels

    names = levels.get(lm.spec.level).files
    if not names:
        return []
    lm.spec.save_files(tmp)
    return [tmp / name for name in names]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_bytes(sidecars.encode(data))


def _writable_parent(out: Path) -> Path:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnrollError(f"--out {out}: cannot create {parent} ({e.strerror or e})") from None
    if out.is_dir():
        raise UnrollError(f"--out {out} is a directory; name a file ending in .onnx")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UnrollError(f"--out {out}: {parent} is not writable")
    return parent


def _put_in_place(tmp: Path, destination: Path, files: list[Path]) -> None:
    """Each file into ``destination`` atomically, in order (the fp32 sidecar, which a reader
    looks for first, comes last)."""
    from unroll.io import atomic_write_bytes

    try:
        for f in files:
            atomic_write_bytes(destination / f.name, f.read_bytes())
    except OSError as e:
        raise UnrollError(f"cannot write {destination} ({e.strerror or e})") from None
