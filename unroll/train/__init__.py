"""Training: one run lifecycle (run.py) that the language-model (lm.py) and classifier
(classify.py) runs fill in; optimizers incl. NT-ASGD, lr schedules, resumable trainer state,
metrics and learning curves."""

from unroll.train.classify import ClassifierRun, ClassifyResult, resume_classifier, train_classifier
from unroll.train.lm import LanguageModelRun, TrainResult, resume, train

__all__ = ["ClassifierRun", "ClassifyResult", "LanguageModelRun", "TrainResult", "resume", "resume_classifier",
           "train", "train_classifier"]
