"""`unroll export` and `unroll average` end to end on tiny checkpoints: what they print and write,
and bad input (a missing, corrupt or classifier run, a bad or unwritable --out, onnx not
installed, a failing check) -> exit 2, one line on stderr, nothing written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.support.cli import one_error_line
from tests.support.tiny_models import save, word_lm
from unroll.cli import main

pytest.importorskip("onnxruntime")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return save(tmp_path / "run", word_lm(cell="gru", tied=True))


def test_export_with_int8_checks_and_reports(run_dir, capsys):
    assert main(["export", str(run_dir), "--int8"]) == 0
    out = capsys.readouterr().out
    assert "checked with onnxruntime: largest difference from PyTorch" in out
    assert "int8 checked with onnxruntime: perplexity" in out and "with the legacy exporter, opset 17" in out
    for name in ("model.onnx", "model.json", "model.int8.onnx", "model.int8.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "model.json").read_text())["cell"] == "gru"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary files left


def classifier_dir(tmp_path: Path) -> Path:
    from unroll.classify_config import ClassifierConfig
    from unroll.models.classifier import Classifier, save_classifier
    from unroll.text import TextSpec, Vocab

    vocab = Vocab(["<unk>", "good", "bad"])
    model = Classifier(ClassifierConfig(vocab_size=3, num_classes=2, emb_size=4))
    save_classifier(model, tmp_path / "clf", vocab, ["neg", "pos"], TextSpec(level="whitespace", eos=False))
    return tmp_path / "clf"


def corrupt_dir(tmp_path: Path) -> Path:
    d = save(tmp_path / "corrupt", word_lm())
    (d / "config.json").write_text("{not json")
    return d


@pytest.mark.parametrize("make,extra,message", [
    (lambda t: t / "nowhere", [], "no such checkpoint directory"),
    (classifier_dir, [], "a classifier checkpoint, not a language model"),
    (corrupt_dir, [], "corrupt JSON"),
    (None, ["--out", "{tmp}/model.bin"], "must end in .onnx"),
    (None, ["--out", "{tmp}/afile/model.onnx"], "cannot create"),
    (None, ["--out", "{tmp}/folder.onnx"], "is a directory"),
])
def test_export_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, extra, message):
    (tmp_path / "afile").write_text("a file, not a directory")
    (tmp_path / "folder.onnx").mkdir()
    directory = make(tmp_path) if make else save(tmp_path / "ok", word_lm())
    before = sorted(p.name for p in tmp_path.rglob("*"))
    args = ["export", str(directory), *[a.format(tmp=tmp_path) for a in extra]]
    assert main(args) == 2
    assert message in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_without_onnxruntime_says_which_extra(run_dir, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert main(["export", str(run_dir)]) == 2
    assert one_error_line(capsys) == "unroll: error: ONNX export needs onnxruntime: pip install 'unroll-lm[onnx]'"
    assert not (run_dir / "model.onnx").exists()


def test_export_whose_check_fails_writes_nothing(run_dir, capsys, monkeypatch):
    from unroll.export import runtime

    real = runtime.OnnxLM.run

    def off(self, tokens, state=None):  # onnxruntime's scores, a little wrong
        scores, new = real(self, tokens, state)
        return scores + 1e-3, new

    monkeypatch.setattr(runtime.OnnxLM, "run", off)
    assert main(["export", str(run_dir), "--int8", "--out", str(run_dir / "out" / "m.onnx")]) == 2
    assert "ONNX check failed: T=1 B=1 log_probs differs from PyTorch by up to 1.00e-03" in one_error_line(capsys)
    assert not (run_dir / "out").exists()  # not even the directory made for --out


def test_average_then_export_the_average(tmp_path, capsys):
    run = tmp_path / "run"
    for step, seed in ((100, 0), (200, 1), (300, 2)):
        save(run / f"checkpoint-{step}", word_lm(seed=seed))
    assert main(["average", str(run), "--last", "2", "--out", str(tmp_path / "avg")]) == 0
    assert "averaged 2 checkpoints (checkpoint-200, checkpoint-300)" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "avg"), "--out", str(tmp_path / "avg.onnx")]) == 0
    assert (tmp_path / "avg.onnx").is_file()


@pytest.mark.parametrize("args,message", [
    (["{run}", "--last", "5", "--out", "{tmp}/avg"], "holds 3 resumable checkpoint(s), fewer than --last 5"),
    (["--checkpoints", "{run}/checkpoint-100", "{tmp}/gru", "--out", "{tmp}/avg"], "model settings differ (cell)"),
    (["{run}", "--last", "2", "--out", "{run}"], "exists and is not an empty directory"),
    (["{run}", "--out", "{tmp}/avg"], "give RUN --last N"),
])
def test_average_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    run = tmp_path / "run"
    for step in (100, 200, 300):
        save(run / f"checkpoint-{step}", word_lm(seed=step))
    save(tmp_path / "gru", word_lm(cell="gru"))
    assert main(["average", *[a.format(run=run, tmp=tmp_path) for a in args]]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "avg").exists()
