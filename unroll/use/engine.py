"""A trained model ready to use: weights in either engine, with the vocabulary and text settings.

Generation and scoring need three things from a model, and both engines provide them here with
the same NumPy float64 results, so the code above them (sampling, scoring) is written once:

- ``prefill(prompts)``: run padded prompts of different lengths in one batch; the logits after
  each prompt's last token ``[B, V]`` and the state there;
- ``step(ids, state)``: one token per sequence -> the next logits ``[B, V]``;
- ``target_log_probs(inputs, targets)``: ``log p(targets[t, b] | inputs[:t+1, b])``, ``[T, B]``;
- ``log_probs(inputs)``: the whole next-token distribution ``log p(. | inputs[:t+1, b])``, ``[T, B, V]``
  (for the top alternatives at each position; ``[T, B, V]`` float64, so for short texts).

How a line becomes model input is fixed here too (:func:`unit_tokens`, :func:`start_tokens`),
so that scoring and generation see text exactly as training did.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from unroll import rundir
from unroll.data import pad_batch
from unroll.errors import CheckpointError, UnrollError
from unroll.text import EOS, TextSpec, Vocab, levels

ENGINES = ("torch", "numpy")


class UnknownWordWarning(UserWarning):
    """Words not in the vocabulary were read as ``<unk>``."""


class TorchEngine:
    """The PyTorch engine (``unroll.models.LanguageModel``), in eval mode, on its own device."""

    def __init__(self, model: Any):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.device = next(model.parameters()).device

    def prefill(self, prompts: list[np.ndarray]) -> tuple[np.ndarray, Any]:
        torch = self.torch
        tokens, _ = pad_batch(prompts)
        lengths = np.array([len(p) for p in prompts])
        with torch.inference_mode():
            x = torch.from_numpy(tokens).to(self.device)
            # lengths: each sequence's state stops at its own last token
            logits, state = self.model(x, None, lengths if (lengths != len(tokens)).any() else None)
            last = logits[torch.from_numpy(lengths - 1).to(self.device), torch.arange(len(prompts), device=self.device)]
            return self._numpy(last), state

    def step(self, ids: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        torch = self.torch
        # oneDNN's RNN primitive costs milliseconds of set-up per call on the CPU, several times
        # the arithmetic of one step at batch 1 (2x650: ~7 ms against ~1 ms); ATen's own kernels don't.
        with torch.inference_mode(), _without_onednn(self.device.type == "cpu"):
            logits, state = self.model(torch.from_numpy(ids.reshape(1, -1)).to(self.device), state)
            return self._numpy(logits[0]), state

    def select(self, state: Any, rows: np.ndarray) -> Any:
        """The state of the sequences ``rows`` only (finished ones leave the batch)."""
        idx = self.torch.from_numpy(rows).to(self.device)
        if isinstance(state, tuple):
            return tuple(s.index_select(1, idx) for s in state)
        return state.index_select(1, idx)

    def target_log_probs(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            logits, _ = self.model(torch.from_numpy(inputs).to(self.device))
            logits = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits
            y = torch.from_numpy(targets).to(self.device)
            # log softmax at the targets only: no second [T, B, V] array
            lp = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
            return self._numpy(lp)

    def log_probs(self, inputs: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            logits, _ = self.model(self.torch.from_numpy(inputs).to(self.device))
            return log_softmax(self._numpy(logits))

    def _numpy(self, t: Any) -> np.ndarray:
        return t.to(dtype=self.torch.float64).cpu().numpy()


@contextlib.contextmanager
def _without_onednn(off: bool) -> Iterator[None]:
    """Turn oneDNN off for the duration (``torch.backends.mkldnn.flags`` would also reset TF32
    settings, with a warning)."""
    import torch

    mkldnn = torch.backends.mkldnn
    was = mkldnn.enabled
    mkldnn.enabled = was and not off
    try:
        yield
    finally:
        mkldnn.enabled = was


class NumpyEngine:
    """The NumPy reference engine (``unroll.reference.LanguageModel``)."""

    def __init__(self, model: Any):
        self.model = model

    def prefill(self, prompts: list[np.ndarray]) -> tuple[np.ndarray, Any]:
        tokens, mask = pad_batch(prompts)
        lengths = np.array([len(p) for p in prompts])
        # masked (padded) steps keep the state, so each final state is at the prompt's last token
        logits, state = self.model.forward(tokens, None, mask)
        return np.asarray(logits[lengths - 1, np.arange(len(prompts))], np.float64), state

    def step(self, ids: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        logits, state = self.model.forward(ids.reshape(1, -1), state)
        return np.asarray(logits[0], np.float64), state

    def select(self, state: Any, rows: np.ndarray) -> Any:
        return [tuple(a[rows] for a in s) if isinstance(s, tuple) else s[rows] for s in state]

    def target_log_probs(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        logits, _ = self.model.forward(inputs)
        logits = np.asarray(logits, np.float64)
        shift = logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits - shift).sum(axis=-1)) + shift[..., 0]
        return np.take_along_axis(logits, targets[..., None], -1)[..., 0] - log_z

    def log_probs(self, inputs: np.ndarray) -> np.ndarray:
        logits, _ = self.model.forward(inputs)
        return log_softmax(np.asarray(logits, np.float64))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Normalized log-probabilities over the last axis; a no-op on outputs that already are
    log-probabilities, so it is safe whichever a model returns."""
    shift = z.max(axis=-1, keepdims=True)
    return z - (np.log(np.exp(z - shift).sum(axis=-1, keepdims=True)) + shift)


