"""Tiny random-weight models for the generation and scoring tests (a word and a character model)."""

from __future__ import annotations

from pathlib import Path

import torch

from unroll.config import ModelConfig
from unroll.models import LanguageModel, save_model
from unroll.text import TextSpec, Vocab
from unroll.use.engine import LoadedModel

WORDS = Vocab(["<unk>", "<eos>", *"the cat sat on mat a dog ran , .".split()])
WORD_SPEC = TextSpec(level="whitespace", unit="line", eos=True)
CHARS = Vocab(list("abcdefgh \n"))
CHAR_SPEC = TextSpec.for_level("char")


def torch_model(vocab: Vocab, cell: str = "lstm", seed: int = 0, dtype=torch.float32, tied: bool = False,
                layers: int = 2, window: int = 1) -> LanguageModel:
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, emb_size=8, hidden_size=8, num_layers=layers,
                      init_scale=0.8, tie_weights=tied, qrnn_window=window)
    torch.manual_seed(seed)
    return LanguageModel(cfg).to(dtype)


def word_lm(**kwargs) -> LoadedModel:
    return LoadedModel(torch_model(WORDS, **kwargs), WORDS, WORD_SPEC)


def char_lm(**kwargs) -> LoadedModel:
    return LoadedModel(torch_model(CHARS, **kwargs), CHARS, CHAR_SPEC)


def save(directory: Path, lm: LoadedModel) -> Path:
    """Write ``lm`` as a checkpoint directory, as training would."""
    save_model(lm.model, directory, lm.vocab, extra={"text": lm.spec.to_dict()})
    return directory
