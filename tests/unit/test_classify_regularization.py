"""The classifier's regularization: embedding and word dropout, weight decay, early stopping on the
valid loss, and the small-data defaults a run records in its config.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unroll.classify_config import ClassifierConfig, ClassifyConfig
from unroll.models.classifier import Classifier, load_classifier, read_classifier
from unroll.train.classify import train_classifier
from unroll.train.metrics import read_metrics
from tests.support.labeled import synthetic_csv


def rnn_inputs(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """What the recurrent layers read for ``x`` (after the embedding and its dropouts)."""
    seen = []
    handle = model.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    model(x)
    handle.remove()
    return seen[0]


def test_word_dropout_zeroes_whole_tokens_in_training_only():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(vocab_size=50, num_classes=2, emb_size=8, word_dropout=0.5, emb_dropout=0.0))
    x = torch.randint(1, 50, (60, 8))
    embedded = model.embedding(x).detach()
    seen = rnn_inputs(model.train(), x)
    dropped = (seen == 0).all(-1)
    assert 0.35 < dropped.float().mean() < 0.65
    assert torch.equal(seen[~dropped], embedded[~dropped])  # the kept words as they are, not rescaled
    assert torch.equal(rnn_inputs(model.eval(), x), embedded)


def test_embedding_dropout_drops_units_and_rescales_the_rest():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(vocab_size=50, num_classes=2, emb_size=8, emb_dropout=0.25, word_dropout=0.0))
    x = torch.randint(1, 50, (60, 8))
    embedded = model.embedding(x).detach()
    seen = rnn_inputs(model.train(), x)
    kept = seen != 0
    assert 0.15 < 1 - kept.float().mean() < 0.35
    assert not (seen == 0).all(-1).any()  # units, not whole words
    torch.testing.assert_close(seen[kept], embedded[kept] / 0.75)
    assert torch.equal(rnn_inputs(model.eval(), x), embedded)


def tiny_cfg(data: Path, **kw) -> ClassifyConfig:
    base = dict(data=str(data), optimizer="adam", lr=0.03, batch_size=16, epochs=6, patience=0, valid_fraction=0.2,
                max_length=None, seed=1)
    return ClassifyConfig(**{**base, **kw})


def test_weight_decay_shrinks_the_weights(tmp_path):
    data = synthetic_csv(tmp_path / "d.csv")
    norms = {}
    for decay in (0.0, 0.5):
        result = train_classifier(tiny_cfg(data, optimizer="adamw", weight_decay=decay, epochs=3),
                                  dict(emb_size=16), tmp_path / f"run{decay}")
        model, _ = load_classifier(result.out / "best")
        norms[decay] = float(model.embedding.weight.detach().norm())
        assert read_classifier(result.best_dir).extra["train"]["weight_decay"] == decay
    assert norms[0.5] < 0.9 * norms[0.0]


@pytest.mark.parametrize("stop_on", ["loss", "error"])
def test_best_parameters_are_those_of_the_best_valid_figure(tmp_path, stop_on):
    data = synthetic_csv(tmp_path / "d.csv")
    result = train_classifier(tiny_cfg(data, stop_on=stop_on, lr=0.1, epochs=8), dict(emb_size=16), tmp_path / "run")
    curve = [r for r in read_metrics(result.out / "metrics.jsonl") if r["kind"] == "valid"]
    key = "valid_loss" if stop_on == "loss" else "valid_err"
    running = np.minimum.accumulate([r[key] for r in curve])
    assert [r["best"] for r in curve] == [True] + [bool(b < a) for a, b in zip(running, running[1:])]
    best = min(curve, key=lambda r: (r[key], r["update"]))
    assert result.errors["valid_err"] == best["valid_err"]
    assert read_classifier(result.best_dir).extra["train"]["stop_on"] == stop_on


def test_patience_counts_validations_without_a_better_loss(tmp_path):
    data = synthetic_csv(tmp_path / "d.csv")
    result = train_classifier(tiny_cfg(data, stop_on="loss", lr=0.3, epochs=40, patience=2), dict(emb_size=16),
                              tmp_path / "run")
    curve = [r for r in read_metrics(result.out / "metrics.jsonl") if r["kind"] == "valid"]
    assert result.stopped == "early_stopping" and len(curve) < 40
    assert [r["best"] for r in curve[-2:]] == [False, False] and curve[-3]["best"]


def test_the_defaults_are_regularized_and_recorded_and_the_tutorial_preset_keeps_its_recipe(tmp_path, capsys):
    from unroll.cli import main
    from unroll.cli.classify import resolve_settings

    data = synthetic_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", "--data", str(data), "--emb-size", "8", "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    saved = read_classifier(out / "best")
    train, model = saved.extra["train"], saved.model
    assert (train["optimizer"], train["batch_size"], train["stop_on"], train["patience"]) == ("adam", 64, "loss", 3)
    assert (model.emb_dropout, model.word_dropout, model.dropout) == (0.5, 0.3, 0.5)
    classifier, _ = load_classifier(out / "best")
    assert (classifier.emb_dropout.p, classifier.dropout.p) == (0.5, 0.5)

    model, cfg = resolve_settings("imdb-lstm", {}, {})
    assert (cfg.optimizer, cfg.batch_size, cfg.stop_on, cfg.patience) == ("adadelta", 16, "error", 10)
    assert (model["emb_dropout"], model["word_dropout"], model["dropout"]) == (0.0, 0.0, 0.5)
    capsys.readouterr()


def test_a_warm_start_fine_tunes_as_ulmfit_unless_told_otherwise(tmp_path, capsys):
    from unroll.cli import main
    from unroll.cli.classify import resolve_settings

    model, cfg = resolve_settings(None, {}, {"data": "d"}, warm_start=True)
    assert model["pooling"] == "concat" and cfg.gradual_unfreezing and cfg.optimizer == "adam"
    model, cfg = resolve_settings(None, {"pooling": "mean"}, {"data": "d", "gradual_unfreezing": False}, warm_start=True)
    assert model["pooling"] == "mean" and not cfg.gradual_unfreezing
    model, cfg = resolve_settings(None, {}, {"data": "d"})
    assert model["pooling"] == "mean" and not cfg.gradual_unfreezing
    model, cfg = resolve_settings("imdb-lstm", {}, {}, lm_encoder=True, warm_start=True)  # a preset keeps its own
    assert model["pooling"] == "mean" and not cfg.gradual_unfreezing

    data = synthetic_csv(tmp_path / "d.csv")
    unlabeled = tmp_path / "more.txt"
    unlabeled.write_text("the plot was good\nthe actor was bad\n" * 20, encoding="utf-8")
    assert main(["classify", "train", "--data", str(data), "--emb-size", "8", "--epochs", "1", "--pretrain-lm", "2s",
                 "--unlabeled", str(unlabeled), "--quiet", "--out", str(tmp_path / "run")]) == 0
    saved = read_classifier(tmp_path / "run" / "best")
    assert saved.model.pooling == "concat" and saved.extra["train"]["gradual_unfreezing"] is True
    capsys.readouterr()


def test_gradual_unfreezing_trains_one_more_layer_each_epoch(tmp_path, monkeypatch):
    from unroll.train import classify as classify_module

    data = synthetic_csv(tmp_path / "d.csv")
    seen = []
    real = classify_module.ClassifierRun.end_epoch

    def record(run):
        seen.append({n: p.detach().clone() for n, p in run.model.named_parameters()})
        real(run)

    monkeypatch.setattr(classify_module.ClassifierRun, "end_epoch", record)
    torch.manual_seed(0)
    start = {}
    real_init = classify_module.ClassifierRun._adopt

    def adopt(run, model):
        real_init(run, model)
        start.update({n: p.detach().clone() for n, p in model.named_parameters()})

    monkeypatch.setattr(classify_module.ClassifierRun, "_adopt", adopt)
    train_classifier(tiny_cfg(data, gradual_unfreezing=True, epochs=3, optimizer="adamw", weight_decay=0.1),
                     dict(emb_size=8, num_layers=2, dropout=0.0), tmp_path / "run")
    changed = [{n for n in start if not torch.equal(start[n] if k == 0 else seen[k - 1][n], seen[k][n])}
               for k in range(3)]
    assert changed[0] == {"classifier.weight", "classifier.bias"}
    assert changed[1] == changed[0] | {n for n in start if n.startswith("rnn.") and n.endswith("_l1")}
    assert changed[2] == set(start)
