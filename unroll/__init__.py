"""unroll: recurrent neural-network language models.

A readable NumPy reference engine (``unroll.reference``) and a fast PyTorch engine
(``unroll.models``, ``unroll.train``) that give the same numbers, with the text pipeline,
datasets, training, evaluation, generation, scoring and classification around them.
"""

__version__ = "0.1.0"

from unroll.config import ModelConfig  # noqa: E402
from unroll.errors import UnrollError  # noqa: E402

__all__ = ["ModelConfig", "UnrollError", "__version__"]
