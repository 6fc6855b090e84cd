"""Text -> tokens -> ids: tokenizers, sentence splitting, the vocabulary, and the TextSpec
that records how a model's text was tokenized.

The names below are imported on first use, so that ``unroll.text.levels`` (which
``unroll.config`` reads) loads without NLTK and NumPy.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "TextSpec": "spec", "UNITS": "spec",
    "Tokenizer": "tokenize", "split_sentences": "tokenize",
    "get_tokenizer": "levels",
    "BOS": "vocab", "EOS": "vocab", "PAD": "vocab", "SPECIALS": "vocab", "UNK": "vocab", "Vocab": "vocab",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'unroll.text' has no attribute {name!r}")
    return getattr(import_module(f"unroll.text.{_HOMES[name]}"), name)
