"""The evaluation layer: the numbers a model is judged by, shared by training and use.

Perplexity, and the figures that compare across tokenization levels (bits per character and
per byte, word perplexity), over a token stream (either engine), and classification error. It sits below ``train/`` and ``use/`` and imports neither; torch is imported only to
evaluate a torch model, so the NumPy engine stays torch-free.

    from unroll.evaluate import evaluate
    evaluate(model, ids, batch_size=10, bptt=35)   # {"loss", "ppl", "bits_per_token", "nll", "tokens"}
    evaluate(model, corpus.splits["test"], counts=corpus.counts["test"])  # and "bpc", "bpb", "word_ppl"
"""

from unroll.evaluate.stream import LN2, evaluate, mean_loss, metrics, per_text

__all__ = ["LN2", "evaluate", "mean_loss", "metrics", "per_text"]
