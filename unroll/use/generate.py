"""Generating text from a language model, one token at a time with the state carried.

    lm = load("runs/ptb")                                   # unroll.use.engine.load
    generate(lm, ["the company said", "in new york"], num_samples=3, top_p=0.9, seed=1)
    for piece in stream(lm, "ROMEO:", max_tokens=200):      # text as it is produced
        print(piece.text, end="", flush=True)

A prime is tokenized exactly like the training text and follows what a unit followed in training
(``<eos>`` for word models, a newline for character models; :func:`unroll.use.engine.start_tokens`),
so "the company said" continues a sentence and "ROMEO:" starts a line. All primes and samples run
as one batch: the primes in one padded forward pass, then one step per generated token for every
sequence still going; a sequence that reaches ``<eos>`` leaves the batch.

How the next token is drawn (:func:`next_token_probs`), in this order:

1. banned tokens get probability 0: ``<unk>`` unless ``allow_unk`` (the word-RNN tutorial re-samples
   when it draws ``<unk>``; zeroing it and renormalizing is the same distribution in one draw), and
   ``<eos>`` while fewer than ``min_length`` tokens have been generated;
2. ``temperature``: ``softmax(logits / temperature)``; below 1 sharpens, above 1 flattens;
3. ``top_k``: only the k most likely tokens keep their probability (ties at the k-th value kept);
4. ``top_p`` (nucleus): only the smallest set of most likely tokens whose probabilities sum to at
   least p (always at least one token);
5. renormalize and draw. ``greedy`` (or ``temperature`` 0) takes the most likely allowed token.

Reproducibility and the two engines: the draw is the same code for both engines, in float64 NumPy
on the host: one uniform number ``u`` per sequence and step, and the token is the first one whose
cumulative probability exceeds ``u`` (inverse CDF). Sample ``s`` of a prime takes its numbers from
its own generator ``numpy.random.default_rng([seed, crc32(prime), s])``, so a seed gives the same
text whatever else is in the batch, different primes draw independent numbers, and the NumPy and the PyTorch engine give the same samples for the same seed and
weights. They can differ only where the engines' logits differ by more than rounding: a float32
PyTorch model against the float64 NumPy one can, rarely, put ``u`` on the other side of a
cumulative-probability boundary, after which the two texts diverge. In float64 they agree.
"""

from __future__ import annotations

import secrets
import warnings
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from unroll.errors import UnrollError
from unroll.text import BOS, EOS, UNK, TextSpec, levels
from unroll.use.engine import LoadedModel, UnknownWordWarning, check_tokens, describe


