"""The LSTM classifier: padding never matters, it learns a learnable task, checkpoints round-trip,
a run resumes exactly, and a language model's weights warm-start it."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from unroll.classify_config import ClassifierConfig, ClassifyConfig
from unroll.config import ModelConfig
from unroll.data.batching import pad_batch
from unroll.errors import CheckpointError, TrainingDiverged, UnrollError
from unroll.models import LanguageModel, save_model
from unroll.models.classifier import Classifier, load_classifier, parameter_shapes, read_classifier, warm_start
from unroll.text import TextSpec, Vocab
from unroll.train import classify as classify_module
from unroll.train.classify import resume_classifier, train_classifier
from unroll.train.metrics import read_metrics
from unroll.evaluate.classify import predict_probs
from unroll.use.classify import predict_texts
from tests.support.hardware import needs_bf16_kernels
from tests.support.labeled import FILLER, synthetic_csv

TINY_MODEL = dict(emb_size=16, dropout=0.1)


def tiny_cfg(data: Path, **kw) -> ClassifyConfig:
    base = dict(data=str(data), optimizer="adam", lr=0.03, batch_size=16, epochs=6, patience=0, valid_fraction=0.2,
                max_length=None, seed=1)
    return ClassifyConfig(**{**base, **kw})


@pytest.mark.parametrize("pooling", ["mean", "max", "last", "concat"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_one_by_one(pooling, bidirectional):
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(vocab_size=20, num_classes=3, emb_size=6, hidden_size=5, num_layers=2,
                                        bidirectional=bidirectional, pooling=pooling)).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 20, n) for n in (7, 3, 1, 5)]
    tokens, mask = pad_batch(seqs, pad_id=19)
    batched = model(torch.from_numpy(tokens), torch.from_numpy(mask.sum(0).astype(np.int64)))
    alone = torch.cat([model(torch.from_numpy(s)[:, None]) for s in seqs])
    assert batched.shape == (4, 3)
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-6)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == parameter_shapes(model.cfg)


@needs_bf16_kernels
def test_bf16_autocast_gives_nearly_the_fp32_log_odds():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(vocab_size=30, num_classes=2, emb_size=8)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # weights of std 1: probabilities far from 0.5, unlike a fresh model's
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 30, n) for n in (40, 5, 17, 9, 23, 2, 31, 12)]
    fp32, bf16 = predict_probs(model, seqs), predict_probs(model, seqs, precision="bf16")
    assert np.abs(fp32[:, 1] - 0.5).mean() > 0.15 and not np.array_equal(bf16, fp32)
    log_odds = lambda p: np.log(p[:, 1] / p[:, 0])  # noqa: E731
    np.testing.assert_allclose(log_odds(bf16), log_odds(fp32), rtol=0, atol=0.05)


def test_mean_pooling_is_the_mean_of_the_real_steps():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(vocab_size=10, num_classes=2, emb_size=4)).eval()
    x = torch.tensor([[1, 2], [3, 0], [4, 0]])
    out, _ = model.rnn(model.embedding(x[:, :1]))
    pooled = model.pool(torch.cat([out, torch.full_like(out, 1e3)], 0), torch.tensor([3]))
    torch.testing.assert_close(pooled, out.mean(0))  # the 1e3 padding rows are ignored


def test_learns_the_synthetic_task_and_round_trips(tmp_path):
    data = synthetic_csv(tmp_path / "d.csv")
    result = train_classifier(tiny_cfg(data), TINY_MODEL, tmp_path / "run")
    assert result.stopped == "finished" and len(result.history) == 6
    assert result.errors["train_err"] < 0.05 and result.errors["valid_err"] < 0.1
    best = read_classifier(result.best_dir)
    assert best.labels == ["neg", "pos"] and best.extra["results"]["valid_err"] == result.errors["valid_err"]
    assert len(best.extra["results"]["history_errs"]) == 6
    curve = [r for r in read_metrics(result.out / "metrics.jsonl") if r["kind"] == "valid"]
    assert curve[-1]["train_err"] < 0.2 < curve[0]["train_err"]  # the training batches' running error
    assert result.curve.read_bytes()[:4] == b"\x89PNG"
    model, ckpt = load_classifier(result.best_dir)
    again, _ = load_classifier(result.best_dir)
    for (name, p), q in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name
    preds = predict_texts(model, ckpt, ["the plot was good and the actor", "a bad film", "bad", "good"])
    assert [p["label"] for p in preds] == ["pos", "neg", "neg", "pos"]
    assert all(0.5 < p["prob"] <= 1 and abs(sum(p["probs"].values()) - 1) < 1e-9 for p in preds)


def test_multiclass_with_max_pooling_and_bidirectional(tmp_path):
    rng = random.Random(0)
    rows = []
    for _ in range(240):
        label = rng.choice(["red", "green", "blue"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        words.insert(rng.randint(0, len(words)), label)
        rows.append(f"{label}\t{' '.join(words)}")
    path = tmp_path / "d.tsv"
    path.write_text("colour\tsentence\n" + "\n".join(rows) + "\n", encoding="utf-8")
    cfg = tiny_cfg(path, text_column="sentence", label_column="colour")
    result = train_classifier(cfg, dict(TINY_MODEL, pooling="max", bidirectional=True), tmp_path / "run")
    assert read_classifier(result.best_dir).labels == ["blue", "green", "red"]
    assert result.errors["train_err"] < 0.1


def test_max_steps_stops_mid_epoch_and_a_resume_with_more_goes_on(tmp_path):
    data = synthetic_csv(tmp_path / "d.csv", n=120)  # 96 training examples: 6 batches an epoch
    first = train_classifier(tiny_cfg(data, epochs=3, max_steps=8), TINY_MODEL, tmp_path / "run")
    assert (first.stopped, first.steps, first.epoch) == ("max_steps", 8, 1)
    assert len(first.history) == 2  # the end of epoch 1, and the final validation at step 8
    more = resume_classifier(tmp_path / "run", {"max_steps": 11})
    assert (more.stopped, more.steps) == ("max_steps", 11)


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    data = synthetic_csv(tmp_path / "d.csv", n=120)
    cfg = tiny_cfg(data, epochs=3, optimizer="adadelta", lr=None, output_l2=0.01)
    straight = train_classifier(cfg, TINY_MODEL, tmp_path / "a")

    step = classify_module.ClassifierRun.step

    def interrupt_mid_epoch(self, batch):
        if self.state.step == 9:  # an epoch has 6 batches: stop inside the second
            self.interrupted = True
        return step(self, batch)

    monkeypatch.setattr(classify_module.ClassifierRun, "step", interrupt_mid_epoch)
    assert train_classifier(cfg, TINY_MODEL, tmp_path / "b").stopped == "interrupted"
    monkeypatch.setattr(classify_module.ClassifierRun, "step", step)
    resumed = resume_classifier(tmp_path / "b")
    assert resumed.steps == straight.steps and resumed.history == straight.history
    a, b = read_classifier(tmp_path / "a"), read_classifier(tmp_path / "b")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    with pytest.raises(UnrollError, match="lr cannot change"):
        resume_classifier(tmp_path / "b", {"lr": 0.1})


def save_word_lm(directory: Path, words: list[str], **cfg) -> LanguageModel:
    torch.manual_seed(3)
    lm = LanguageModel(ModelConfig(vocab_size=len(words), emb_size=16, hidden_size=12, num_layers=1, **cfg))
    save_model(lm, directory, Vocab(words), extra={"text": TextSpec(level="word", lower=True, unit="line").to_dict()})
    return lm


def test_warm_start_copies_the_language_model_weights(tmp_path):
    data = synthetic_csv(tmp_path / "d.csv", n=60)
    words = ["<unk>", "<eos>", "good", "bad", *FILLER]
    lm = save_word_lm(tmp_path / "lm", words)
    clf = Classifier(ClassifierConfig(vocab_size=len(words), num_classes=2, emb_size=16, hidden_size=12,
                                      bidirectional=True))
    from unroll.checkpoint import load_checkpoint

    copied = warm_start(clf, load_checkpoint(tmp_path / "lm"))
    assert sorted(copied) == ["embedding.weight", "rnn.bias_hh_l0", "rnn.bias_ih_l0", "rnn.weight_hh_l0", "rnn.weight_ih_l0"]
    for name in copied:
        assert torch.equal(clf.state_dict()[name], lm.state_dict()[name]), name

    # through the trainer: the LM's vocabulary and sizes are used; 0 updates leave the weights as copied
    result = train_classifier(tiny_cfg(data, epochs=1, lr=1e-12, optimizer="sgd"), {}, tmp_path / "run",
                              init_from=tmp_path / "lm")
    best = read_classifier(result.best_dir)
    assert best.vocab.itos == words and (best.model.emb_size, best.model.hidden) == (16, 12)
    assert best.extra["init_from"] == str((tmp_path / "lm").resolve())
    np.testing.assert_allclose(best.params["rnn.weight_hh_l0"], lm.rnn.weight_hh_l0.detach().numpy(), atol=1e-9)
    with pytest.raises(UnrollError, match="emb_size come from the language model"):
        train_classifier(tiny_cfg(data), {"emb_size": 32}, tmp_path / "run2", init_from=tmp_path / "lm")


def test_warm_start_shape_mismatch_and_wrong_checkpoint_kind(tmp_path):
    save_word_lm(tmp_path / "lm", ["<unk>", "a", "b"])
    from unroll.checkpoint import load_checkpoint

    clf = Classifier(ClassifierConfig(vocab_size=3, num_classes=2, emb_size=16, hidden_size=8))
    with pytest.raises(CheckpointError, match="does not fit the classifier"):
        warm_start(clf, load_checkpoint(tmp_path / "lm"))
    with pytest.raises(CheckpointError, match="language-model checkpoint, not a classifier"):
        read_classifier(tmp_path / "lm")


def test_a_non_finite_loss_rolls_back_and_replays_with_half_the_lr(tmp_path, monkeypatch):
    """The classifier shares the language model's rollback: back to the last snapshot (here every
    4 updates), the same batches again, half the lr; max_rollbacks of them, then one clear error."""
    data = synthetic_csv(tmp_path / "d.csv", n=120)  # 6 batches an epoch
    forward = Classifier.forward
    calls = {"n": 0}

    def poisoned(self, x, lengths=None):
        calls["n"] += 1
        out = forward(self, x, lengths)
        return out * float("nan") if self.training and calls["n"] in poison else out

    monkeypatch.setattr(Classifier, "forward", poisoned)
    poison = set()
    cfg = tiny_cfg(data, epochs=2, rollback_every=4, history_test=False)
    clean = train_classifier(cfg, TINY_MODEL, tmp_path / "clean")
    calls["n"], poison = 0, {6}
    messages = []
    result = train_classifier(cfg, TINY_MODEL, tmp_path / "rolled", echo=messages.append)
    assert any("rolled back to step 4" in m and "lr now x0.5" in m for m in messages)
    assert result.steps == clean.steps == 12  # the two replayed batches are not counted twice
    assert result.stopped == "finished" and result.errors["train_err"] < 0.5
    calls["n"], poison = 0, set(range(1, 10_000))
    with pytest.raises(TrainingDiverged, match="after 3 rollbacks"):
        train_classifier(cfg, TINY_MODEL, tmp_path / "diverged")
