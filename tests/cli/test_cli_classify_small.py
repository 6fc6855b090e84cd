"""Small-data classification: the linear baseline (`unroll classify baseline`), language-model
pretraining in one command (`--pretrain-lm`, `--unlabeled`), discriminative encoder rates, and
one error line for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.support.cli import one_error_line
from tests.support.labeled import synthetic_csv
from unroll.checkpoint import load_checkpoint
from unroll.cli import main
from unroll.train.pretrain import adaptive_cutoffs

pytest.importorskip("sklearn", reason="needs the baseline extra (pip install 'unroll-lm[baseline]')")

TINY = ["--emb-size", "16", "--dropout", "0.1", "--optimizer", "adam", "--lr", "0.03", "--epochs", "2",
        "--valid-fraction", "0.2", "--max-length", "none", "--seed", "1", "--quiet"]


def test_the_baseline_separates_a_separable_set(tmp_path, capsys):
    data = synthetic_csv(tmp_path / "d.csv")
    assert main(["classify", "baseline", "--data", str(data), "--valid-fraction", "0.2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["valid_accuracy"] == 1.0 and res["examples"] == {"train": 192, "valid": 48}
    assert "test_accuracy" not in res and res["c"] in (0.1, 0.3, 1.0, 3.0, 10.0)


def test_the_baseline_uses_the_test_split_and_more_than_two_classes(tmp_path, capsys):
    words = {"a": "red", "b": "green", "c": "blue"}
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("test", 10)):
        for label, word in words.items():
            (tmp_path / "d" / split / label).mkdir(parents=True)
            for i in range(n):
                filler = " ".join(rng.choice(["the", "a", "cat", "sat", "on", "mat"], 5))
                (tmp_path / "d" / split / label / f"{i}.txt").write_text(f"{filler} {word} {filler}", encoding="utf-8")
    assert main(["classify", "baseline", "--data", str(tmp_path / "d")]) == 0
    line = capsys.readouterr().out
    assert "test accuracy 100.00%" in line and "train 86, valid 4, test 30" in line


def test_pretrain_lm_trains_a_language_model_then_starts_the_classifier_from_it(tmp_path, capsys, monkeypatch):
    data = synthetic_csv(tmp_path / "d.csv")
    unlabeled = tmp_path / "more.txt"
    unlabeled.write_text("the plot was good\nthe actor was bad\n" * 20, encoding="utf-8")
    out = tmp_path / "run"
    starts = {}

    from unroll.train import classify as classify_module
    real = classify_module.warm_start

    def recorded(model, lm):
        copied = real(model, lm)
        starts["copied"] = copied
        starts["embedding"] = model.embedding.weight.detach().clone()  # before any update
        return copied

    monkeypatch.setattr(classify_module, "warm_start", recorded)
    assert main(["classify", "train", "--data", str(data), *TINY, "--pretrain-lm", "4s", "--unlabeled", str(unlabeled),
                 "--encoder-lr", "0.003", "--out", str(out)]) == 0
    lm = load_checkpoint(tmp_path / "run-lm" / "run" / "best")
    assert torch.equal(starts["embedding"], torch.from_numpy(lm.params["embedding.weight"]))
    assert "rnn.weight_hh_l0" in starts["copied"]
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["train"]["encoder_lr"] == 0.003 and config["init_from"].endswith("run-lm/run/best")
    corpus = (tmp_path / "run-lm" / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
    corpus += (tmp_path / "run-lm" / "corpus" / "valid.txt").read_text(encoding="utf-8").splitlines()
    assert len(corpus) == 192 + 40  # the training split (not the 48 held out for validation) and the unlabeled
    capsys.readouterr()


def test_the_cutoffs_of_the_language_models_adaptive_softmax():
    assert adaptive_cutoffs(3999) == () and adaptive_cutoffs(4000) == (2000,)
    assert adaptive_cutoffs(10000) == (2000,) and adaptive_cutoffs(20000) == (2000, 10000)
    assert adaptive_cutoffs(250000) == (2000, 10000, 50000)


def test_a_large_vocabulary_pretrains_with_an_adaptive_softmax(tmp_path, capsys):
    data = synthetic_csv(tmp_path / "d.csv")
    unlabeled = tmp_path / "more.txt"
    words = [f"w{i}" for i in range(4500)]
    unlabeled.write_text("\n".join(" ".join(words[i:i + 15]) for i in range(0, len(words), 15)) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["classify", "train", "--data", str(data), *TINY, "--pretrain-lm", "3s", "--unlabeled", str(unlabeled),
                 "--out", str(out)]) == 0
    lm = load_checkpoint(tmp_path / "run-lm" / "run" / "best")
    assert lm.model.adaptive_softmax and lm.model.cutoffs == (2000,) and lm.model.vocab_size > 4000
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["init_from"].endswith("run-lm/run/best")
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--pretrain-lm", "5s", "--init-from", "x"], "give one of them"),
    (["--unlabeled", "x.txt"], "add --pretrain-lm"),
    (["--pretrain-lm", "5s", "--unlabeled", "nowhere.txt"], "no such file or folder for --unlabeled"),
])
def test_bad_pretraining_input_is_one_line(tmp_path, capsys, argv, message):
    data = synthetic_csv(tmp_path / "d.csv")
    assert main(["classify", "train", "--data", str(data), *TINY, *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in one_error_line(capsys)


def test_the_encoder_learns_at_its_own_rate(tmp_path, capsys):
    from unroll.classify_config import ClassifierConfig, ClassifyConfig
    from unroll.data.labeled import load_labeled
    from unroll.train.classify import ClassifierRun
    from unroll.train.distributed import current

    data = load_labeled(str(synthetic_csv(tmp_path / "d.csv")), valid_portion=0.2)
    cfg = ClassifyConfig(data="x", optimizer="adam", lr=0.01, encoder_lr=0.001)
    run = ClassifierRun(cfg, ClassifierConfig(vocab_size=len(data.vocab), num_classes=2, emb_size=8), data,
                        tmp_path / "r", current(None))
    lrs = sorted(g["lr"] for g in run.optimizer.param_groups)
    assert lrs == pytest.approx([0.001, 0.01])
    encoder = next(g for g in run.optimizer.param_groups if g["lr"] == pytest.approx(0.001))
    assert {id(p) for p in encoder["params"]} == {id(p) for n, p in run.model.named_parameters()
                                                    if n.startswith(("embedding.", "rnn."))}


def test_bad_baseline_input_is_one_line(tmp_path, capsys):
    single = tmp_path / "single" / "pos"
    single.mkdir(parents=True)
    (single / "a.txt").write_text("good", encoding="utf-8")
    (tmp_path / "empty" / "pos").mkdir(parents=True)
    (tmp_path / "empty" / "neg").mkdir(parents=True)
    (tmp_path / "empty" / "neg" / "a.txt").write_text("bad", encoding="utf-8")
    columns = tmp_path / "c.csv"
    columns.write_text("review,stars\ngood,5\n", encoding="utf-8")
    for argv, message in [(["--data", str(tmp_path / "single")], "single class"),
                          (["--data", str(tmp_path / "empty")], "empty class folder"),
                          (["--data", str(columns), "--text-column", "review"], "no column 'label'")]:
        assert main(["classify", "baseline", *argv]) == 2
        assert message in one_error_line(capsys)
