"""TextSpec: exactly how raw text becomes tokens, saved with a model so that scoring and
generation later tokenize the way training did (a learned tokenizer's files included)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from unroll.errors import UnrollError
from unroll.settings import check_fields, setting, settings_from_dict
from unroll.text import levels
from unroll.text.tokenize import Tokenizer, split_sentences
from unroll.text.vocab import BOS, EOS, Vocab

UNITS = ("text", "line", "sentence")
COUNTS = ("chars", "bytes", "words")


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def line_counts(line: str) -> np.ndarray:
    """(characters, UTF-8 bytes, whitespace-separated words) of one line and its end: the line
    end counts once, as a character, a byte and a word (the ``<eos>`` of word-level perplexity).
    Counted on the text as written (before ``lower``), so every level of a text counts the same."""
    return np.array([len(line) + 1, len(line.encode("utf-8", "surrogatepass")) + 1, len(line.split()) + 1], np.int64)


def text_counts(text: str) -> dict[str, int]:
    """:func:`line_counts` summed over the lines of ``text`` (a last line without a newline ends too)."""
    lines = normalize_newlines(text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    total = sum((line_counts(line) for line in lines), np.zeros(3, np.int64))
    return dict(zip(COUNTS, map(int, total)))


class Units(NamedTuple):
    """A tokenized text: tokens, the length of each unit and the text it covers ([units, 3]: COUNTS)."""

    tokens: list[str]
    lengths: list[int]
    counts: np.ndarray


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
    vocab_size: int | None = setting(None, "pieces of a subword level (bpe, unigram); none: 8000 there", at_least=2)

    def __post_init__(self) -> None:
        check_fields(self)  # config.json's "text" section is hand-editable too
        learns = levels.get(self.level).learns
        if self.vocab_size is not None and not learns:
            raise UnrollError(f"vocab_size (--vocab-size) is for a subword level (bpe or unigram), not {self.level}; "
                              f"drop it, or add --level bpe")
        # one tokenizer per spec, not a field: a learned one holds state that config.json does not
        tokenizer = levels.get_tokenizer(self.level, self.lower, self.vocab_size)
        object.__setattr__(self, "_tokenizer", tokenizer)
        if learns and self.vocab_size is None:  # config.json records the size actually used
            object.__setattr__(self, "vocab_size", getattr(tokenizer, "vocab_size", None))
        object.__setattr__(self, "_fitted", not learns)
        if self.unit not in UNITS:
            raise UnrollError(f"unknown text unit {self.unit!r}; choose one of {', '.join(UNITS)}")

    @classmethod
    def for_level(cls, level: str, lower: bool = False, vocab_size: int | None = None) -> "TextSpec":
        """The level's usual settings: characters of the whole text; words or subwords with
        ``<eos>`` per line."""
        usual = levels.get(level)
        return cls(level=level, lower=lower, unit=usual.unit, bos=False, eos=usual.eos, vocab_size=vocab_size)

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer  # type: ignore[attr-defined]

    @property
    def fitted(self) -> bool:
        """Ready to tokenize: always, unless its tokenizer learns and has not learned (or been loaded)."""
        return self._fitted  # type: ignore[attr-defined]

    def fit(self, text: str) -> "TextSpec":
        """This spec with its tokenizer fitted on ``text`` (the training split only); as is unless it learns."""
        if not levels.get(self.level).learns:
            return self
        fitted = replace(self)
        fitted.tokenizer.fit(text)
        object.__setattr__(fitted, "_fitted", True)
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
        object.__setattr__(loaded, "_fitted", True)
        return loaded

    def with_learned(self, data: bytes) -> "TextSpec":
        """This spec with its tokenizer set to what another's learned (``Tokenizer.learned``)."""
        if not levels.get(self.level).learns:
            return self
        loaded = replace(self)
        loaded.tokenizer.use_learned(data)
        object.__setattr__(loaded, "_fitted", True)
        return loaded

    @property
    def markers(self) -> list[str]:
        """The special tokens this spec inserts."""
        return [t for t, on in ((BOS, self.bos), (EOS, self.eos)) if on]

    def _pieces(self, text: str) -> list[tuple[str, np.ndarray]]:
        """The units of ``text``, each with the (chars, bytes, words) of the text it covers
        (:func:`line_counts`); a blank line that holds no sentence adds its counts to the next unit."""
        text = normalize_newlines(text)
        lines = text.split("\n")
        if lines and lines[-1] == "":  # the newline that ends the last line starts no new one
            lines.pop()
        if self.unit == "text":
            return [(text, sum((line_counts(line) for line in lines), np.zeros(3, np.int64)))]
        if self.unit == "line":
            return [(line, line_counts(line)) for line in lines]
        pieces: list[tuple[str, np.ndarray]] = []
        pending = np.zeros(3, np.int64)
        for line in lines:
            pending = pending + line_counts(line)
            for sentence in split_sentences(line) if line.strip() else []:
                pieces.append((sentence, pending))
                pending = np.zeros(3, np.int64)
        if pieces:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + pending)
        return pieces

    def units(self, text: str, complete: bool = True) -> Units:
        """All tokens of ``text`` (markers included), the length of each unit and what text each
        unit covers (``counts``: chars, bytes, words; the yardsticks of ``unroll.evaluate``).

        ``complete=False`` leaves the ``<eos>`` off the last unit: a prompt to continue.
        """
        tok = self.tokenizer.tokenize
        bos, eos = [BOS] if self.bos else [], [EOS] if self.eos else []
        tokens: list[str] = []
        lengths: list[int] = []
        counts: list[np.ndarray] = []
        for piece, covered in self._pieces(text):
            start = len(tokens)
            tokens += bos
            tokens += tok(piece)
            tokens += eos
            lengths.append(len(tokens) - start)
            counts.append(covered)
        if not complete and eos and tokens:
            tokens.pop()
            lengths[-1] -= 1
        return Units(tokens, lengths, np.asarray(counts, dtype=np.int64).reshape(-1, 3))

    def tokenize_units(self, text: str, complete: bool = True) -> tuple[list[str], list[int]]:
        """All tokens of ``text`` (markers included) and the length of each unit."""
        units = self.units(text, complete)
        return units.tokens, units.lengths

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
        d = asdict(self)
        if d["vocab_size"] is None:  # the levels that learn nothing keep their config.json as it was
            del d["vocab_size"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TextSpec":
        return settings_from_dict(cls, d, "text")