class LoadedModel:
    """A model in either engine with the vocabulary and :class:`TextSpec` it was trained with.

    ``model`` is a ``unroll.models.LanguageModel`` (PyTorch) or a ``unroll.reference.LanguageModel``
    (NumPy); :func:`load` reads one from a checkpoint directory. A PyTorch model is put in eval mode.
    """

    def __init__(self, model: Any, vocab: Vocab, spec: TextSpec):
        from unroll.reference import LanguageModel as NumpyModel

        self.model, self.vocab, self.spec = model, vocab, spec
        self.engine = NumpyEngine(model) if isinstance(model, NumpyModel) else TorchEngine(model)

    @property
    def boundary(self) -> list[int]:
        """What precedes a unit in training, fed before its first token (see :func:`start_tokens`)."""
        return [self.vocab[t] for t in start_tokens(self.spec, self.vocab)]


def load(
    directory: str | os.PathLike,
    engine: str = "torch",
    device: str | None = None,
    dtype: Any = None,
) -> LoadedModel:
    """Read a checkpoint directory (or a training run's: its ``best/`` checkpoint) for use.

    ``engine``: ``torch`` (``device``: auto, cpu, cuda ...; ``dtype`` a torch dtype, float32 by
    default) or ``numpy`` (float64 unless ``dtype`` says otherwise).
    """
    if engine not in ENGINES:
        raise UnrollError(f"unknown engine {engine!r}; choose torch or numpy")
    best = rundir.best(directory)
    directory = best if (best / "model.safetensors").is_file() else rundir.resolve(directory)
    if engine == "numpy":
        from unroll.reference import load_model as load_numpy

        model, ckpt = load_numpy(directory, dtype=dtype or np.float64)
    else:
        from unroll.models import load_model as load_torch
        from unroll.models import resolve_device

        model, ckpt = load_torch(directory, device=resolve_device(device), dtype=dtype)
    if ckpt.text is None:
        raise CheckpointError(f"{directory}: config.json has no 'text' settings; cannot tokenize like training did")
    return LoadedModel(model, Vocab.from_dict(ckpt.vocab), ckpt.text)


def start_tokens(spec: TextSpec, vocab: Vocab) -> list[str]:
    """The token a unit follows in the training stream, to feed before its first token.

    Word models with ``<eos>`` markers saw every sentence after the previous one's ``<eos>``;
    character models saw every line after a ``"\\n"``. A spec with ``<bos>`` needs nothing more
    (its units start with ``<bos>``), and a model with no marker at all gets none: then a unit's
    first token is context, not predicted.
    """
    if spec.bos:
        return []
    if spec.eos and EOS in vocab:
        return [EOS]
    if levels.get(spec.level).characters and "\n" in vocab:
        return ["\n"]
    return []


def unit_tokens(spec: TextSpec, vocab: Vocab, line: str) -> list[str]:
    """The tokens of one line as training saw it, markers included: ``<bos>``/``<eos>`` for word
    models, the closing ``"\\n"`` for character models that know it."""
    end = "\n" if spec.unit != "text" or "\n" in vocab else ""
    return spec.tokenize(line + end)


def check_tokens(tokens: list[str], spec: TextSpec, vocab: Vocab, where: str) -> list[str]:
    """The out-of-vocabulary tokens among ``tokens`` (they encode to ``<unk>``).

    Raises :class:`UnrollError` when they cannot be read: a character never seen in training,
    or an unknown word for a vocabulary that has no ``<unk>``.
    """
    missing = [t for t in tokens if t not in vocab]
    if not missing:
        return []
    t = missing[0]
    if levels.get(spec.level).characters:
        raise UnrollError(
            f"{where}: character {t!r} (U+{ord(t):04X}) never appears in this model's training text; "
            f"remove or replace it"
        )
    if vocab.unk_id is None:
        raise UnrollError(f"{where}: word {t!r} is not in the vocabulary and this model has no <unk>; replace it")
    return missing


def describe(missing: list[str], n: int = 5) -> str:
    """``'foo', 'bar' ...``: the first few distinct tokens of a list, for a warning."""
    distinct = list(dict.fromkeys(missing))
    return ", ".join(repr(t) for t in distinct[:n]) + (" ..." if len(distinct) > n else "")

