"""Training metrics: one JSON line per evaluation, and a PNG learning curve drawn from them."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

from unroll.errors import CheckpointError
from unroll.io import atomic_write_bytes, atomic_write_text

METRICS = "metrics.jsonl"
CURVE = "curve.png"


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and remembers how many it wrote."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.lines = 0

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` records: a resumed run drops what came after its checkpoint."""
        kept = read_metrics(self.path)[:lines] if self.path.is_file() else []
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.lines = len(kept)

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.lines += 1


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a metrics log. A last line cut short (the process died while appending it)
    is left out: the checkpoint it would belong to was never written. Any other bad line is a
    one-line CheckpointError."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    torn = lines.pop()  # "" when the file ends with a newline, as every complete record does
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            raise CheckpointError(f"{path}: line {number} is not a JSON record; fix or remove it")
        records.append(record)
    record = _record(torn) if torn.strip() else None
    if record is not None:  # a complete record written without its newline
        records.append(record)
    return records


def _record(line: str) -> dict[str, Any] | None:
    """The JSON object on ``line``, or None when it holds none."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return _renamed(record) if isinstance(record, dict) else None


def _renamed(record: dict[str, Any]) -> dict[str, Any]:
    """A record in today's names: older logs wrote bits per token as ``valid_bpc`` / ``test_bpc``
    at every level (bits per word for a word model); today's ``*_bpc`` is per character."""
    for split in ("valid", "test"):
        old, new = f"{split}_bpc", f"{split}_bits_per_token"
        if old in record and new not in record:
            record[new] = record.pop(old)
    return record


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# The y axis of each metric (label, scale) and the x axis of each record field a curve can follow.
_Y_AXES = {"ppl": ("perplexity", "log"), "err": ("error rate", "linear")}
_X_AXES = {"tokens": "training tokens", "update": "updates"}


def plot_curve(records: list[dict[str, Any]], path: str | os.PathLike, title: str = "", metric: str = "ppl",
               x: str = "tokens", splits: tuple[str, ...] = ("train", "valid")) -> None:
    """One line per split: the records' ``<split>_<metric>`` against ``x`` (matplotlib, no display).

    Language models: train and validation perplexity against tokens seen, log scale (the
    defaults). Classifiers: ``metric="err", x="update"``, error rates on a linear scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ylabel, yscale = _Y_AXES[metric]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for split in splits:
        key = f"{split}_{metric}"
        points = [r for r in records if _number(r.get(key)) and _number(r.get(x))]  # a damaged record is left out
        if points:
            marker = "." if split == "train" else "o"
            ax.plot([r[x] for r in points], [r[key] for r in points], label=split, marker=marker)
    ax.set_yscale(yscale)
    ax.set_xlabel(_X_AXES[x])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