@dataclass(frozen=True)
class Sampling:
    """How each next token is chosen (see the module docstring for the order of the steps)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    min_length: int = 0
    allow_unk: bool = False

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise UnrollError(f"temperature must be a number >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise UnrollError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UnrollError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.min_length < 0:
            raise UnrollError(f"min-length must be >= 0, got {self.min_length}")

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


def next_token_probs(logits: np.ndarray, sampling: Sampling, banned: Sequence[int] = ()) -> np.ndarray:
    """The distributions ``[B, V]`` the next tokens are drawn from, given the logits ``[B, V]``."""
    z = np.array(logits, dtype=np.float64)
    if banned:
        z[:, list(banned)] = -np.inf
    z /= sampling.temperature
    V = z.shape[1]
    if sampling.top_k is not None and sampling.top_k < V:
        kth = np.partition(z, V - sampling.top_k, axis=1)[:, V - sampling.top_k, None]  # k-th largest
        z[z < kth] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    if sampling.top_p is not None and sampling.top_p < 1:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # the mass of the more likely tokens
        drop = np.empty_like(p, dtype=bool)
        np.put_along_axis(drop, order, before >= sampling.top_p, axis=1)
        p[drop] = 0.0
        p /= p.sum(axis=1, keepdims=True)
    return p


def choose(logits: np.ndarray, sampling: Sampling, uniforms: np.ndarray, banned: Sequence[int] = ()) -> np.ndarray:
    """The next token ids ``[B]``: the argmax (greedy), or an inverse-CDF draw with ``uniforms [B]`` in [0, 1)."""
    if sampling.is_greedy:
        z = np.array(logits, dtype=np.float64)
        if banned:
            z[:, list(banned)] = -np.inf
        return z.argmax(axis=1)
    cdf = np.cumsum(next_token_probs(logits, sampling, banned), axis=1)
    # the first token whose cumulative probability exceeds u (never one with probability 0)
    ids = (cdf <= uniforms[:, None] * cdf[:, -1:]).sum(axis=1)
    return np.minimum(ids, cdf.shape[1] - 1)


@dataclass
class Piece:
    """New text of one sequence. Sequence ``index = prime * num_samples + sample``; its first
    piece is the prime and its last has ``done`` set, with why it stopped (``eos`` or
    ``max_tokens``) and how many tokens were generated. Its pieces joined are its text."""

    index: int
    prime: int
    sample: int
    text: str
    done: bool = False
    stopped: str | None = None
    tokens: int = 0


REPLACEMENT = "\ufffd"  # what a detokenizer gives for the bytes of a character not yet complete


class _Detokenizer:
    """Generated tokens -> text pieces that join to what ``TextSpec.decode`` gives: ``<eos>`` a
    line break, ``<bos>`` nothing, words spaced and punctuation attached by the tokenizer's own
    detokenizer (the current line is re-detokenized and only the new end is emitted)."""

    def __init__(self, spec: TextSpec, line: list[str]):
        self.spec, self.detok = spec, spec.tokenizer.detokenize
        self.joined = levels.get(spec.level).characters
        self.line, self.shown = list(line), self.detok(line)

    def add(self, token: str) -> str:
        if token == EOS and self.spec.eos:
            rest = self.detok(self.line)[len(self.shown):] if self.line and not self.joined else ""
            self.line, self.shown = [], ""
            return rest + ("" if self.joined and self.spec.unit == "text" else "\n")
        if token == BOS and self.spec.bos:
            return ""
        if self.joined:
            return token
        self.line.append(token)
        # a character spelled in UTF-8 byte pieces (subword byte fallback) shows once it is whole
        text = self.detok(self.line).rstrip(REPLACEMENT)
        # a detokenizer could rewrite earlier text; what is printed stays, the token is appended
        piece = text[len(self.shown):] if text.startswith(self.shown) else " " + self.detok([token])
        self.shown += piece
        return piece


def stream(
    lm: LoadedModel,
    primes: str | Sequence[str] = "",
    *,
    num_samples: int = 1,
    max_tokens: int = 100,
    stop_at_eos: bool = True,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    min_length: int = 0,
    allow_unk: bool = False,
) -> Iterator[Piece]:
    """Sample ``num_samples`` continuations of each prime, yielding text as it is produced.

    Pieces of different sequences interleave (one step of the whole batch at a time); use
    :func:`in_order` to get them sequence by sequence. Each continuation has at most
    ``max_tokens`` tokens and, with ``stop_at_eos``, ends at ``<eos>`` (not shown). Prime words
    not in the vocabulary are read as ``<unk>`` with an :class:`UnknownWordWarning`; characters
    never seen in training raise :class:`UnrollError`.
    """
    sampling = Sampling(temperature, top_k, top_p, greedy, min_length, allow_unk)
    primes = [primes] if isinstance(primes, str) else list(primes)
    if not primes or num_samples < 1 or max_tokens < 0 or (seed is not None and seed < 0):
        raise UnrollError("need at least one prime (it may be empty), num-samples >= 1, max-tokens >= 0, seed >= 0")
    seed = secrets.randbits(32) if seed is None else seed
    vocab, S = lm.vocab, num_samples
    encoded = [_encode_prime(lm, p, "prime" if len(primes) == 1 else f"prime {i + 1}") for i, p in enumerate(primes)]
    B = len(primes) * S
    keys = [zlib.crc32(p.encode("utf-8")) for p in primes]
    rngs = [np.random.default_rng([seed, keys[i // S], i % S]) for i in range(B)]
    detoks = [_Detokenizer(lm.spec, encoded[i // S][2]) for i in range(B)]
    for i in range(B):
        yield Piece(i, i // S, i % S, encoded[i // S][1])

    logits, state = lm.engine.prefill([e[0] for e in encoded])
    rows = np.repeat(np.arange(len(primes)), S)  # each prime's state, once per sample
    logits, state = logits[rows], lm.engine.select(state, rows)
    banned = [vocab.unk_id] if vocab.unk_id is not None and not allow_unk else []
    eos = vocab.stoi.get(EOS)
    live = np.arange(B)  # the sequence each batch row holds
    for t in range(max_tokens):
        ban = banned + [eos] if eos is not None and t < min_length else banned
        uniforms = np.array([rngs[i].random() for i in live])
        ids = choose(logits, sampling, uniforms, ban)
        going = np.ones(len(live), dtype=bool)
        for row, (i, token) in enumerate(zip(live.tolist(), ids.tolist())):
            if stop_at_eos and token == eos:
                going[row] = False
                yield Piece(i, i // S, i % S, "", done=True, stopped="eos", tokens=t)
            else:
                yield Piece(i, i // S, i % S, detoks[i].add(vocab.itos[token]))
        if not going.any() or t == max_tokens - 1:
            live = live[going]
            break
        if not going.all():
            keep = np.flatnonzero(going)
            live, ids, state = live[keep], ids[keep], lm.engine.select(state, keep)
        logits, state = lm.engine.step(ids, state)
    for i in live.tolist():
        yield Piece(i, i // S, i % S, "", done=True, stopped="max_tokens", tokens=max_tokens)


def generate(lm: LoadedModel, primes: str | Sequence[str] = "", **options) -> list[str]:
    """The texts (prime + continuation) of :func:`stream` with the same arguments, in sequence
    order: prime 0's samples first."""
    texts: dict[int, list[str]] = defaultdict(list)
    for piece in stream(lm, primes, **options):
        texts[piece.index].append(piece.text)
    return ["".join(texts[i]) for i in sorted(texts)]


