"""Subword tokenizers: a sentencepiece BPE or unigram model learned from the training split.

The conventions (docs/subwords.md has them for users):

- **No normalization.** The text is modelled as it is (sentencepiece's ``identity`` rule, extra
  spaces kept), so detokenize(tokenize(text)) gives the text back and bits per character count
  the characters the text has. ``--lower`` lowercases before anything else, at every level.
- **Spaces** become ``▁`` at the start of the piece they precede; each unit (a line, by
  default) starts with one, as sentencepiece's ``add_dummy_prefix`` writes it.
- **Byte fallback** is on: a character the training split did not have is spelled as its
  UTF-8 bytes (``<0xE4>`` ...), so no text is ever unknown at use time.
- **Markers** (``<eos>``, ``<bos>``) are unroll's, added by the TextSpec around each unit;
  sentencepiece's own are switched off. Its unknown piece is renamed ``<sp-unk>`` (byte
  fallback never uses it), and ``<unk>`` is a user-defined piece, so PTB's literal ``<unk>``
  stays one token, the same ``<unk>`` as at the word level.
- **Deterministic**: one training thread, the whole split in file order; the same text and
  settings give the same ``tokenizer.model``, byte for byte.

The model file is sentencepiece's own protobuf (no pickle), saved beside the checkpoint.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from unroll.errors import CheckpointError, DataError
from unroll.io import atomic_write_bytes
from unroll.text.tokenize import Tokenizer
from unroll.text.vocab import UNK

MODEL_FILE = "tokenizer.model"
DEFAULT_VOCAB_SIZE = 8000
_SP_UNK = "<sp-unk>"
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def _sentencepiece() -> Any:
    """The sentencepiece module, imported only when a subword level is used."""
    # its SWIG bindings raise DeprecationWarnings about their own types, at import and at exit
    warnings.filterwarnings("ignore", message=r"builtin type [Ss]wig", category=DeprecationWarning)
    import sentencepiece

    return sentencepiece


class SentencePieceTokenizer(Tokenizer):
    """A sentencepiece model of ``model_type`` with ``vocab_size`` pieces (bytes and ``<unk>`` included)."""

    learns = True
    files = (MODEL_FILE,)
    model_type: str

    def __init__(self, lower: bool = False, vocab_size: int | None = None):
        super().__init__(lower)
        self.vocab_size = vocab_size or DEFAULT_VOCAB_SIZE
        self._sp = None
        self._proto = b""

    # ---- learning, saving, loading ---------------------------------------------------------
    def fit(self, text: str) -> None:
        import io

        from unroll.text.spec import normalize_newlines  # lines as the TextSpec cuts them

        spm = _sentencepiece()
        lines = [line for line in normalize_newlines(self._prepare(text)).split("\n") if line]
        if not lines:
            raise DataError("the training text is empty: there is nothing to learn subwords from")
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=model, model_type=self.model_type,
                vocab_size=self.vocab_size, byte_fallback=True, normalization_rule_name="identity",
                remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=False,
                unk_id=0, unk_piece=_SP_UNK, bos_id=-1, eos_id=-1, pad_id=-1, user_defined_symbols=[UNK],
                num_threads=1, input_sentence_size=0, shuffle_input_sentence=False,
                max_sentence_length=1 << 20, minloglevel=2,
            )
        except RuntimeError as e:
            raise DataError(self._explain(str(e))) from None
        self._use(model.getvalue())

    def _explain(self, message: str) -> str:
        high, low = _TOO_HIGH.search(message), _TOO_LOW.search(message)
        if high:
            return (f"--vocab-size {high[1]} is more than the training text supports for {self.level} "
                    f"(at most {high[2]}); choose a smaller one")
        if low:
            return (f"--vocab-size {low[1]} is too small: the training text needs {low[2]} pieces for its "
                    f"characters, bytes and markers; choose a larger one")
        return f"sentencepiece could not learn a {self.level} model: {message.splitlines()[-1].strip()}"

    def save(self, directory: Path) -> None:
        if self._sp is None:
            raise RuntimeError("the subword tokenizer is saved before it learned anything")
        atomic_write_bytes(Path(directory) / MODEL_FILE, self._proto)

    def load(self, directory: Path) -> None:
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise CheckpointError(f"{path}: the {self.level} tokenizer file is missing")
        try:
            self._use(path.read_bytes())
        except (RuntimeError, OSError) as e:
            raise CheckpointError(f"{path}: corrupt or unreadable tokenizer file ({str(e).strip() or 'not a sentencepiece model'})") from None
        if self._sp.get_piece_size() != self.vocab_size:
            raise CheckpointError(f"{path}: holds {self._sp.get_piece_size()} pieces, the text settings say "
                                  f"{self.vocab_size}; the file does not belong to this checkpoint")

    def learned(self) -> bytes:
        return self._proto

    def use_learned(self, data: bytes) -> None:
        self._use(data)

    def _use(self, proto: bytes) -> None:
        sp = _sentencepiece().SentencePieceProcessor()
        sp.LoadFromSerializedProto(proto)
        self._sp, self._proto = sp, proto

    @property
    def model(self) -> Any:
        """The sentencepiece processor (imported only when a subword level is used)."""
        if self._sp is None:
            raise RuntimeError("the subword tokenizer is used before it was fitted or loaded")
        return self._sp

    def inventory(self) -> list[str]:
        """Every piece the model can produce, in its id order (the byte pieces included)."""
        sp = self.model
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]

    # ---- use ---------------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        return text.lower() if self.lower else text

    def tokenize(self, text: str) -> list[str]:
        if not text:
            return []
        return self.model.encode(self._prepare(text), out_type=str)

    def detokenize(self, tokens: list[str]) -> str:
        return self.model.decode_pieces(list(tokens))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower}, vocab_size={self.vocab_size})"


class BPETokenizer(SentencePieceTokenizer):
    level = "bpe"
    model_type = "bpe"


class UnigramTokenizer(SentencePieceTokenizer):
    level = "unigram"
    model_type = "unigram"
