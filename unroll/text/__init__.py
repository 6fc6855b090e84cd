"""Text -> tokens -> ids: tokenizers, sentence splitting, the vocabulary, and the TextSpec
that records how a model's text was tokenized."""

from unroll.text.spec import UNITS, TextSpec
from unroll.text.tokenize import LEVELS, Tokenizer, get_tokenizer, split_sentences
from unroll.text.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab

__all__ = [
    "BOS", "EOS", "LEVELS", "PAD", "SPECIALS", "UNITS", "UNK",
    "TextSpec", "Tokenizer", "Vocab", "get_tokenizer", "split_sentences",
]
