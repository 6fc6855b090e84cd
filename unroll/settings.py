"""Settings dataclasses are saved as JSON; this is the one checked way back from a dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from unroll.errors import UnrollError

T = TypeVar("T")


def settings_from_dict(cls: type[T], d: Mapping[str, Any], what: str) -> T:
    """``cls(**d)``, refusing keys ``cls`` does not have (a typo or a newer unroll's setting)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise UnrollError(f"unknown {what} settings in config: {', '.join(unknown)}")
    return cls(**d)
