"""Adding a tokenization level is its tokenizer and one registry line; a level that learns is
fitted on the training text and its files travel inside the checkpoint directory."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from unroll import reference
from unroll.checkpoint import load_checkpoint
from unroll.config import ModelConfig, TrainConfig
from unroll.errors import CheckpointError, UnrollError
from unroll.text import TextSpec, Tokenizer, Vocab, levels


class PairTokenizer(Tokenizer):
    """Characters, except that the most frequent character pairs of the training text are one token."""

    level = "pairs"
    learns = True
    files = ("pairs.json",)

    def __init__(self, lower: bool = False):
        super().__init__(lower)
        self.pairs: list[str] = []

    def fit(self, text: str) -> None:
        counts = Counter(text[i : i + 2] for i in range(len(text) - 1))
        self.pairs = sorted(pair for pair, _ in counts.most_common(3))

    def save(self, directory: Path) -> None:
        (directory / "pairs.json").write_text(json.dumps(self.pairs), encoding="utf-8")

    def load(self, directory: Path) -> None:
        self.pairs = json.loads((directory / "pairs.json").read_text(encoding="utf-8"))

    def tokenize(self, text: str) -> list[str]:
        tokens, i = [], 0
        while i < len(text):
            step = 2 if text[i : i + 2] in self.pairs else 1
            tokens.append(text[i : i + step])
            i += step
        return tokens

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


@pytest.fixture
def pairs() -> Iterator[str]:
    """The toy learned level, registered for one test only."""
    levels.register(levels.Level("pairs", f"{__name__}:PairTokenizer", joiner="", unit="text", eos=False))
    yield "pairs"
    levels.unregister("pairs")


TRAIN = "abababab cdcd abab cd ab\n"


def test_a_learned_level_round_trips_through_a_checkpoint(pairs, tmp_path):
    spec = TextSpec.for_level(pairs).fit(TRAIN)
    assert spec.tokenizer.pairs == ["ab", "ba", "cd"] and spec.tokenize("abc") == ["ab", "c"]
    assert TextSpec.for_level(pairs).tokenize("abc") == ["a", "b", "c"]  # unfitted: nothing learned yet
    vocab = Vocab.build(spec.tokenize(TRAIN))
    cfg = ModelConfig(vocab_size=len(vocab), cell="gru", emb_size=4, hidden_size=4, num_layers=1)
    model = reference.LanguageModel(cfg, seed=1)
    reference.save_model(model, tmp_path / "ckpt", vocab, extra={"train": {"note": "toy"}}, text=spec)

    assert json.loads((tmp_path / "ckpt" / "pairs.json").read_text()) == ["ab", "ba", "cd"]
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert ckpt.text == spec and ckpt.text.tokenizer.pairs == spec.tokenizer.pairs
    assert list(ckpt.extra) == ["text", "train"]
    ids = ckpt.text.encode("cdab", Vocab.from_dict(ckpt.vocab))
    assert ids.tolist() == vocab.encode(["cd", "ab"]).tolist()
    np.testing.assert_array_equal(reference.load_model(tmp_path / "ckpt")[0].forward(ids[:, None])[0],
                                  model.forward(ids[:, None])[0])

    (tmp_path / "ckpt" / "pairs.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer file"):
        load_checkpoint(tmp_path / "ckpt")


def test_levels_come_from_the_registry(pairs):
    assert levels.names() == ["char", "word", "whitespace", "bpe", "unigram", "pairs"]
    assert levels.get("pairs").learns and levels.get("pairs").files == ("pairs.json",)
    assert not any(levels.get(name).learns for name in ("char", "word", "whitespace"))
    assert levels.get("char").characters and levels.get("char").joiner == ""
    assert levels.get("word").joiner == " " and not levels.get("word").characters
    assert TrainConfig(level=pairs).level == pairs
    assert all(levels.get(name).learns for name in ("bpe", "unigram"))
    with pytest.raises(UnrollError, match="level 'byte'; choose one of char, word, whitespace, bpe, unigram, pairs"):
        TextSpec(level="byte")


def test_a_level_that_learns_nothing_is_fitted_as_is():
    spec = TextSpec.for_level("char")
    assert spec.fit(TRAIN) is spec
    assert spec == TextSpec(level="char", unit="text", eos=False)
