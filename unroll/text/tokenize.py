"""Tokenizers: text -> list of token strings, and back.

The levels (registered in ``unroll.text.levels``) are small classes with ``tokenize`` and
``detokenize``; the subword ones, which learn, are in ``unroll.text.subword``:

- ``char``: every character is a token (char-rnn, nanoGPT's shakespeare_char);
- ``word``: Penn Treebank style words, as NLTK's ``word_tokenize`` makes them
  ("He left!" -> He / left / !, "don't" -> do / n't); no downloaded model needed;
- ``whitespace``: the text is already tokenized (PTB, WikiText): split on spaces.
"""

from __future__ import annotations

from pathlib import Path


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with NLTK's Punkt algorithm (no downloaded model)."""
    from unroll.text import treebank  # NLTK is slow to import: only when text is tokenized

    return treebank.split_sentences(text)


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


class WordTokenizer(Tokenizer):
    """Treebank words. Like ``nltk.word_tokenize``: sentences first, since the Treebank rules
    only split off the period that ends the string they are given."""

    level = "word"

    def tokenize(self, text: str) -> list[str]:
        from unroll.text import treebank  # NLTK is slow to import: only when text is tokenized

        if self.lower:
            text = text.lower()
        words = treebank.words()
        return [tok for sent in treebank.split_sentences(text) for tok in words.tokenize(sent)]

    def detokenize(self, tokens: list[str]) -> str:
        from unroll.text import treebank

        return treebank.detokenizer().detokenize(tokens)


class WhitespaceTokenizer(Tokenizer):
    level = "whitespace"

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lower else text).split()

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)
