"""Sampling text from a language model, one token at a time with the state carried."""

from __future__ import annotations

import numpy as np
import torch

from unroll.text import BOS, EOS, TextSpec, Vocab


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    vocab: Vocab,
    text_spec: TextSpec,
    prime: str,
    max_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> str:
    """``prime`` followed by up to ``max_tokens`` sampled tokens, as text.

    Logits are divided by ``temperature`` (0 = greedy: always the most likely token) and, with
    ``top_k``, cut to the k most likely tokens. ``seed`` makes the draw reproducible (a private
    ``torch.Generator``, so global random state is untouched).
    """
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    ids = [int(i) for i in text_spec.encode(prime, vocab, complete=False)] if prime else []
    if not ids:  # nothing to condition on: start as a unit starts
        start = BOS if BOS in vocab else EOS if EOS in vocab else "\n" if "\n" in vocab else vocab.itos[0]
        context = [vocab[start]]
    else:
        context = ids
    was_training = model.training
    model.eval()
    try:
        logits, state = model(torch.tensor(context, dtype=torch.int64, device=device).view(-1, 1))
        out: list[int] = []
        for _ in range(max_tokens):
            last = logits[-1, 0].float().cpu()
            if temperature <= 0:
                nxt = int(last.argmax())
            else:
                last = last / temperature
                if top_k is not None and top_k < last.numel():
                    cutoff = torch.topk(last, top_k).values[-1]
                    last = last.masked_fill(last < cutoff, float("-inf"))
                nxt = int(torch.multinomial(torch.softmax(last, -1), 1, generator=gen))
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]], dtype=torch.int64, device=device), state)
    finally:
        model.train(was_training)
    return text_spec.decode(np.asarray(ids + out, dtype=np.int64), vocab)
