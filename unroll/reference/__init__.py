"""The NumPy reference engine: RNN, LSTM, GRU and QRNN language models with hand-written BPTT.

Written to be read, correct to machine precision (see ``unroll gradcheck``), and the ground truth
that the PyTorch engine is tested against. Vectorized over the batch; a loop over time.

    model = LanguageModel(ModelConfig(vocab_size=V, cell="lstm"))
    loss, grads, state = model.loss_and_grads(inputs, targets, mask, state, truncate=None)
"""

from unroll.reference.generate import next_token_distribution, sample_sentence
from unroll.reference.gradcheck import check_gradients, numerical_gradient, relative_error
from unroll.init import init_params
from unroll.reference.model import (
    LanguageModel,
    State,
    Trace,
    load_model,
    save_model,
    softmax,
    softmax_cross_entropy,
)
from unroll.reference.sgd import SGD, train_sgd

__all__ = [
    "SGD",
    "LanguageModel",
    "State",
    "Trace",
    "check_gradients",
    "init_params",
    "load_model",
    "next_token_distribution",
    "numerical_gradient",
    "relative_error",
    "sample_sentence",
    "save_model",
    "softmax",
    "softmax_cross_entropy",
    "train_sgd",
]
