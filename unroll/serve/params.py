"""The playground's request parameters: one table per endpoint, read into plain dicts.

The same tables check a request and describe it in the OpenAPI document, so the two cannot
disagree. A bad value is a :class:`RequestError` (HTTP 422, or 413 for text over the limit) with
a one-line message; so is a parameter the endpoint does not know (a typo such as ``top-k`` must
not be silently ignored).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from unroll.errors import UnrollError

REQUIRED = object()
SEED_LIMIT = 2**64  # numpy's generators take any non-negative int; a JSON client may not


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: text length (characters of a prime or a text to score),
    tokens per generation, generations streaming at once (all models together)."""

    max_chars: int = 10_000
    max_tokens: int = 1000
    max_generations: int = 4
    max_alternatives: int = 20

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_tokens", "max_generations", "max_alternatives"):
            if getattr(self, name) < 1:
                raise UnrollError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")

    @property
    def max_body_bytes(self) -> int:
        """A request body larger than this cannot hold an acceptable text (UTF-8 is at most 4
        bytes a character, JSON escapes at most 6); refused before it is parsed."""
        return 6 * self.max_chars + 4096


class RequestError(Exception):
    """A request the playground refuses: ``status`` and a one-line ``message`` for the client."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Param:
    """One body parameter: its JSON type (``string``, ``integer``, ``number``, ``boolean`` or
    ``array`` of strings), default, bounds and a description."""

    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is out of range
    nullable: bool = False
    too_long: int | None = None  # a string longer than this is HTTP 413

    def read(self, body: dict[str, Any]) -> Any:
        if self.name not in body:
            if self.default is REQUIRED:
                raise RequestError(f"missing parameter {self.name!r}")
            return self.default
        value = body[self.name]
        if value is None and self.nullable:
            return None
        if not _is(value, self.kind):
            raise RequestError(f"{self.name} must be {_article(self.kind)}{' or null' if self.nullable else ''}, "
                               f"got {json.dumps(value)[:40]}")
        if self.kind == "string" and self.too_long is not None and len(value) > self.too_long:
            raise RequestError(f"{self.name} has {len(value):,} characters; the limit is {self.too_long:,}", 413)
        if self.kind in ("integer", "number"):
            self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and value > self.high
        if below or above or not math.isfinite(value):
            raise RequestError(f"{self.name} must be in {self.range_text()}, got {value}")

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}]"

    def schema(self) -> dict[str, Any]:
        """This parameter as a JSON Schema (OpenAPI 3.1) property."""
        s: dict[str, Any] = {"type": [self.kind, "null"] if self.nullable else self.kind, "description": self.doc}
        if self.kind == "array":
            s["items"] = {"type": "string"}
            s["minItems"] = s["maxItems"] = 2
        if self.low is not None:
            s["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            s["maximum"] = self.high
        if self.too_long is not None:
            s["maxLength"] = self.too_long
        if self.default is not REQUIRED:
            s["default"] = self.default
        return s


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool):  # JSON true is not the number 1
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    if kind == "array":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, {"string": str, "boolean": bool}[kind])


def _article(kind: str) -> str:
    return {"integer": "an integer", "array": "a list of model names"}.get(kind, f"a {kind}")


def generate_params(limits: Limits) -> tuple[Param, ...]:
    return (
        Param("model", "string", "a loaded model's name (GET /api/models); default the first", None, nullable=True),
        Param("prime", "string", "text to continue, tokenized like the training text", "", too_long=limits.max_chars),
        Param("temperature", "number", "divide the logits by T: <1 safer, >1 wilder, 0 greedy", 1.0, 0, 100),
        Param("top_k", "integer", "draw from the K most likely tokens only", None, 1, nullable=True),
        Param("top_p", "number", "nucleus: the most likely tokens that make up P", None, 0, 1, low_open=True,
              nullable=True),
        Param("max_tokens", "integer", "tokens to generate at most", 100, 1, limits.max_tokens),
        Param("seed", "integer", "reproduce a sample; omitted: a random one, returned in the final event", None,
              0, SEED_LIMIT - 1, nullable=True),
        Param("stop_at_eos", "boolean", "end at the model's <eos> (word models)", True),
    )


def score_params(limits: Limits) -> tuple[Param, ...]:
    return (
        Param("model", "string", "a loaded model's name (GET /api/models); default the first", None, nullable=True),
        Param("text", "string", "one sentence a line; blank lines are skipped", too_long=limits.max_chars),
        Param("top", "integer", "alternatives listed per token", 5, 1, limits.max_alternatives),
    )


def compare_params(limits: Limits) -> tuple[Param, ...]:
    return (
        Param("models", "array", "two loaded models' names, A and B; default the first two", None, nullable=True),
        Param("text", "string", "one sentence a line; blank lines are skipped", too_long=limits.max_chars),
    )


def read(params: tuple[Param, ...], raw: bytes, limits: Limits) -> dict[str, Any]:
    """The request body's parameters, checked, with defaults filled in."""
    if len(raw) > limits.max_body_bytes:
        raise RequestError(f"request body of {len(raw):,} bytes is too large (limit {limits.max_body_bytes:,})", 413)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    known = {p.name for p in params}
    unknown = [k for k in body if k not in known]
    if unknown:
        raise RequestError(f"unknown parameter {unknown[0]!r}; expected {', '.join(sorted(known))}")
    return {p.name: p.read(body) for p in params}
