"""`unroll classify train / eval / predict` end to end on tiny synthetic data, and one clear
error line (exit 2) for each kind of bad input."""

from __future__ import annotations

import io
import json

import pytest

from tests.support.labeled import synthetic_csv
from tests.support.cli import one_error_line
from unroll import rundir
from unroll.cli import main

TINY = ["--emb-size", "16", "--dropout", "0.1", "--optimizer", "adam", "--lr", "0.03", "--epochs", "6",
        "--valid-fraction", "0.2", "--max-length", "none", "--seed", "1", "--quiet"]
# The same settings under the Theano tutorial's names, which the CLI takes as aliases.
TINY_TUTORIAL_NAMES = ["--dim-proj", "16", "--dropout", "0.1", "--optimizer", "adam", "--lr", "0.03", "--epochs", "6",
                       "--valid-portion", "0.2", "--maxlen", "none", "--seed", "1", "--quiet"]


def test_train_eval_predict(tmp_path, capsys, monkeypatch):
    data = synthetic_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", "--data", str(data), *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stopped: finished" in printed and "valid error" in printed
    for name in ("model.safetensors", "config.json", "vocab.json", "trainer_state.json"):
        assert (rundir.latest(out) / name).is_file() and (out / "best" / "config.json").is_file()
    assert (out / "metrics.jsonl").is_file()
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

    assert main(["classify", "train", "--resume", str(out), "--epochs", "7", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "valid"] == [1, 2, 3, 4, 5, 6, 7]


def test_latin1_data_needs_and_takes_encoding(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_bytes(synthetic_csv(tmp_path / "utf8.csv").read_text(encoding="utf-8").replace(
        "good", "très bon").encode("latin-1"))
    out = str(tmp_path / "run")
    assert main(["classify", "train", "--data", str(data), *TINY, "--epochs", "2", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "invalid UTF-8" in err and "--encoding" in err
    assert main(["classify", "train", "--data", str(data), "--encoding", "latin-1", *TINY, "--epochs", "2",
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
    assert main(["classify", "train", "--data", str(tmp_path / "d"), *TINY, "--epochs", "2", "--out",
                 str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["classify", "train", "--preset", "imdb-lstm", "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["train"]["max_length"] == 400 and shown["train"]["optimizer"] == "adadelta" and shown["model"]["emb_size"] == 128


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
    assert main(["classify", "train", "--data", str(data), *TINY, "--epochs", "1", "--out", str(out)]) == 0
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
    lines = tmp_path / "in.txt"
    lines.write_text("a good story\n", encoding="utf-8")
    weights = out / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    for argv in (["eval", str(out), "--data", str(data)], ["predict", str(out), str(lines)]):
        assert main(["classify", *argv]) == 2
        assert "corrupt or truncated" in one_error_line(capsys)
    assert capsys.readouterr().out == ""


def test_preset_sizes_yield_to_the_language_model_on_a_warm_start():
    """--preset imdb-lstm --init-from LM: the LM sets the encoder; only sizes given as flags must match it."""
    from unroll.cli.classify import resolve_settings

    model, _ = resolve_settings("imdb-lstm", {}, {}, lm_encoder=True)
    assert "emb_size" not in model and "cell" not in model and model["pooling"] == "mean"
    model, _ = resolve_settings("imdb-lstm", {"emb_size": 64}, {}, lm_encoder=True)
    assert model["emb_size"] == 64  # checked against the LM by train_classifier
    model, _ = resolve_settings("imdb-lstm", {"dim_proj": 64}, {}, lm_encoder=True)  # from a --config file
    assert model["emb_size"] == 64 and "dim_proj" not in model
    assert resolve_settings("imdb-lstm", {}, {})[0]["emb_size"] == 128


def test_tutorial_names_are_aliases(capsys):
    """--dim-proj, --maxlen ... give the same settings as --emb-size, --max-length ..., and --help names them."""
    shown = []
    for flags in (TINY, TINY_TUTORIAL_NAMES):
        assert main(["classify", "train", "--data", "x.csv", *flags, "--decay-c", "0.01", "--valid-freq", "3",
                     "--disp-freq", "5", "--valid-batch-size", "7", "--n-words", "99", "--show-config"]) == 0
        shown.append(json.loads(capsys.readouterr().out))
    assert shown[0] == shown[1]
    train = shown[0]["train"]
    assert (train["output_l2"], train["eval_every"], train["log_every"], train["eval_batch_size"], train["max_vocab"],
            train["epochs"], train["valid_fraction"], train["max_length"]) == (0.01, 3, 5, 7, 99, 6, 0.2, None)
    with pytest.raises(SystemExit):
        main(["classify", "train", "--help"])
    helped = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even inside a flag
    for alias in ("--dim-proj", "--n-words", "--maxlen", "--valid-portion", "--valid-freq", "--max-epochs",
                  "--decay-c", "--disp-freq", "--valid-batch-size"):
        assert f"(also{alias})" in helped, alias


def test_show_config_round_trips_through_config(tmp_path, capsys):
    """--show-config prints what --config reads back: the same settings again; flags still override."""
    assert main(["classify", "train", "--preset", "imdb-lstm", "--epochs", "3", "--show-config"]) == 0
    first = capsys.readouterr().out
    (tmp_path / "c.json").write_text(first, encoding="utf-8")
    assert main(["classify", "train", "--config", str(tmp_path / "c.json"), "--show-config"]) == 0
    assert capsys.readouterr().out == first
    assert main(["classify", "train", "--config", str(tmp_path / "c.json"), "--emb-size", "32", "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"]["emb_size"] == 32 and shown["train"]["epochs"] == 3


def test_a_bad_config_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "typo.json").write_text('{"train": {"data": "x.csv", "epoch": 3}}', encoding="utf-8")
    for name, expected in (("bad.json", "not JSON"), ("typo.json", "epoch"), ("missing.json", "missing.json")):
        assert main(["classify", "train", "--config", str(tmp_path / name), "--show-config"]) == 2
        assert expected in one_error_line(capsys)
