"""Training: the loop (trainer), optimizers incl. NT-ASGD, lr schedules, resumable trainer state,
metrics and learning curves."""

from unroll.train.trainer import TrainResult, Trainer, resume, train

__all__ = ["TrainResult", "Trainer", "resume", "train"]
