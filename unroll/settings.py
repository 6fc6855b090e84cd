"""Settings dataclasses: each field carries its help text (and any older names) as metadata,
and this is the one checked way back from a JSON dict.

The CLI builds one flag per field from the same metadata (``unroll.cli.common``), so a setting's
help is written once, beside its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from typing import Any, TypeVar

from unroll.errors import UnrollError

T = TypeVar("T")


def setting(default: Any = MISSING, help: str = "", *, aliases: tuple[str, ...] = ()) -> Any:
    """A dataclass field with its ``--help`` text; ``aliases``: older names that still load."""
    return field(default=default, metadata={"help": help, "aliases": aliases})


def field_help(f: Field) -> str:
    return f.metadata.get("help", "")


def field_aliases(f: Field) -> tuple[str, ...]:
    return f.metadata.get("aliases", ())


def canonical_names(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` with each older field name (an alias) replaced by the field's name.

    Where both are present the field's name wins: ``{**saved, **overrides}`` on resuming a run
    saved under the old names puts the new value under the new name.
    """
    rename = {alias: f.name for f in fields(cls) for alias in field_aliases(f)}  # type: ignore[arg-type]
    out = {k: v for k, v in d.items() if k not in rename}
    for alias, name in rename.items():
        if alias in d and name not in d:
            out[name] = d[alias]
    return out


def settings_from_dict(cls: type[T], d: Mapping[str, Any], what: str) -> T:
    """``cls(**d)`` (older names accepted), refusing keys ``cls`` does not have (a typo or a newer unroll's setting)."""
    d = canonical_names(cls, d)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise UnrollError(f"unknown {what} settings in config: {', '.join(unknown)}")
    return cls(**d)
