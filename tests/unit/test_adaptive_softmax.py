"""The adaptive softmax: BPTT through it against finite differences, the two engines equal in
float64, log-probabilities that sum to one, the training loss equal to -log p of the targets,
checkpoints across engines, scoring and generation through it, and bad settings refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.support.cli import one_error_line
from unroll import reference
from unroll.cli import main
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.models import LanguageModel, load_model, save_model
from unroll.reference import check_gradients
from unroll.reference.gradcheck import random_problem
from unroll.text import TextSpec, Vocab
from unroll.use.engine import load
from unroll.use.generate import generate
from unroll.use.score import score


def config(cell: str = "lstm", **kw) -> ModelConfig:
    base = dict(vocab_size=13, cell=cell, emb_size=4, hidden_size=6, num_layers=2, init="uniform", init_scale=0.5,
                adaptive_softmax=True, cutoffs=(3, 8), div_value=2.0)
    return ModelConfig(**(base | kw))


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "qrnn"])
@pytest.mark.parametrize("truncate", [None, 1])
def test_gradients_match_finite_differences(cell, truncate):
    model = reference.LanguageModel(config(cell), seed=7)
    rng = np.random.default_rng(1)
    inputs, targets, mask, state = random_problem(model, 5, 3, rng)
    for objective in ("loss", "outputs"):
        errors = check_gradients(model, inputs, targets, mask, state, truncate, objective, rng=rng)
        assert {"adaptive.head.weight", "adaptive.tail.1.1.weight"} <= set(errors) and "decoder.bias" not in errors
        assert max(errors.values()) < 1e-6, errors


def test_a_wrong_adaptive_backward_is_caught():
    model = reference.LanguageModel(config(), seed=7)
    inputs, targets, mask, state = random_problem(model, 5, 3, np.random.default_rng(1))
    right = model.loss_and_grads

    def wrong(*args):
        loss, grads, final = right(*args)
        grads["adaptive.tail.0.0.weight"] = grads["adaptive.tail.0.0.weight"] * 1.01
        return loss, grads, final

    model.loss_and_grads = wrong
    assert check_gradients(model, inputs, targets, mask, state)["adaptive.tail.0.0.weight"] > 1e-3


def twins(cfg: ModelConfig, seed: int = 0) -> tuple[reference.LanguageModel, LanguageModel]:
    ref = reference.LanguageModel(cfg, seed=seed)
    fast = LanguageModel(cfg).double()
    fast.load_state_dict({k: torch.from_numpy(v) for k, v in ref.params.items()})
    return ref, fast


@pytest.mark.parametrize("cell", ["lstm", "gru", "qrnn"])
@pytest.mark.parametrize("cutoffs, div", [((3,), 1.0), ((3, 8), 2.0), ((2, 5, 9), 1.5)])
def test_both_engines_agree_on_log_probs_loss_and_every_gradient(cell, cutoffs, div):
    ref, fast = twins(config(cell, cutoffs=cutoffs, div_value=div))
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 13, (7, 3)), rng.integers(0, 13, (7, 3))
    log_p, _ = ref.forward(x)
    np.testing.assert_allclose(np.exp(log_p).sum(-1), 1.0, rtol=0, atol=1e-12)
    fast.eval()
    with torch.no_grad():
        np.testing.assert_allclose(fast(torch.from_numpy(x))[0].numpy(), log_p, rtol=0, atol=1e-12)
    loss, grads, _ = ref.loss_and_grads(x, y)
    fast_loss, _ = fast(torch.from_numpy(x), targets=torch.from_numpy(y))
    fast_loss.backward()
    assert fast_loss.item() == pytest.approx(loss, abs=1e-12)
    assert loss == pytest.approx(-np.take_along_axis(log_p, y[..., None], -1).mean(), abs=1e-12)
    for name, p in fast.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name], rtol=0, atol=1e-12, err_msg=name)


def test_the_fast_loss_runs_in_bf16_autocast():
    torch.manual_seed(0)
    model = LanguageModel(config("qrnn", hidden_size=16, emb_size=16))  # a cell that needs no oneDNN bf16 kernel
    x, y = torch.randint(0, 13, (6, 4)), torch.randint(0, 13, (6, 4))
    exact, _ = model(x, targets=y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model(x, targets=y)
    loss.backward()
    assert loss.dtype == torch.float32 and abs(loss.item() - exact.item()) < 0.05
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


WORDS = Vocab(["<unk>", "<eos>", *"the a cat dog sat ran on mat , . big red".split()])
SPEC = TextSpec(level="whitespace", unit="line", eos=True)


def test_checkpoints_scoring_and_generation_in_both_engines(tmp_path):
    torch.manual_seed(0)
    save_model(LanguageModel(config(vocab_size=len(WORDS), init_scale=0.8)).double(), tmp_path / "m", WORDS,
               extra={"text": SPEC.to_dict()})
    fast, slow = load(tmp_path / "m", dtype=torch.float64), load(tmp_path / "m", engine="numpy")
    lines = ["the cat sat on the mat .", "a big red dog ran"]
    a, b = score(fast, lines), score(slow, lines)
    for s, t in zip(a, b):
        assert s.logprobs == pytest.approx(t.logprobs, abs=1e-12)
    assert generate(fast, "the", seed=4, max_tokens=12) == generate(slow, "the", seed=4, max_tokens=12)
    model, ckpt = load_model(tmp_path / "m")
    assert ckpt.model.cutoffs == (3, 8) and model.decoder is None


@pytest.mark.parametrize("kw, says", [
    (dict(cutoffs=(8, 3)), "cutoffs must increase"),
    (dict(cutoffs=(3, 13)), "below the vocabulary size 13"),
    (dict(cutoffs=()), "needs cutoffs"),
    (dict(cutoffs=(0, 5)), "cutoffs must be positive"),
    (dict(tie_weights=True), "turn one of them off"),
    (dict(div_value=8.0), "use a smaller div_value"),
    (dict(div_value=0.5), "div_value must be at least 1"),
    (dict(adaptive_softmax=False), "add --adaptive-softmax"),
])
def test_bad_settings_are_refused(kw, says):
    with pytest.raises(UnrollError, match=says):
        config(**kw)


def test_train_and_eval_from_the_command_line(tmp_path, capsys):
    corpus = tmp_path / "book.txt"
    corpus.write_text("the cat sat on the mat . a dog ran on the mat .\n" * 60, encoding="utf-8")
    out = tmp_path / "run"
    tiny = ["--level", "whitespace", "--hidden-size", "16", "--emb-size", "8", "--num-layers", "1",
            "--batch-size", "4", "--bptt", "8", "--eval-batch-size", "4", "--quiet", "--epochs", "4", "--no-tie-weights",
            "--optimizer", "adam", "--lr", "0.01"]
    assert main(["train", "--data", str(corpus), *tiny, "--adaptive-softmax", "--cutoffs", "3,6",
                 "--div-value", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads((out / "best" / "config.json").read_text())["model"]["cutoffs"] == [3, 6]
    assert report["split"] == "valid" and report["ppl"] < 2  # the text repeats: learned (uniform would be 10)
    assert main(["train", "--data", str(corpus), *tiny, "--adaptive-softmax", "--cutoffs", "6,3",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "cutoffs must increase" in one_error_line(capsys)
    with pytest.raises(SystemExit) as exit:
        main(["train", "--data", str(corpus), *tiny, "--adaptive-softmax", "--cutoffs", "3,x"])
    assert exit.value.code == 2 and "expected integers separated by commas, got '3,x'" in capsys.readouterr().err


@pytest.mark.parametrize("cell", ["lstm", "qrnn"])
def test_export_to_onnx_gives_the_same_log_probs(tmp_path, cell):
    pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    from unroll.export.runtime import OnnxLM
    from unroll.export.to_onnx import export_onnx

    torch.manual_seed(0)
    model = LanguageModel(config(cell, vocab_size=len(WORDS), hidden_size=8, emb_size=8, init_scale=0.8)).eval()
    save_model(model, tmp_path, WORDS, extra={"text": SPEC.to_dict()})
    path = export_onnx(tmp_path, tmp_path / "model.onnx").model  # checks against PyTorch itself, too
    tokens = np.random.default_rng(0).integers(0, len(WORDS), (9, 2))
    got, _ = OnnxLM(path).run(tokens)
    with torch.no_grad():
        want = model(torch.from_numpy(tokens))[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, atol=1e-5)


def test_gradcheck_command_takes_cutoffs(capsys):
    assert main(["gradcheck", "--model", "gru", "--layers", "2", "--cutoffs", "3,7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["cutoffs"] == [3, 7] and "adaptive.tail.1.1.weight" in report["max_relative_error"]["loss"]
