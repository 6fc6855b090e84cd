"""The PyTorch recurrent language model: the fast engine's counterpart of ``unroll.reference``.

    inputs [T, B] ─► embedding ─► dropout ─► rnn (L layers) ─► dropout ─► decoder ─► logits [T, B, V]
                     (whole words  (input)   (hidden dropout between (output)  (tied: the
                      dropped)                layers; weight dropout)           embedding matrix,
                                                                                after a projection
                                                                                H -> E if E != H)

With ``adaptive_softmax`` the decoder is ``unroll.models.adaptive.AdaptiveSoftmax`` (named
``adaptive``): training takes its loss, which computes only the clusters a batch's targets fall
in; evaluation returns the full log-probabilities in place of the logits (a log-probability
vector is a valid logit vector: its softmax is itself), so scoring and sampling read it unchanged.

Design: the recurrent layers are the cell's stack from ``unroll.cells``, named ``rnn``; for the
classic cells one ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``num_layers = L``. That keeps the
``state_dict`` keys equal to the checkpoint names (``rnn.weight_ih_l0`` ...) with no renaming,
lets cuDNN and oneDNN (CPU LSTM, fp32 and bf16) run the whole stack, and gives Zaremba's
per-step dropout between layers for free (the module's ``dropout`` argument). Variational
(locked) dropout needs one mask per sequence *between* layers, which ``nn.LSTM`` cannot do, and
so does weight dropout (a DropConnect mask on ``weight_hh``, AWD-LSTM's "wdrop"); only then, and
only in training, the same parameters are run one layer at a time through ``torch.lstm`` /
``torch.gru`` / ``torch.rnn_*`` (the functions ``nn.LSTM`` itself calls, so oneDNN is still
used) with the masks applied in between. A stack of unroll's own (the QRNN) handles dropout,
padding and its state itself.
"""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from unroll import cells
from unroll.checkpoint import Checkpoint, load_checkpoint, parameter_shapes, save_checkpoint
from unroll.config import ModelConfig
from unroll.init import init_params
from unroll.models.adaptive import AdaptiveSoftmax
from unroll.models.dropout import dropout, embedding_dropout, keep_mask, locked_dropout, locked_mask
from unroll.models.loss import linear_cross_entropy
from unroll.text.spec import TextSpec

# One [L, B, H] tensor per name in the cell's ``state`` (LSTM: (h, c); GRU, RNN: h; QRNN: c), a
# tuple when there are several; a windowed QRNN adds its past inputs [w - 1, B, E]. Batch: dim 1.
State = Union[Tensor, tuple[Tensor, Tensor]]


