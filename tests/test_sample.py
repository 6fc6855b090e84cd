"""The minimal sampler the demo uses: greedy = argmax, seeds reproduce, prime kept."""

from __future__ import annotations

import torch

from unroll.config import ModelConfig
from unroll.models import LanguageModel
from unroll.text import TextSpec, Vocab
from unroll.use.generate import sample

VOCAB = Vocab(list("abcdefgh \n"))
SPEC = TextSpec.for_level("char")


def model() -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(ModelConfig(vocab_size=len(VOCAB), emb_size=4, hidden_size=8, num_layers=1, init_scale=1.0))


def test_greedy_is_argmax_and_seeds_reproduce():
    m = model()
    text = sample(m, VOCAB, SPEC, "abc", 12, temperature=0)
    assert text.startswith("abc") and len(text) == 15
    ids = [VOCAB[c] for c in "abc"]
    logits, state = m(torch.tensor(ids).view(-1, 1))
    expect = []
    for _ in range(12):
        nxt = int(logits[-1, 0].argmax())
        expect.append(VOCAB.itos[nxt])
        logits, state = m(torch.tensor([[nxt]]), state)
    assert text[3:] == "".join(expect)
    a = sample(m, VOCAB, SPEC, "ab", 30, temperature=1.0, seed=7)
    assert a == sample(m, VOCAB, SPEC, "ab", 30, temperature=1.0, seed=7)
    assert a != sample(m, VOCAB, SPEC, "ab", 30, temperature=1.0, seed=8)
    top1 = sample(m, VOCAB, SPEC, "abc", 12, temperature=1.0, top_k=1, seed=3)
    assert top1 == text  # top-1 sampling is greedy
    assert len(sample(m, VOCAB, SPEC, "", 5, seed=0)) == 5  # no prime: starts after a newline
