"""A recurrent language model in NumPy with backpropagation through time written out by hand.

The data flow for a batch of B sequences of T tokens (time-major, as everywhere in unroll)::

    inputs [T, B] ──embedding lookup──► x [T, B, E] ──layer 0──► h [T, B, H] ──► ... ──layer L-1──►
        h_top [T, B, H] ──decoder──► logits [T, B, V] ──softmax, cross-entropy vs targets──► loss

With tied weights and E != H, a projection maps h_top to the decoder's width first:
``out = h_top W_proj^T`` [T, B, E], and the decoder reads ``out``. With the adaptive softmax
(:mod:`unroll.reference.adaptive`) the decoder gives log-probabilities, used as the logits.

Each layer runs over the whole sequence before the next one starts (as ``nn.LSTM`` does), so its
input projection ``x W_ih^T + b_ih`` is one matrix product for all steps; only ``h W_hh^T + b_hh``
is inside the loop over time (the QRNN has no ``W_hh``: only elementwise products remain there).
The loop over time is the algorithm; everything else is vectorized over B.

Masks: ``mask[t, b] = 0`` marks padding. A masked step keeps the previous state
(``h_t = h_{t-1}``, and ``c_t = c_{t-1}`` for the LSTM), adds nothing to the loss, and so sends
no gradient into the parameters; gradients from later steps pass straight through it.

State: one entry per layer, ``h [B, H]`` for the RNN and GRU, ``(h [B, H], c [B, H])`` for the LSTM
and the QRNN; with a QRNN first-layer window w > 1, one more entry at the end, ``past [B, w - 1, E]``:
the last inputs of layer 0 (oldest first), which the next steps' windows reach back to. The final
state of a call can be passed to the next call (carried state for truncated BPTT over a long
stream); gradients never flow into a state that was passed in: it is a constant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from unroll import cells
from unroll.checkpoint import Checkpoint, load_checkpoint, parameter_shapes, save_checkpoint
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.init import init_params
from unroll.reference import adaptive as adaptive_softmax
from unroll.text.spec import TextSpec

State = list  # per layer: h [B, H] (rnn_tanh, rnn_relu, gru) or (h, c) (lstm, qrnn); then qrnn's past inputs


@dataclass
class Trace:
    """What a forward pass keeps for the backward pass (one entry per layer in the lists)."""

    inputs: np.ndarray  # [T, B] token ids
    mask: np.ndarray | None  # [T, B, 1] bool, or None when every step is real
    layer_inputs: list[np.ndarray]  # x_t of each layer, [T, B, in] (a qrnn window: [T, B, w * E])
    window_sources: np.ndarray | None  # qrnn window: the step of each input block [T, w, B] (-1: carried)
    h_prev: list[np.ndarray]  # h_{t-1} of each layer, [T, B, H]
    caches: list[list[tuple]]  # what the cell's step_backward needs, per layer and step
    top: np.ndarray  # h_t of the last layer, [T, B, H]
    out: np.ndarray  # what the decoder reads: top, or its projection [T, B, E]
    logits: np.ndarray  # [T, B, V] (the adaptive softmax: log-probabilities)
    final_state: State
    adaptive: adaptive_softmax.AdaptiveCache | None = None


class LanguageModel:
    """embedding -> ``num_layers`` RNN, LSTM, GRU or QRNN layers -> linear decoder -> softmax.

    ``params`` is a plain dict with exactly the names and shapes of
    :func:`unroll.checkpoint.parameter_shapes` (the PyTorch engine's ``state_dict`` names). With
    ``tie_weights`` there is no ``decoder.weight``: the decoder uses ``embedding.weight`` (through
    ``projection.weight`` [E, H] when E != H).
    Dropout settings in the config are ignored: this engine always computes the deterministic
    (evaluation-mode) model.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        params: dict[str, np.ndarray] | None = None,
        *,
        dtype: np.dtype | type = np.float64,
        seed: int = 0,
    ) -> None:
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64, np.longdouble):  # longdouble: for gradcheck
            raise UnrollError(f"dtype must be float32 or float64, got {self.dtype}")
        if params is None:
            params = init_params(cfg, np.random.default_rng(seed), self.dtype)
        expected = parameter_shapes(cfg)
        if set(params) != set(expected):
            raise UnrollError(
                f"parameters do not match the config: expected {sorted(expected)}, got {sorted(params)}"
            )
        for name, shape in expected.items():
            if tuple(params[name].shape) != shape:
                raise UnrollError(f"{name} has shape {tuple(params[name].shape)}, config says {shape}")
        self.params = {name: np.array(params[name], dtype=self.dtype) for name in expected}
        # one time step of the cell, forward and backward (unroll.reference.rnn, .lstm, .gru, .qrnn)
        spec = cells.get(cfg.cell)
        self.cell = spec.numpy_class()(**spec.options)

    # ---- parameters and state -------------------------------------------------------------

    def _decoder_weight(self) -> np.ndarray:
        # weight tying: the output embedding is the input embedding (Press & Wolf 2017)
        return self.params["embedding.weight" if self.cfg.tie_weights else "decoder.weight"]

    def _layer(self, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
        """``(W_ih, W_hh, b_ih, b_hh)`` of layer k (the qrnn has no ``W_hh``, ``b_hh``: None)."""
        p = self.params
        return p[f"rnn.weight_ih_l{k}"], p.get(f"rnn.weight_hh_l{k}"), p[f"rnn.bias_ih_l{k}"], p.get(f"rnn.bias_hh_l{k}")

    @property
    def _past_steps(self) -> int:
        """How many earlier inputs layer 0 reads besides x_t (a qrnn window w: w - 1; else 0)."""
        return self.cfg.qrnn_window - 1

    def init_state(self, batch_size: int) -> State:
        """The zero state for ``batch_size`` sequences."""
        return self._external(*self._internal(None, batch_size))

    def _internal(self, state: State | None, batch_size: int) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray | None]:
        """Per-layer tuples ``(h,)`` or ``(h, c)``, the form the cells use, and the past inputs (or None)."""
        shape = (batch_size, self.cfg.hidden_size)
        n_layers, n_past = self.cfg.num_layers, self._past_steps
        past_shape = (batch_size, n_past, self.cfg.emb_size)
        if state is None:
            names = self.cell.state_names
            past = np.zeros(past_shape, self.dtype) if n_past else None
            return [tuple(np.zeros(shape, self.dtype) for _ in names) for _ in range(n_layers)], past
        if len(state) != n_layers + (1 if n_past else 0):
            raise ValueError(f"state has {len(state)} entries, the model needs {n_layers} layers"
                             + (" and the past inputs" if n_past else ""))
        past = None
        if n_past:
            past = np.asarray(state[-1], self.dtype)
            if past.shape != past_shape:
                raise ValueError(f"the past inputs must have shape {past_shape}, got {past.shape}")
        layers = [tuple(s) if isinstance(s, tuple | list) else (s,) for s in state[:n_layers]]
        for s in layers:
            if len(s) != len(self.cell.state_names) or any(np.shape(a) != shape for a in s):
                raise ValueError(f"each layer's state must be {self.cell.state_names} of shape {shape}")
        return [tuple(np.asarray(a, self.dtype) for a in s) for s in layers], past

    def _external(self, layers: list[tuple[np.ndarray, ...]], past: np.ndarray | None) -> State:
        return [s if len(s) > 1 else s[0] for s in layers] + ([] if past is None else [past])

    # ---- forward --------------------------------------------------------------------------

    def run(self, inputs: np.ndarray, state: State | None = None, mask: np.ndarray | None = None) -> Trace:
        """The forward pass, keeping what :meth:`backward` needs."""
        inputs = np.asarray(inputs)
        if inputs.ndim != 2 or inputs.shape[0] == 0 or not np.issubdtype(inputs.dtype, np.integer):
            raise ValueError(f"inputs must be a non-empty [T, B] integer array, got {inputs.dtype} {inputs.shape}")
        if inputs.min() < 0 or inputs.max() >= self.cfg.vocab_size:
            raise ValueError(f"token ids must be in [0, {self.cfg.vocab_size})")
        T, B = inputs.shape
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (T, B):
                raise ValueError(f"mask must have the shape of inputs {(T, B)}, got {mask.shape}")
            mask = mask.astype(bool)[:, :, None]
        states, past = self._internal(state, B)

        # Embedding lookup: row x_t of embedding.weight is the tutorial's U-times-one-hot, by index.
        x = self.params["embedding.weight"][inputs]
        sources = None
        if past is not None:
            x, past, sources = self._window(x, past, mask)
        layer_inputs, h_prevs, caches, final = [], [], [], []
        for k in range(self.cfg.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(k)
            # the input's share of z_t, for every step at once (one [T*B, in] matrix product)
            zx = (x.reshape(T * B, -1) @ w_ih.T + b_ih).reshape(T, B, -1)
            s = states[k]
            hs = np.empty((T, B, self.cfg.hidden_size), self.dtype)
            h_prev = np.empty_like(hs)
            layer_caches = []
            for t in range(T):
                new, cache = self.cell.step(zx[t], s, w_hh, b_hh)
                if mask is not None:  # padding: keep the old state
                    new = tuple(np.where(mask[t], a, old) for a, old in zip(new, s))
                h_prev[t] = s[0]
                layer_caches.append(cache)
                s = new
                hs[t] = s[0]
            layer_inputs.append(x)
            h_prevs.append(h_prev)
            caches.append(layer_caches)
            final.append(s)
            x = hs
        out = x.reshape(T * B, -1)
        if self.cfg.projects:
            out = out @ self.params["projection.weight"].T
        cache = None
        if self.cfg.adaptive_softmax:
            logits, cache = adaptive_softmax.forward(self.cfg, self.params, out)
        else:
            logits = out @ self._decoder_weight().T
            logits += self.params["decoder.bias"]  # in place: [T*B, V] is the largest array of the step
        logits = logits.reshape(T, B, -1)
        return Trace(inputs, mask, layer_inputs, sources, h_prevs, caches, x, out.reshape(T, B, -1), logits,
                     self._external(final, past), cache)

    def _window(self, x: np.ndarray, past: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Layer 0's input for a qrnn window of w: ``[x_t, x_{t-1}, ..., x_{t-w+1}]`` at each step ``[T, B, w * E]``.

        ``x_{t-j}`` is the j-th previous *real* input: a masked step keeps the state, the past
        inputs included. Returns the windows, the past inputs after the last step ``[B, w - 1, E]``,
        and for the backward pass the step each block came from, ``[T, w, B]`` (-1: the carried past).
        """
        T, B, E = x.shape
        n = self._past_steps
        buf, src = past.copy(), np.full((B, n), -1)  # oldest first
        windows = np.empty((T, B, (n + 1) * E), x.dtype)
        sources = np.empty((T, n + 1, B), np.int64)
        for t in range(T):
            blocks = [x[t]] + [buf[:, n - j] for j in range(1, n + 1)]
            windows[t] = np.concatenate(blocks, axis=1)
            sources[t] = np.concatenate([np.full((1, B), t), src[:, ::-1].T])
            real = np.ones((B, 1), bool) if mask is None else mask[t]
            buf = np.where(real[:, :, None], np.concatenate([buf[:, 1:], x[t][:, None]], axis=1), buf)
            src = np.where(real, np.concatenate([src[:, 1:], np.full((B, 1), t)], axis=1), src)
        return windows, buf, sources

    def forward(
        self, inputs: np.ndarray, state: State | None = None, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, State]:
        """``(logits [T, B, V], final_state)``."""
        trace = self.run(inputs, state, mask)
        return trace.logits, trace.final_state

    def probabilities(
        self,
        inputs: np.ndarray,
        state: State | None = None,
        mask: np.ndarray | None = None,
        temperature: float = 1.0,
    ) -> tuple[np.ndarray, State]:
        """``(p [T, B, V], final_state)``: ``p[t, b]`` is the distribution of the token after ``inputs[t, b]``."""
        logits, state = self.forward(inputs, state, mask)
        return softmax(logits / temperature), state

    def predict(
        self, inputs: np.ndarray, state: State | None = None, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, State]:
        """``(ids [T, B], final_state)``: the most likely next token at every position."""
        logits, state = self.forward(inputs, state, mask)
        return logits.argmax(axis=-1), state

    def loss(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray | None = None,
        state: State | None = None,
    ) -> tuple[float, State]:
        """``(mean cross-entropy over unmasked tokens, final_state)``."""
        logits, final = self.forward(inputs, state, mask)
        loss, _ = softmax_cross_entropy(logits, targets, _token_weights(targets, mask, self.dtype))
        return loss, final

    # ---- backward -------------------------------------------------------------------------

    def loss_and_grads(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray | None = None,
        state: State | None = None,
        truncate: int | None = None,
    ) -> tuple[float, dict[str, np.ndarray], State]:
        """``(loss, grads, final_state)``; ``grads`` has the keys of ``params``.

        ``truncate=None`` is full BPTT over the T steps of this call; ``truncate=k`` is the
        tutorial's ``bptt_truncate`` (see :meth:`backward`).
        """
        trace = self.run(inputs, state, mask)
        weights = _token_weights(targets, mask, self.dtype)
        loss, d_logits = softmax_cross_entropy(trace.logits, targets, weights)
        return loss, self.backward(trace, d_logits, truncate), trace.final_state

    def backward(self, trace: Trace, d_logits: np.ndarray, truncate: int | None = None) -> dict[str, np.ndarray]:
        """Gradients of ``sum(d_logits * logits)`` (any objective of the logits) for every parameter.

        Truncation (``truncate=k``, the word-RNN tutorial's ``bptt_truncate``): the gradient of
        the output at step t goes back through steps t, t-1, ..., t-k only (through at most k
        recurrent connections, in every layer); the paths that reach the state of step t-k-1
        and earlier are cut. Equivalently, this is the exact gradient of the *truncated objective*
        ``sum_t J_t`` in which each ``J_t`` is computed by restarting the recurrence at step t-k
        from the state of step t-k-1 held constant, which is what the gradient checker verifies.
        ``truncate >= T-1`` is full BPTT.
        """
        if truncate is not None and truncate < 0:
            raise ValueError(f"truncate must be >= 0 or None, got {truncate}")
        cfg = self.cfg
        T, B = trace.inputs.shape
        d_logits = d_logits.reshape(T * B, cfg.vocab_size)
        grads: dict[str, np.ndarray] = {}

        d_decoder = None
        if trace.adaptive is not None:
            out_grads, d_out = adaptive_softmax.backward(cfg, self.params, trace.out.reshape(T * B, -1),
                                                         trace.adaptive, d_logits)
            grads.update(out_grads)
        else:  # decoder: logits = out W_dec^T + b_dec
            d_decoder = d_logits.T @ trace.out.reshape(T * B, -1)
            grads["decoder.bias"] = d_logits.sum(axis=0)
            d_out = d_logits @ self._decoder_weight()
        if cfg.projects:  # out = h_top W_proj^T
            grads["projection.weight"] = d_out.T @ trace.top.reshape(T * B, -1)
            d_out = d_out @ self.params["projection.weight"]
        d_top = d_out.reshape(T, B, cfg.hidden_size)

        # the recurrence: dL/d(input's share) and dL/d(recurrent share) of z_t, every layer and step
        dzx, dzh, d_x = self._backward_through_time(trace, d_top, truncate)

        # zx_t = x_t W_ih^T + b_ih and zh_t = h_{t-1} W_hh^T + b_hh, summed over steps and the batch
        for k in range(cfg.num_layers):
            dzx_k, dzh_k = dzx[k].reshape(T * B, -1), dzh[k].reshape(T * B, -1)
            grads[f"rnn.weight_ih_l{k}"] = dzx_k.T @ trace.layer_inputs[k].reshape(T * B, -1)
            grads[f"rnn.bias_ih_l{k}"] = dzx_k.sum(axis=0)
            if f"rnn.weight_hh_l{k}" in self.params:  # the qrnn has no recurrent weights
                grads[f"rnn.weight_hh_l{k}"] = dzh_k.T @ trace.h_prev[k].reshape(T * B, -1)
                grads[f"rnn.bias_hh_l{k}"] = dzh_k.sum(axis=0)

        # embedding: each looked-up row gets the gradient of its x_t (np.add.at: ids repeat)
        d_embedding = np.zeros_like(self.params["embedding.weight"])
        np.add.at(d_embedding, trace.inputs.reshape(-1), d_x.reshape(T * B, -1))
        if cfg.tie_weights:
            d_embedding += d_decoder
        elif d_decoder is not None:
            grads["decoder.weight"] = d_decoder
        grads["embedding.weight"] = d_embedding
        return {name: grads[name] for name in self.params}

    def _backward_through_time(
        self, trace: Trace, d_top: np.ndarray, truncate: int | None
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """``(dzx, dzh, d_x)``: ``dzx[k][t]`` = dJ/d(x_t W_ih^T + b_ih) and ``dzh[k][t]`` =
        dJ/d(h_{t-1} W_hh^T + b_hh) of layer k (the same for the RNN and LSTM, which add them),
        and ``d_x [T, B, E]``, the gradient of each step's embedded input.

        Full BPTT is one sweep from the last step to the first. Truncated BPTT gives every output
        term its own sweep of k+1 steps (so it costs O(T k), as in the tutorial). The weight
        gradients are linear in dzx and dzh, so the sweeps simply add into the same arrays.
        """
        T, B = trace.inputs.shape
        g = self.cell.gates * self.cfg.hidden_size
        dzx = [np.zeros((T, B, g), self.dtype) for _ in range(self.cfg.num_layers)]
        dzh = [np.zeros((T, B, g), self.dtype) for _ in range(self.cfg.num_layers)]
        sweeps = [(T - 1, 0)] if truncate is None else [(t, max(0, t - truncate)) for t in range(T)]
        w_ih0 = self.params["rnn.weight_ih_l0"]
        if trace.window_sources is None:
            for end, start in sweeps:
                self._sweep(trace, d_top, dzx, dzh, end, start, every_step=truncate is None)
            return dzx, dzh, dzx[0] @ w_ih0
        # A window reads inputs from before a sweep's first step; there they belong to the state
        # the sweep starts from (a constant), so each sweep hands back its own input gradient.
        d_x = np.zeros((T, B, self.cfg.emb_size), self.dtype)
        for end, start in sweeps:
            before = dzx[0][start : end + 1].copy()
            self._sweep(trace, d_top, dzx, dzh, end, start, every_step=truncate is None)
            d_windows = (dzx[0][start : end + 1] - before) @ w_ih0
            self._window_backward(d_windows, trace.window_sources[start : end + 1], start, d_x)
        return dzx, dzh, d_x

    def _window_backward(self, d_windows: np.ndarray, sources: np.ndarray, start: int, d_x: np.ndarray) -> None:
        """Add the gradient of the windows ``[n, B, w * E]`` of steps start.. into the inputs ``d_x``:
        block j of a step goes to the step it was read from, when that is ``start`` or later."""
        E = self.cfg.emb_size
        columns = np.broadcast_to(np.arange(d_windows.shape[1]), sources[:, 0].shape)
        for j in range(sources.shape[1]):
            live = sources[:, j] >= start
            np.add.at(d_x, (sources[:, j][live], columns[live]), d_windows[:, :, j * E : (j + 1) * E][live])

    def _sweep(
        self, trace: Trace, d_top: np.ndarray, dzx: list[np.ndarray], dzh: list[np.ndarray], end: int, start: int,
        every_step: bool,
    ) -> None:
        """Backpropagate from step ``end`` down to step ``start``, adding into ``dzx`` and ``dzh``.

        ``d_top[t]`` (the output's gradient) enters the top layer at every step (full BPTT) or
        only at ``end`` (one truncated term). At each step the layers are visited top-down: a
        layer's input gradient ``dzx W_ih`` is the gradient of the layer below's ``h_t``.
        """
        B, H = d_top.shape[1:]
        n_layers = self.cfg.num_layers
        weights = [self._layer(k)[:2] for k in range(n_layers)]
        d_state = [tuple(np.zeros((B, H), self.dtype) for _ in self.cell.state_names) for _ in range(n_layers)]
        for t in range(end, start - 1, -1):
            d_h_above = d_top[t] if every_step or t == end else None
            for k in reversed(range(n_layers)):
                w_ih, w_hh = weights[k]
                d = d_state[k]
                if d_h_above is not None:
                    d = (d[0] + d_h_above, *d[1:])
                if trace.mask is not None:
                    # a masked step copied its state, so its gradient goes straight to step t-1
                    m = trace.mask[t]
                    passed = tuple(np.where(m, 0, a) for a in d)
                    d = tuple(np.where(m, a, 0) for a in d)
                dzx_t, dzh_t, d_prev = self.cell.step_backward(d, trace.caches[k][t], w_hh)
                if trace.mask is not None:
                    d_prev = tuple(a + b for a, b in zip(d_prev, passed))
                dzx[k][t] += dzx_t
                dzh[k][t] += dzh_t
                d_state[k] = d_prev
                # layer 0's input gradient (for the embedding) comes from dzx after the sweep
                d_h_above = dzx_t @ w_ih if k > 0 else None


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (shifted by the max, so exp never overflows)."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """``(sum_i w_i * -log softmax(logits_i)[y_i], d/dlogits)`` with ``d = w (softmax - onehot(y))``.

    ``logits`` [T, B, V] is overwritten by its gradient: at V = 10,000 a copy is the largest
    array of the whole step.
    """
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)
    y = np.asarray(targets).reshape(-1)
    w = weights.reshape(-1)
    rows = np.arange(len(y))
    flat -= flat.max(axis=1, keepdims=True)
    target_logit = flat[rows, y]
    np.exp(flat, out=flat)
    total = flat.sum(axis=1)
    loss = float(np.sum(w * (np.log(total) - target_logit)))
    flat *= (w / total)[:, None]  # w * softmax
    flat[rows, y] -= w  # minus w * onehot(y)
    return loss, logits


def _token_weights(targets: np.ndarray, mask: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """1/N on each of the N unmasked tokens, 0 on padding: the weights of the mean loss."""
    targets = np.asarray(targets)
    m = np.ones(targets.shape, dtype) if mask is None else np.asarray(mask, dtype)
    if m.shape != targets.shape:
        raise ValueError(f"targets {targets.shape} and mask {m.shape} must have the same shape")
    n = m.sum()
    if n == 0:
        raise UnrollError("the mask selects no tokens: a batch needs at least one real target")
    return m / n


def save_model(
    model: LanguageModel, directory: str | os.PathLike, vocab, extra: dict | None = None, text: TextSpec | None = None
) -> None:
    """Write ``model`` as an unroll checkpoint (the format the PyTorch engine reads).

    ``vocab`` is a ``unroll.text.Vocab`` or its ``to_dict()``; ``extra`` holds other config.json
    sections (``"train"``, ...); ``text`` is written as the ``"text"`` section, with the files of
    a learned tokenizer.
    """
    vocab_dict = vocab.to_dict() if hasattr(vocab, "to_dict") else dict(vocab)
    save_checkpoint(directory, Checkpoint(dict(model.params), model.cfg, vocab_dict, dict(extra or {}), text))


def load_model(directory: str | os.PathLike, dtype: np.dtype | type = np.float64) -> tuple[LanguageModel, Checkpoint]:
    """Read a checkpoint (from either engine): ``(model, checkpoint)``; the checkpoint has the vocab."""
    ckpt = load_checkpoint(directory)
    return LanguageModel(ckpt.model, ckpt.params, dtype=dtype), ckpt
