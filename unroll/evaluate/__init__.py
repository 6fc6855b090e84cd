"""The evaluation layer: the numbers a model is judged by, shared by training and use.

Perplexity and bits per character over a token stream (either engine) and classification
error. It sits below ``train/`` and ``use/`` and imports neither; torch is imported only to
evaluate a torch model, so the NumPy engine stays torch-free.

    from unroll.evaluate import evaluate
    evaluate(model, ids, batch_size=10, bptt=35)   # {"loss", "ppl", "bpc", "tokens"}
"""

from unroll.evaluate.stream import LN2, evaluate, mean_loss, metrics

__all__ = ["LN2", "evaluate", "mean_loss", "metrics"]
