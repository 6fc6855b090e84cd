"""The table of tokenization levels: everything the rest of unroll may know about a level by its name.

A level is a tokenizer class (``unroll.text.tokenize``) and one line here. The class is named by
import path and imported when a tokenizer is made, so this module loads neither NLTK nor NumPy
and ``unroll.config`` can validate level names with it.

A tokenizer that learns (a subword vocabulary) is fitted on the training split only, and
saves what it learned as files beside the checkpoint (``Tokenizer.files``); the checkpoint
writes and reads them (``unroll.checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from unroll.errors import UnrollError

if TYPE_CHECKING:
    from unroll.text.tokenize import Tokenizer


@dataclass(frozen=True)
class Level:
    """One tokenization level and the properties callers need from it."""

    name: str
    tokenizer_class: str  # "module:attribute" of its Tokenizer subclass
    joiner: str = " "  # what joins tokens back into readable text ("" for characters)
    characters: bool = False  # one token is one character (newlines too): bits per character are the unit
    unit: str = "line"  # TextSpec.for_level's unit: "text" keeps newlines as tokens
    eos: bool = True  # TextSpec.for_level marks the end of each unit with <eos>

    @property
    def tokenizer(self) -> type[Tokenizer]:
        module, _, attribute = self.tokenizer_class.partition(":")
        return getattr(import_module(module), attribute)

    @property
    def learns(self) -> bool:
        """Whether the tokenizer is fitted on the training split (and saves files beside the checkpoint)."""
        return self.tokenizer.learns

    @property
    def files(self) -> tuple[str, ...]:
        """The files its tokenizer saves in a checkpoint directory."""
        return self.tokenizer.files


_LEVELS: dict[str, Level] = {}


def register(level: Level) -> Level:
    """Add ``level`` to the table (a new level's one line; tests add toy levels this way)."""
    if level.name in _LEVELS:
        raise ValueError(f"level {level.name!r} is already registered")
    _LEVELS[level.name] = level
    return level


def unregister(name: str) -> None:
    del _LEVELS[name]


def get(name: str) -> Level:
    """The level called ``name``, or a one-line UnrollError listing the choices."""
    if name not in _LEVELS:
        raise UnrollError(f"unknown tokenization level {name!r}; choose one of {', '.join(names())}")
    return _LEVELS[name]


def names() -> list[str]:
    return list(_LEVELS)


def get_tokenizer(level: str, lower: bool = False, vocab_size: int | None = None) -> Tokenizer:
    """A fresh tokenizer for ``level`` (one that learns is not fitted yet); ``vocab_size`` is
    for the tokenizers that take one (the subword levels)."""
    sized = {} if vocab_size is None else {"vocab_size": vocab_size}
    return get(level).tokenizer(lower=lower, **sized)


register(Level("char", "unroll.text.tokenize:CharTokenizer", joiner="", characters=True, unit="text", eos=False))
register(Level("word", "unroll.text.tokenize:WordTokenizer"))
register(Level("whitespace", "unroll.text.tokenize:WhitespaceTokenizer"))
register(Level("bpe", "unroll.text.subword:BPETokenizer", joiner=""))
register(Level("unigram", "unroll.text.subword:UnigramTokenizer", joiner=""))
