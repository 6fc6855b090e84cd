"""Using trained models: evaluation (perplexity, bits per character), generation, scoring.

    from unroll.use import load, generate, score, rank
    lm = load("runs/ptb")                    # a checkpoint or training run; engine="torch" or "numpy"
    generate(lm, "the company said", num_samples=3, top_p=0.9, seed=1)
    score(lm, ["the company said it would"])[0].perplexity
"""

from unroll.use.engine import LoadedModel, UnknownWordWarning, load
from unroll.use.generate import generate, in_order, stream
from unroll.use.score import SentenceScore, parse_groups, rank, score

__all__ = [
    "LoadedModel", "SentenceScore", "UnknownWordWarning",
    "generate", "in_order", "load", "parse_groups", "rank", "score", "stream",
]
