"""NLTK's Treebank words and Punkt sentences, their patterns on the standard library's ``re``.

Its own module because importing NLTK takes about two seconds (it pulls in SciPy): only a run
that tokenizes text at word level pays for it, never one that memory-maps a token cache.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import regex
from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer
from nltk.tokenize.punkt import PunktLanguageVars, PunktToken
from nltk.tokenize.treebank import TreebankWordDetokenizer


_STDLIB_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.UNICODE | re.VERBOSE | re.ASCII


def _on_stdlib_re(table: Any) -> Any:
    """A pattern table of NLTK's (a pattern, a (pattern, replacement) pair, or a list of either)
    with every pattern compiled by the standard library's ``re``.

    NLTK 3.10 sends every pattern through its ReDoS guard (the ``regex`` engine under a timeout),
    which makes word tokenization several times slower. These are NLTK's own fixed patterns, not
    a caller's, so the guard buys nothing here; on text whose characters both engines class alike
    (:func:`read_alike`) the tokens and sentences are the same (the tests compare them with NLTK's
    on random and real text).
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


@lru_cache(maxsize=1)
def _nltk_punkt() -> PunktSentenceTokenizer:
    return PunktSentenceTokenizer()


@lru_cache(maxsize=1)
def _nltk_words() -> NLTKWordTokenizer:
    return NLTKWordTokenizer()


# The character classes NLTK's patterns use, and the characters seen so far that both engines
# put in the same classes or not.
_CLASSES = (r"\w", r"\s", r"\d", r"(?i)[a-z]")
_ALIKE: set[str] = set()
_UNLIKE: set[str] = set()


def read_alike(text: str) -> bool:
    """Whether the stdlib ``re`` classes every character of ``text`` as ``regex`` does.

    Mostly they do, but not everywhere: ``re``'s ``\\w`` takes numbers such as ½ and ², ``regex``'s
    takes combining marks, ``re``'s ``\\s`` takes the ASCII separators \\x1c-\\x1f. A text with
    such a character goes to NLTK's own tokenizers, so the tokens are always NLTK's.
    """
    new = set(text) - _ALIKE
    if not new:
        return True
    for c in new - _UNLIKE:
        same = all(bool(re.fullmatch(p, c)) == bool(regex.fullmatch(p, c)) for p in _CLASSES)
        (_ALIKE if same else _UNLIKE).add(c)
    return not new & _UNLIKE


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with NLTK's Punkt algorithm (no downloaded model)."""
    return (_punkt() if read_alike(text) else _nltk_punkt()).tokenize(text)


class TreebankWords(NLTKWordTokenizer):
    """NLTK's Treebank rules and code, its patterns on the stdlib ``re`` (NLTK's own tokenizer
    for a text that ``re`` would read otherwise: :func:`read_alike`)."""

    TABLES = ("STARTING_QUOTES", "PUNCTUATION", "PARENS_BRACKETS", "CONVERT_PARENTHESES", "DOUBLE_DASHES",
              "ENDING_QUOTES", "CONTRACTIONS2", "CONTRACTIONS3")

    def __init__(self) -> None:
        for name in self.TABLES:
            setattr(self, name, _on_stdlib_re(getattr(NLTKWordTokenizer, name)))

    def tokenize(self, text: str, *args: Any, **kwargs: Any) -> Any:
        if read_alike(text):
            return super().tokenize(text, *args, **kwargs)
        return _nltk_words().tokenize(text, *args, **kwargs)


@lru_cache(maxsize=1)
def words() -> TreebankWords:
    return TreebankWords()


@lru_cache(maxsize=1)
def detokenizer() -> TreebankWordDetokenizer:
    return TreebankWordDetokenizer()