def detach_state(state: State | None) -> State | None:
    """Cut the graph behind a carried state (truncated BPTT), keeping its values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


class LanguageModel(nn.Module):
    """Embedding -> stacked recurrent layers -> linear decoder, built from a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_size)
        # Per-step dropout between layers runs inside the module; locked dropout runs outside it.
        between = 0.0 if cfg.locked_dropout else cfg.p_hidden
        self.cell = cells.get(cfg.cell)
        layer = self.cell.torch_class()
        if issubclass(layer, nn.RNNBase):
            self.rnn = layer(cfg.emb_size, cfg.hidden_size, cfg.num_layers, dropout=between, **self.cell.options)
        else:  # unroll's own layer stack (e.g. unroll.models.qrnn): dropout, padding and state are its job
            self.rnn = layer.from_config(cfg)
        # tied across sizes: the last layer's output is mapped H -> E first (ModelConfig.projects)
        self.projection = nn.Linear(cfg.hidden_size, cfg.emb_size, bias=False) if cfg.projects else None
        if cfg.adaptive_softmax:  # a head and tail clusters instead of one [V, D] decoder
            self.decoder = None
            self.adaptive = AdaptiveSoftmax(cfg)
        else:
            self.decoder = nn.Linear(cfg.decoder_size, cfg.vocab_size)
        # Training may ask for a sparse embedding gradient (only the rows of the batch's words);
        # see LanguageModelRun. It changes no number, only what the gradient tensor stores.
        self.sparse_embedding_grad = False
        if cfg.tie_weights:
            # weight tying (Press & Wolf 2017; Inan et al. 2017): one [V, E] matrix reads and writes words
            self.decoder.weight = self.embedding.weight
        self.reset_parameters()

    # ---- initialization ------------------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialize as the config says, by the rule both engines share (``unroll.init``).

        The seed comes from torch's generator, so ``torch.manual_seed`` makes this reproducible.
        """
        seed = int(torch.randint(0, 2**62, (1,)))
        params = init_params(self.cfg, np.random.default_rng(seed), np.float64)
        for name, p in self.named_parameters():
            p.copy_(torch.from_numpy(params[name]))

    # ---- running -------------------------------------------------------------------------
    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros in the layout ``forward`` takes and returns, on the model's device and dtype."""
        ref = self.embedding.weight
        device = device or ref.device
        if not self._torch_stack:
            return self.rnn.init_state(batch_size, ref.dtype, device)
        shape = (self.cfg.num_layers, batch_size, self.cfg.hidden_size)
        state = tuple(torch.zeros(shape, dtype=ref.dtype, device=device) for _ in self.cell.state)
        return state if len(state) > 1 else state[0]

    @property
    def _torch_stack(self) -> bool:
        """Whether the layers are torch's own nn.LSTM / nn.GRU / nn.RNN (packed, run layer by layer)."""
        return isinstance(self.rnn, nn.RNNBase)

    detach_state = staticmethod(detach_state)

    def forward(
        self,
        inputs: Tensor,
        state: State | None = None,
        lengths: Tensor | list[int] | None = None,
        targets: Tensor | None = None,
        activation_reg: tuple[float, float] | None = None,
    ) -> tuple[Tensor, State] | tuple[Tensor, State, Tensor]:
        """Logits ``[T, B, V]`` for token ids ``inputs [T, B]``, and the state after the last step.

        ``lengths [B]`` (optional; padding is trailing) makes each sequence's returned state the
        one after its last real token, so a padded batch gives the same numbers as one sequence
        at a time. Logits at padded positions are meaningless; mask them out of the loss.

        With ``targets [T, B]`` the first value returned is the mean cross-entropy per token
        instead of the logits, computed by the fused decoder + loss (``unroll.models.loss``): the
        training path, which never materializes float32 logits. With ``activation_reg = (ar, tar)``
        as well, a third value is returned: the activation penalty to add to the loss (see
        ``activation_penalty``), kept apart so the loss stays the plain cross-entropy.
        """
        cfg = self.cfg
        T = inputs.size(0)
        x = embedding_dropout(self.embedding.weight, inputs, cfg.emb_dropout, self.training, self.sparse_embedding_grad)
        x = self._dropout(x, cfg.p_input)
        packed = False
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            packed = bool((lengths != T).any())
        if not self._torch_stack:  # it takes the lengths itself (the qrnn: causal, so no packing needed)
            out, state = self.rnn(x, state, lengths if packed else None)
            packed = False
        else:
            if packed:
                x = pack_padded_sequence(x, lengths, enforce_sorted=False)
            if self.training and ((cfg.locked_dropout and cfg.p_hidden > 0) or cfg.weight_dropout > 0):
                out, state = self._run_layer_by_layer(x, state)
            else:
                out, state = self.rnn(x, state)
        if packed:
            out = pad_packed_sequence(out, total_length=T)[0]
        raw, out = out, self._dropout(out, cfg.dropout)
        to_decoder = out if self.projection is None else self.projection(out)
        if targets is not None:
            if self.decoder is None:  # the adaptive softmax computes only the clusters the targets are in
                loss = self.adaptive(to_decoder.flatten(0, 1), targets.flatten())
            else:
                loss = linear_cross_entropy(to_decoder.flatten(0, 1), self.decoder.weight, self.decoder.bias,
                                            targets.flatten())
            if activation_reg is None:
                return loss, self._master_dtype(state)
            return loss, self._master_dtype(state), self.activation_penalty(raw, out, *activation_reg)
        if self.decoder is None:
            return self.adaptive.log_probs(to_decoder), self._master_dtype(state)
        return self.decoder(to_decoder), self._master_dtype(state)

    def activation_penalty(self, raw: Tensor, dropped: Tensor, ar: float, tar: float) -> Tensor:
        """AR + TAR (Merity et al. 2017) on the last layer's output ``[T, B, H]``; zero in eval mode.

        AR, ``ar * mean(dropped^2)``, keeps activations small; TAR, ``tar * mean((h_t - h_{t-1})^2)``
        on the output before dropout, keeps them from jumping between steps. Both regularize
        without touching the cell, so every cell (and its fast kernels) takes them.
        """
        penalty = raw.new_zeros((), dtype=torch.float32)
        if not self.training:
            return penalty
        if ar:
            penalty = penalty + ar * dropped.float().pow(2).mean()
        if tar and raw.size(0) > 1:
            penalty = penalty + tar * (raw[1:] - raw[:-1]).float().pow(2).mean()
        return penalty

    def _master_dtype(self, state: State) -> State:
        """Under autocast the cell returns a bf16 state; carry it in the weights' dtype instead."""
        dtype = self.embedding.weight.dtype
        if isinstance(state, tuple):
            return tuple(s.to(dtype) for s in state)  # type: ignore[return-value]
        return state.to(dtype)

    def _dropout(self, x: Tensor, p: float) -> Tensor:
        """Dropout with probability ``p`` on a non-recurrent connection ``[T, B, D]``: locked or per step."""
        if not self.training or p == 0:
            return x
        if self.cfg.locked_dropout:
            return locked_dropout(x, p, self.training)
        return dropout(x, p, self.training)

    def _run_layer_by_layer(
        self, x: Tensor | PackedSequence, state: State | None
    ) -> tuple[Tensor | PackedSequence, State]:
        """The recurrent stack one layer at a time, with dropout between layers and on ``weight_hh``.

        Between layers: one locked mask per sequence, or a fresh one per element. Weight dropout:
        one DropConnect mask on each layer's ``weight_hh`` for the whole batch.
        """
        cfg, lstm = self.cfg, len(self.cell.state) == 2  # (h, c)
        packed = isinstance(x, PackedSequence)
        data, batch_sizes = (x.data, x.batch_sizes) if packed else (x, None)
        B = int(batch_sizes[0]) if packed else data.size(1)
        if state is None:
            state = self.init_state(B, data.device)
        hs, cs = (list(state[0]), list(state[1])) if lstm else (list(state), None)
        if packed:
            # packed rows are time-major, sorted by length: row r belongs to sorted sequence rows[r]
            order = x.sorted_indices.to(data.device)
            hs = [h[order] for h in hs]
            cs = [c[order] for c in cs] if lstm else None
            live = torch.arange(B)[None, :] < batch_sizes[:, None]
            rows = torch.arange(B, device=data.device).expand(len(batch_sizes), B)[live.to(data.device)]
        run = getattr(torch, self.rnn.mode.lower())  # the function the module calls: torch.lstm, torch.rnn_tanh, ...
        for k in range(cfg.num_layers):
            if k > 0 and cfg.p_hidden > 0 and cfg.locked_dropout:
                mask = locked_mask(B, cfg.hidden_size, cfg.p_hidden, data)
                data = data * (mask[rows] if packed else mask.unsqueeze(0))
            elif k > 0 and cfg.p_hidden > 0:
                data = dropout(data, cfg.p_hidden, True)
            weights = [getattr(self.rnn, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if cfg.weight_dropout > 0:
                weights[1] = weights[1] * keep_mask(weights[1].shape, cfg.weight_dropout, weights[1])
            hx = [hs[k][None], cs[k][None]] if lstm else hs[k][None]
            # positional flags: has_biases, num_layers, dropout, train, bidirectional[, batch_first]
            if packed:
                result = run(data, batch_sizes, hx, weights, True, 1, 0.0, True, False)
            else:
                result = run(data, hx, weights, True, 1, 0.0, True, False, False)
            data, hs[k] = result[0], result[1][0]
            if lstm:
                cs[k] = result[2][0]
        h = torch.stack(hs)
        c = torch.stack(cs) if lstm else None
        if packed:
            back = x.unsorted_indices.to(data.device)
            h, c = h[:, back], (c[:, back] if lstm else None)
            data = PackedSequence(data, batch_sizes, x.sorted_indices, x.unsorted_indices)
        return data, ((h, c) if lstm else h)

    # ---- parameters and checkpoints ------------------------------------------------------
    def num_parameters(self) -> int:
        """Trainable parameters, a tied matrix counted once."""
        return sum(p.numel() for p in self.parameters())

    def checkpoint_params(self) -> dict[str, np.ndarray]:
        """The weights under their checkpoint names as NumPy arrays (tied: no ``decoder.weight``)."""
        state = self.state_dict()
        out = {}
        for name in parameter_shapes(self.cfg):
            t = state[name].detach().cpu()
            out[name] = (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().copy()
        return out

    @classmethod
    def from_checkpoint(
        cls, ckpt: Checkpoint, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> "LanguageModel":
        """A model with the checkpoint's weights (float32 unless ``dtype`` says otherwise)."""
        model = cls(ckpt.model).to(device=device, dtype=dtype or torch.float32)
        params = dict(ckpt.params)
        if ckpt.model.tie_weights:
            params["decoder.weight"] = params["embedding.weight"]
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in params.items()})
        return model


def save_model(
    model: LanguageModel, directory: str | os.PathLike, vocab: Any, extra: dict | None = None,
    text: TextSpec | None = None,
) -> None:
    """Write ``model`` as a checkpoint directory (see :mod:`unroll.checkpoint`).

    ``vocab`` is a ``unroll.text.Vocab`` or its ``to_dict()``; ``extra`` holds other config.json
    sections (``"train"``, ...); ``text`` is written as the ``"text"`` section, with the files of
    a learned tokenizer.
    """
    vocab_dict = vocab.to_dict() if hasattr(vocab, "to_dict") else dict(vocab)
    save_checkpoint(directory, Checkpoint(model.checkpoint_params(), model.cfg, vocab_dict, dict(extra or {}), text))


def load_model(
    directory: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> tuple[LanguageModel, Checkpoint]:
    """Read a checkpoint directory; returns the model (in eval mode) and the checkpoint (vocab, extra)."""
    ckpt = load_checkpoint(directory)
    return LanguageModel.from_checkpoint(ckpt, device=device, dtype=dtype).eval(), ckpt