def in_order(pieces: Iterable[Piece]) -> Iterator[Piece]:
    """The pieces regrouped sequence by sequence (index 0 first), still streaming: the sequence
    being shown passes straight through, the others wait until it is done."""
    waiting: dict[int, list[Piece]] = defaultdict(list)
    current = 0
    for piece in pieces:
        if piece.index != current:
            waiting[piece.index].append(piece)
            continue
        yield piece
        finished = piece.done
        while finished:
            current += 1
            buffered = waiting.pop(current, [])
            yield from buffered
            finished = bool(buffered) and buffered[-1].done


def _encode_prime(lm: LoadedModel, prime: str, where: str) -> tuple[np.ndarray, str, list[str]]:
    """``(model input ids, the prime as shown, the tokens of its unfinished last line)``."""
    spec, vocab = lm.spec, lm.vocab
    tokens, lengths = spec.tokenize_units(prime, complete=False)
    if not tokens and spec.bos:
        tokens, lengths = [BOS], [1]
    missing = check_tokens(tokens, spec, vocab, where)
    if missing:
        warnings.warn(f"{where}: {len(missing)} word(s) not in the vocabulary, read as {UNK}: {describe(missing)}",
                      UnknownWordWarning, stacklevel=3)
    ids = np.array(lm.boundary + vocab.encode(tokens).tolist(), dtype=np.int64)
    if ids.size == 0:
        raise UnrollError("this model has no start marker (<bos>, <eos> or a newline) to begin from; give a prime text")
    line = [t for t in tokens[len(tokens) - lengths[-1]:] if t != BOS] if tokens else []
    shown = prime if levels.get(spec.level).characters else prime.rstrip()
    return ids, shown, line
