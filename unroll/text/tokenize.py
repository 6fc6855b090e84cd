"""Tokenizers: text -> list of token strings, and back.

The levels (registered in ``unroll.text.levels``) are small classes with ``tokenize`` and
``detokenize``; the subword ones, which learn, are in ``unroll.text.subword``:

- ``char``: every character is a token (char-rnn, nanoGPT's shakespeare_char);
- ``word``: Penn Treebank style words, as NLTK's ``word_tokenize`` makes them
  ("He left!" -> He / left / !, "don't" -> do / n't); no downloaded model needed;
- ``whitespace``: the text is already tokenized (PTB, WikiText): split on spaces.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer
from nltk.tokenize.punkt import PunktLanguageVars, PunktToken
from nltk.tokenize.treebank import TreebankWordDetokenizer


_STDLIB_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.UNICODE | re.VERBOSE | re.ASCII


def _on_stdlib_re(table: Any) -> Any:
    """A pattern table of NLTK's (a pattern, a (pattern, replacement) pair, or a list of either)
    with every pattern compiled by the standard library's ``re``.

    NLTK 3.10 sends every pattern through its ReDoS guard (the ``regex`` engine under a timeout),
    which makes word tokenization several times slower. These are NLTK's own fixed patterns, not
    a caller's, so the guard buys nothing here; the tokens and sentences are the same (the tests
    compare them with NLTK's on random and real text).
    """
    if isinstance(table, list):
        return [_on_stdlib_re(item) for item in table]
    if isinstance(table, tuple):
        return (_on_stdlib_re(table[0]), *table[1:])
    return re.compile(table.pattern, table.flags & _STDLIB_FLAGS)


class _PunktLanguage(PunktLanguageVars):
    """Punkt's English punctuation, its patterns on the stdlib ``re``."""

    re_boundary_realignment = _on_stdlib_re(PunktLanguageVars.re_boundary_realignment)

    def __init__(self) -> None:
        super().__init__()
        self._re_word_tokenizer = _on_stdlib_re(super()._word_tokenizer_re())
        self._re_period_context = _on_stdlib_re(super().period_context_re())


class _PunktWord(PunktToken):
    """Punkt's token, its patterns on the stdlib ``re``."""

    _RE_ELLIPSIS = _on_stdlib_re(PunktToken._RE_ELLIPSIS)
    _RE_NUMERIC = _on_stdlib_re(PunktToken._RE_NUMERIC)
    _RE_INITIAL = _on_stdlib_re(PunktToken._RE_INITIAL)
    _RE_ALPHA = _on_stdlib_re(PunktToken._RE_ALPHA)
    _RE_NON_PUNCT = re.compile(r"[^\W\d]", re.UNICODE)  # punkt's module-level _re_non_punct

    @property
    def is_non_punct(self) -> bool:
        return bool(self._RE_NON_PUNCT.search(self.type))


@lru_cache(maxsize=1)
def _punkt() -> PunktSentenceTokenizer:
    # An untrained Punkt model: no `nltk.download("punkt")`, so it works offline. It knows no
    # abbreviations, so "Mr. Smith" splits after "Mr.", which is fine for language modelling.
    return PunktSentenceTokenizer(lang_vars=_PunktLanguage(), token_cls=_PunktWord)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with NLTK's Punkt algorithm (no downloaded model)."""
    return _punkt().tokenize(text)


class Tokenizer:
    """Turns a string into tokens and tokens back into a string.

    A tokenizer that ``learns`` is fitted on the training split, then saves what it learned as
    ``files`` in a checkpoint directory and loads them back; the others have nothing to keep.
    """

    level: str
    learns = False
    files: tuple[str, ...] = ()

    def __init__(self, lower: bool = False):
        self.lower = lower

    def inventory(self) -> list[str] | None:
        """Every token a fitted tokenizer can produce (a subword model's pieces), which the
        vocabulary must hold even if the training split never used them; None: no fixed set."""
        return None

    def fit(self, text: str) -> None:
        """Learn from the training text (nothing to learn unless ``learns``)."""

    def learned(self) -> bytes:
        """What fitting learned, as bytes (empty unless it learns): a cache key, a worker's copy."""
        return b""

    def use_learned(self, data: bytes) -> None:
        """Take what :meth:`learned` returned (from another process or a cache)."""

    def save(self, directory: Path) -> None:
        """Write ``files`` into ``directory``."""

    def load(self, directory: Path) -> None:
        """Read ``files`` back from ``directory``."""

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def detokenize(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower})"


class CharTokenizer(Tokenizer):
    level = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lower else text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


class _TreebankWords(NLTKWordTokenizer):
    """NLTK's Treebank rules and code, its patterns on the stdlib ``re``."""

    TABLES = ("STARTING_QUOTES", "PUNCTUATION", "PARENS_BRACKETS", "CONVERT_PARENTHESES", "DOUBLE_DASHES",
              "ENDING_QUOTES", "CONTRACTIONS2", "CONTRACTIONS3")

    def __init__(self) -> None:
        for name in self.TABLES:
            setattr(self, name, _on_stdlib_re(getattr(NLTKWordTokenizer, name)))


class WordTokenizer(Tokenizer):
    """Treebank words. Like ``nltk.word_tokenize``: sentences first, since the Treebank rules
    only split off the period that ends the string they are given."""

    level = "word"
    _words = _TreebankWords()
    _detok = TreebankWordDetokenizer()

    def tokenize(self, text: str) -> list[str]:
        if self.lower:
            text = text.lower()
        return [tok for sent in split_sentences(text) for tok in self._words.tokenize(sent)]

    def detokenize(self, tokens: list[str]) -> str:
        return self._detok.detokenize(tokens)


class WhitespaceTokenizer(Tokenizer):
    level = "whitespace"

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lower else text).split()

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)
