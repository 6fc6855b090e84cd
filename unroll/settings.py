"""Settings dataclasses: each field carries its help text (and any older names) as metadata,
and this is the one checked way back from a JSON dict.

The CLI builds one flag per field from the same metadata (``unroll.cli.common``), so a setting's
help is written once, beside its default. A field's allowed range is declared there too, and
:func:`check_fields` (each settings class calls it first thing in ``__post_init__``) checks every
field's type and range, so a bad value from a flag, a preset, ``--config`` or a hand-edited
``config.json`` is one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import math
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from functools import cache
from typing import Any, TypeVar

from unroll.errors import UnrollError

T = TypeVar("T")


def setting(default: Any = MISSING, help: str = "", *, aliases: tuple[str, ...] = (), at_least: float | None = None,
            above: float | None = None, at_most: float | None = None, below: float | None = None) -> Any:
    """A dataclass field with its ``--help`` text; ``aliases``: older names that still load.

    ``at_least`` / ``above`` / ``at_most`` / ``below``: the bounds a number must keep (each
    element of a tuple; ``None`` always passes an optional field).
    """
    bounds = {k: v for k, v in (("at_least", at_least), ("above", above), ("at_most", at_most), ("below", below))
              if v is not None}
    return field(default=default, metadata={"help": help, "aliases": aliases, "bounds": bounds})


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


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60  # a pasted paragraph still gives one readable line


def check_value(name: str, value: Any, *, at_least: float | None = None, above: float | None = None,
                at_most: float | None = None, below: float | None = None) -> None:
    """Raise a one-line :class:`UnrollError` unless ``at_least <= value``, ``above < value`` and so on.

    Also for command-line numbers that are no setting (``unroll eval --bptt``).
    """
    ok = ((at_least is None or value >= at_least) and (above is None or value > above)
          and (at_most is None or value <= at_most) and (below is None or value < below))
    if not ok:
        raise UnrollError(f"{name} must be {_allowed(at_least, above, at_most, below)}, got {_short.repr(value)}")


def _allowed(at_least: float | None, above: float | None, at_most: float | None, below: float | None) -> str:
    low = f"[{at_least}" if at_least is not None else f"({above}" if above is not None else ""
    high = f"{at_most}]" if at_most is not None else f"{below})" if below is not None else ""
    if low and high:
        return f"in {low}, {high}"
    if at_least is not None:
        return f"at least {at_least}"
    if above is not None:
        return "positive" if above == 0 else f"greater than {above}"
    return f"at most {at_most}" if at_most is not None else f"less than {below}"


def check_fields(obj: Any) -> None:
    """Check each field of the settings dataclass ``obj`` against its annotation and declared bounds.

    Called first in ``__post_init__``, so the class's own checks see values of the right types.
    A JSON list given for a tuple field becomes that tuple.
    """
    hints = _hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        if not _fits(value, tp):
            raise UnrollError(f"{f.name} must be {_describe(tp)}, got {_short.repr(value)}")
        if typing.get_origin(tp) is tuple:
            value = tuple(value)
            object.__setattr__(obj, f.name, value)  # frozen settings classes too
        bounds = f.metadata.get("bounds")
        if bounds and value is not None:
            for v in value if isinstance(value, tuple) else (value,):
                check_value(f.name, v, **bounds)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fits(value: Any, tp: Any) -> bool:
    """Whether ``value`` is a ``tp``. True is not an int here (Python says it is), nor 1 a bool: a
    typo either way. An int is a float. NaN and infinity are not: no setting means them, and a
    field with no bounds would let them through to the training loop."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(_fits(value, a) for a in args)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if args[-1] is Ellipsis:  # tuple[int, ...]: any length
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(map(_fits, value, args))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return _fits(value, int) or (isinstance(value, float) and math.isfinite(value))
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    """``tp`` in words, for an error line."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(_describe(a) for a in args)
    if typing.get_origin(tp) is tuple:  # tuples of numbers are the one kind settings hold
        return "a list of " + ("integers" if args[-1] is Ellipsis else f"{len(args)} numbers")
    return {type(None): "none", bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string"}.get(tp, tp.__name__)
