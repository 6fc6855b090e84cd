"""A linear baseline for text classification: NB-SVM's log-count-ratio features with logistic
regression (Wang & Manning 2012, the "NBLR" form), over word unigrams and bigrams.

On short texts such a model is hard to beat, and a user who trains an LSTM should know what it
gets on the same split. It reads the data exactly as ``unroll classify train`` does (the same
valid split for the same seed and fraction, the same tokens), so the two are comparable.

    result = linear_baseline(ClassifyConfig(data="reviews/"))
    result["test_accuracy"], result["c"]

Features: binarized uni+bigram counts ``x``; for each class ``c`` (one against the rest) the
log-count ratio ``r_c = log((p_c / |p_c|_1) / (q_c / |q_c|_1))`` with ``p_c = 1 + sum of x over
the class's examples`` and ``q_c`` the same over the others; a logistic regression on
``x * r_c``; the class with the highest score wins. The inverse regularization strength ``C`` is
chosen on the valid split. Needs scikit-learn (``pip install "unroll-lm[baseline]"``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from unroll.classify_config import ClassifyConfig
from unroll.data.labeled import clean_text, classify_spec, label_ids, label_names, read_labeled, training_splits
from unroll.errors import UnrollError

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)


def _sklearn():
    try:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise UnrollError('the linear baseline needs scikit-learn: pip install "unroll-lm[baseline]"') from None
    return CountVectorizer, LogisticRegression


class NBLogisticRegression:
    """One-against-the-rest logistic regressions on NB-scaled binary features."""

    def __init__(self, c: float, classes: int, seed: int):
        _, LogisticRegression = _sklearn()
        self.classes = classes
        self.models = [LogisticRegression(C=c, max_iter=1000, random_state=seed) for _ in range(classes)]
        self.ratios: list[np.ndarray] = []

    def fit(self, x, y: np.ndarray) -> "NBLogisticRegression":
        self.ratios = []
        for k, model in enumerate(self.models):
            ours = y == k
            p = np.asarray(x[ours].sum(axis=0)).ravel() + 1.0
            q = np.asarray(x[~ours].sum(axis=0)).ravel() + 1.0
            r = np.log((p / p.sum()) / (q / q.sum()))
            self.ratios.append(r)
            model.fit(x.multiply(r).tocsr(), ours.astype(int))
        return self

    def predict(self, x) -> np.ndarray:
        scores = np.stack([m.decision_function(x.multiply(r).tocsr()) for m, r in zip(self.models, self.ratios)], 1)
        return scores.argmax(axis=1)


def linear_baseline(cfg: ClassifyConfig) -> dict[str, Any]:
    """Train the baseline on ``cfg``'s data and split; accuracies on valid (C chosen there) and test."""
    CountVectorizer, _ = _sklearn()
    start = time.perf_counter()
    splits = training_splits(read_labeled(cfg.data, cfg.text_column, cfg.label_column, cfg.encoding),
                             cfg.valid_fraction, cfg.seed)
    labels = label_names(splits["train"], cfg.data)
    spec = classify_spec(cfg.level if cfg.level in ("word", "whitespace") else "word", cfg.lower)
    vectorizer = CountVectorizer(tokenizer=lambda t: spec.tokenize(clean_text(t)), lowercase=False,
                                 token_pattern=None, ngram_range=(1, 2), binary=True, dtype=np.float64)
    x = {"train": vectorizer.fit_transform([t for t, _ in splits["train"]])}
    x |= {s: vectorizer.transform([t for t, _ in ex]) for s, ex in splits.items() if s != "train"}
    y = {s: label_ids(ex, labels, f"{cfg.data} ({s} split)") for s, ex in splits.items()}
    tried = {}
    for c in C_GRID:
        model = NBLogisticRegression(c, len(labels), cfg.seed).fit(x["train"], y["train"])
        tried[c] = (float(np.mean(model.predict(x["valid"]) == y["valid"])), model)
    best_c = max(C_GRID, key=lambda c: (tried[c][0], -c))  # ties: the stronger regularization
    model = tried[best_c][1]
    out = {"model": "NB-LR (Wang & Manning 2012) over word uni+bigrams", "labels": labels, "c": best_c,
           "features": len(vectorizer.vocabulary_), "examples": {s: len(ex) for s, ex in splits.items()},
           "valid_accuracy": tried[best_c][0], "valid_accuracy_by_c": {str(c): tried[c][0] for c in C_GRID}}
    if "test" in x:
        out["test_accuracy"] = float(np.mean(model.predict(x["test"]) == y["test"]))
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out
