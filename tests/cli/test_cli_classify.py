"""`unroll classify train / eval / predict` end to end on tiny synthetic data, and one clear
error line (exit 2) for each kind of bad input."""

from __future__ import annotations

import io
import json

import pytest

from tests.support.labeled import synthetic_csv
from unroll.cli import main

TINY = ["--dim-proj", "16", "--dropout", "0.1", "--optimizer", "adam", "--lr", "0.03", "--max-epochs", "6",
        "--valid-portion", "0.2", "--maxlen", "none", "--seed", "1", "--quiet"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unroll: error: "), err
    return err[0]


def test_train_eval_predict(tmp_path, capsys, monkeypatch):
    data = synthetic_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", "--data", str(data), *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stopped: finished" in printed and "valid error" in printed
    for name in ("model.safetensors", "config.json", "vocab.json", "trainer_state.json", "metrics.jsonl"):
        assert (out / name).is_file() and (out / "best" / "config.json").is_file()
    assert json.loads((out / "best" / "config.json").read_text())["task"] == "classify"

    assert main(["classify", "eval", str(out), "--data", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "all" and res["examples"] == 240 and res["accuracy"] > 0.95
    assert sum(map(sum, res["confusion"])) == 240 and res["labels"] == ["neg", "pos"]
    assert main(["classify", "eval", str(out), "--split", "valid"]) == 0  # the run's own held-out examples
    assert "valid: error" in capsys.readouterr().out

    lines = tmp_path / "in.txt"
    lines.write_text("what a good movie\nbad\n", encoding="utf-8")
    assert main(["classify", "predict", str(out), str(lines)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == ["pos", "neg"] and all(0.5 < float(r[1]) <= 1 for r in rows)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a good story\n")))
    assert main(["classify", "predict", str(out), "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "pos"

    assert main(["classify", "train", "--resume", str(out), "--max-epochs", "7", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "valid"] == [1, 2, 3, 4, 5, 6, 7]


def test_latin1_data_needs_and_takes_encoding(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_bytes(synthetic_csv(tmp_path / "utf8.csv").read_text(encoding="utf-8").replace(
        "good", "très bon").encode("latin-1"))
    out = str(tmp_path / "run")
    assert main(["classify", "train", "--data", str(data), *TINY, "--max-epochs", "2", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "invalid UTF-8" in err and "--encoding" in err
    assert main(["classify", "train", "--data", str(data), "--encoding", "latin-1", *TINY, "--max-epochs", "2",
                 "--out", out]) == 0
    capsys.readouterr()
    assert main(["classify", "eval", out, "--split", "valid"]) == 0  # the training data, in its own encoding
    lines = tmp_path / "in.txt"
    lines.write_bytes("un film très bon\n".encode("latin-1"))
    assert main(["classify", "predict", out, str(lines)]) == 2
    assert "--encoding" in one_error_line(capsys)
    assert main(["classify", "predict", out, str(lines), "--encoding", "latin-1"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


def test_class_folders_and_show_config(tmp_path, capsys):
    for label, word in (("yes", "good"), ("no", "bad")):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(20):
            (tmp_path / "d" / label / f"{i}.txt").write_text(f"the {word} film {i}", encoding="utf-8")
    assert main(["classify", "train", "--data", str(tmp_path / "d"), *TINY, "--max-epochs", "2", "--out",
                 str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["classify", "train", "--preset", "imdb-lstm", "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["train"]["maxlen"] == 400 and shown["train"]["optimizer"] == "adadelta" and shown["model"]["dim_proj"] == 128


def make_bad_inputs(tmp_path):
    empty = tmp_path / "empty_class"
    (empty / "pos").mkdir(parents=True)
    (empty / "neg").mkdir()
    (empty / "pos" / "a.txt").write_text("good", encoding="utf-8")
    single = tmp_path / "single.csv"
    single.write_text("text,label\ngood,pos\nfine,pos\nnice,pos\n", encoding="utf-8")
    columns = tmp_path / "columns.csv"
    columns.write_text("review,stars\ngood,5\n", encoding="utf-8")
    return {"empty": empty, "single": single, "columns": columns}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{empty}"], "empty class folder"),
        (["--data", "{columns}"], "no column 'text'"),
        (["--data", "{columns}", "--text-column", "review"], "no column 'label'"),
        (["--data", "{single}"], "single class ('pos')"),
        (["--data", "nowhere.csv"], "nowhere.csv: no such file"),
        (["--data", "ptb"], "without labels"),
        (["--preset", "nope"], "unknown preset"),
        (["--data", "{single}", "--pooling", "sum"], "unknown pooling"),
        (["--resume", "nowhere"], "nowhere"),
        (["--init-from", "nowhere", "--data", "{single}"], "nowhere"),
    ],
)
def test_bad_training_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    paths = make_bad_inputs(tmp_path)
    argv = [a.format(**paths) for a in argv] + ([] if "--resume" in argv else ["--out", str(tmp_path / "x")])
    assert main(["classify", "train", *argv, "--quiet"]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "x").exists()


def test_unseen_labels_and_wrong_checkpoints_exit_2(tmp_path, capsys):
    data = synthetic_csv(tmp_path / "d.csv", n=60)
    out = tmp_path / "run"
    assert main(["classify", "train", "--data", str(data), *TINY, "--max-epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    other = tmp_path / "other.csv"
    other.write_text("text,label\ngood,pos\nso so,neutral\n", encoding="utf-8")
    assert main(["classify", "eval", str(out), "--data", str(other)]) == 2
    assert "'neutral' were not seen at training time" in one_error_line(capsys)
    assert main(["classify", "eval", str(out), "--split", "test"]) == 2
    assert "has no test split" in one_error_line(capsys)
    assert main(["eval", str(out)]) == 2  # a language-model command on a classifier
    assert "classifier checkpoint" in one_error_line(capsys)
    assert main(["classify", "predict", str(tmp_path)]) == 2
    assert "missing file" in one_error_line(capsys)
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    assert main(["classify", "predict", str(out), str(tmp_path / "empty.txt")]) == 2
    assert "empty" in one_error_line(capsys)
    assert main(["classify", "train", "--data", str(data), *TINY, "--out", str(out)]) == 2
    assert "--resume" in one_error_line(capsys)  # an existing run is never overwritten


def test_preset_sizes_yield_to_the_language_model_on_a_warm_start():
    """--preset imdb-lstm --init-from LM: the LM sets the encoder; only sizes given as flags must match it."""
    from unroll.cli.classify import resolve_settings

    model, _ = resolve_settings("imdb-lstm", {}, {}, lm_encoder=True)
    assert "dim_proj" not in model and "cell" not in model and model["pooling"] == "mean"
    model, _ = resolve_settings("imdb-lstm", {"dim_proj": 64}, {}, lm_encoder=True)
    assert model["dim_proj"] == 64  # checked against the LM by train_classifier
    assert resolve_settings("imdb-lstm", {}, {})[0]["dim_proj"] == 128
