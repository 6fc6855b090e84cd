"""The PyTorch engine: the same models as ``unroll.reference``, plus GRU, dropout variants,
tied weights, mixed precision and GPUs."""

from unroll.models.device import resolve_device
from unroll.models.language_model import LanguageModel, State, detach_state, load_model, save_model

__all__ = ["LanguageModel", "State", "detach_state", "load_model", "resolve_device", "save_model"]
