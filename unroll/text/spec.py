"""TextSpec: exactly how raw text becomes tokens, saved with a model so that scoring and
generation later tokenize the way training did (a learned tokenizer's files included)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from unroll.errors import UnrollError
from unroll.settings import check_fields, settings_from_dict
from unroll.text import levels
from unroll.text.tokenize import Tokenizer, split_sentences
from unroll.text.vocab import BOS, EOS, Vocab

UNITS = ("text", "line", "sentence")


@dataclass(frozen=True)
class TextSpec:
    """Tokenization settings.

    ``unit`` is the span that the optional ``<bos>``/``<eos>`` markers wrap:

    - ``text``: the whole text is one unit; at char level newlines stay as ``"\\n"`` tokens;
    - ``line``: every line (also a blank one, as pytorch/examples counts WikiText), e.g. PTB's
      one sentence a line with ``<eos>`` at each line end;
    - ``sentence``: Punkt sentences within each line (the word-RNN tutorial's
      SENTENCE_START ... SENTENCE_END); blank lines hold no sentence.
    """

    level: str = "whitespace"
    lower: bool = False
    unit: str = "line"
    bos: bool = False
    eos: bool = True

    def __post_init__(self) -> None:
        check_fields(self)  # config.json's "text" section is hand-editable too
        # one tokenizer per spec, not a field: a learned one holds state that config.json does not
        object.__setattr__(self, "_tokenizer", levels.get_tokenizer(self.level, self.lower))
        if self.unit not in UNITS:
            raise UnrollError(f"unknown text unit {self.unit!r}; choose one of {', '.join(UNITS)}")

    @classmethod
    def for_level(cls, level: str, lower: bool = False) -> "TextSpec":
        """The level's usual settings: characters of the whole text; words with ``<eos>`` per line."""
        usual = levels.get(level)
        return cls(level=level, lower=lower, unit=usual.unit, bos=False, eos=usual.eos)

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer  # type: ignore[attr-defined]

    def fit(self, text: str) -> "TextSpec":
        """This spec with its tokenizer fitted on ``text`` (the training split only); as is unless it learns."""
        if not levels.get(self.level).learns:
            return self
        fitted = replace(self)
        fitted.tokenizer.fit(text)
        return fitted

    def save_files(self, directory: Path) -> None:
        """Write what the tokenizer learned into a checkpoint directory (nothing unless it learns)."""
        self.tokenizer.save(directory)

    def load_files(self, directory: Path) -> "TextSpec":
        """This spec with its learned tokenizer read back from a checkpoint directory."""
        if not levels.get(self.level).learns:
            return self
        loaded = replace(self)
        loaded.tokenizer.load(directory)
        return loaded

    @property
    def markers(self) -> list[str]:
        """The special tokens this spec inserts."""
        return [t for t, on in ((BOS, self.bos), (EOS, self.eos)) if on]

    def _pieces(self, text: str) -> list[str]:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if self.unit == "text":
            return [text]
        lines = text.split("\n")
        if lines and lines[-1] == "":  # the newline that ends the last line starts no new one
            lines.pop()
        if self.unit == "line":
            return lines
        return [s for line in lines if line.strip() for s in split_sentences(line)]

    def tokenize_units(self, text: str, complete: bool = True) -> tuple[list[str], list[int]]:
        """All tokens of ``text`` (markers included) and the length of each unit.

        ``complete=False`` leaves the ``<eos>`` off the last unit: a prompt to continue.
        """
        tok = self.tokenizer.tokenize
        bos, eos = [BOS] if self.bos else [], [EOS] if self.eos else []
        tokens: list[str] = []
        lengths: list[int] = []
        for piece in self._pieces(text):
            start = len(tokens)
            tokens += bos
            tokens += tok(piece)
            tokens += eos
            lengths.append(len(tokens) - start)
        if not complete and eos and tokens:
            tokens.pop()
            lengths[-1] -= 1
        return tokens, lengths

    def tokenize(self, text: str, complete: bool = True) -> list[str]:
        return self.tokenize_units(text, complete)[0]

    def encode(self, text: str, vocab: Vocab, complete: bool = True) -> np.ndarray:
        """Text -> int64 ids, tokenized exactly as in training."""
        return vocab.encode(self.tokenize(text, complete))

    def decode(self, ids: Any, vocab: Vocab) -> str:
        """Ids -> readable text: markers become line breaks (``<eos>``) or vanish (``<bos>``)."""
        detok = self.tokenizer.detokenize
        # a whole text of characters keeps its newlines as tokens: <eos> adds none
        sep = "" if self.unit == "text" and levels.get(self.level).characters else "\n"
        out, current = [], []
        for t in vocab.decode(ids):
            if t == EOS and self.eos:
                out.append(detok(current) + sep)
                current = []
            elif not (t == BOS and self.bos):
                current.append(t)
        return "".join(out) + detok(current)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TextSpec":
        return settings_from_dict(cls, d, "text")
