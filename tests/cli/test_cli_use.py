"""`unroll generate` and `unroll score` end to end on tiny checkpoints: outputs, formats, streaming
order, and bad input (missing / empty / binary / non-UTF-8 files, corrupt checkpoints) -> exit 2
with one line on stderr and no partial output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.cli import one_error_line
from unroll.cli import main
from tests.support.tiny_models import char_lm, save, word_lm


@pytest.fixture
def word_dir(tmp_path: Path) -> Path:
    return save(tmp_path / "word", word_lm())


@pytest.fixture
def char_dir(tmp_path: Path) -> Path:
    return save(tmp_path / "char", char_lm())


def test_generate_streams_samples_reproducibly(word_dir, capsys):
    args = ["generate", str(word_dir), "--prime", "the cat", "a dog", "--num-samples", "2", "--max-tokens", "6",
            "--seed", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("--- prime") == 4 and "--- prime 2, sample 2 ---\na dog" in out
    assert main(args) == 0 and capsys.readouterr().out == out
    assert main([*args, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["prime"], r["sample"]) for r in records] == [("the cat", 0), ("the cat", 1), ("a dog", 0), ("a dog", 1)]
    assert all(r["seed"] == 3 and r["stopped"] in ("eos", "max_tokens") and r["tokens"] <= 6 for r in records)
    assert main([*args, "--json", "--engine", "numpy"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == records
    assert main(["generate", str(word_dir), "--greedy", "--max-tokens", "4"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # one sample, one line


def test_generate_warns_in_one_line_about_unknown_prime_words(word_dir, capsys):
    assert main(["generate", str(word_dir), "--prime", "the zebra", "--max-tokens", "3", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("the zebra")
    assert captured.err.strip().splitlines() == [
        "unroll: warning: prime: 1 word(s) not in the vocabulary, read as <unk>: 'zebra'"]


@pytest.mark.parametrize("extra,message", [
    (["--prime", "abz"], "character 'z'"),
    (["--top-p", "1.5"], "top-p"),
    (["--temperature", "-1"], "temperature"),
    (["--num-samples", "0"], "num-samples"),
])
def test_generate_bad_options_exit_2(char_dir, capsys, extra, message):
    assert main(["generate", str(char_dir), *extra]) == 2
    assert message in one_error_line(capsys)
    assert capsys.readouterr().out == ""


def test_score_text_json_tsv_and_html(word_dir, tmp_path, capsys):
    data = tmp_path / "s.txt"
    data.write_text("the cat sat\n\na dog ran .\n", encoding="utf-8")
    page = tmp_path / "out.html"
    assert main(["score", str(word_dir), str(data), "--html", str(page), "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[48;5;" in out and "total: 2 sentences, 9 tokens" in out
    assert page.read_text(encoding="utf-8").count('class="t"') == 9
    assert main(["score", str(word_dir), str(data), "--color", "never"]) == 0
    plain = capsys.readouterr().out
    assert "\x1b" not in plain and "the cat sat" in plain
    assert main(["score", str(word_dir), str(data), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 3] and records[0]["count"] == 4
    assert records[0]["logprob"] == pytest.approx(sum(records[0]["logprobs"]))
    assert main(["score", str(word_dir), str(data), "--tsv", "--engine", "numpy"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0][:3] == ["line", "logprob", "count"] and rows[1][0] == "1" and rows[2][5] == "a dog ran ."
    assert float(rows[1][1]) == pytest.approx(records[0]["logprob"], abs=1e-4)


def test_score_rank_reads_groups_from_stdin(word_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"the cat sat\nsat cat the\nthe\n\n\na dog\n")))
    assert main(["score", str(word_dir), "-", "--rank", "--normalize", "--json"]) == 0
    groups = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(g["ranking"]) for g in groups] == [3, 1]
    scores = [r["score"] for r in groups[0]["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert all(r["score"] == pytest.approx(r["logprob"] / r["count"]) for r in groups[0]["ranking"])
    assert sorted(r["candidate"] for r in groups[0]["ranking"]) == [1, 2, 3]


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"", "file is empty"),
    (b"caf\xe9\n", "invalid UTF-8 at byte offset 3"),
    (b"\x00\x01\x02", "binary file"),
])
def test_score_bad_files_exit_2_and_write_nothing(word_dir, tmp_path, capsys, content, message):
    data = tmp_path / "in.txt"
    if content is not None:
        data.write_bytes(content)
    page = tmp_path / "out.html"
    assert main(["score", str(word_dir), str(data), "--html", str(page)]) == 2
    assert message in one_error_line(capsys) and not page.exists()


def test_score_unseen_character_names_the_line(char_dir, tmp_path, capsys):
    data = tmp_path / "in.txt"
    data.write_text("abc\nbaz\n", encoding="utf-8")
    assert main(["score", str(char_dir), str(data)]) == 2
    assert f"{data}, line 2: character 'z'" in one_error_line(capsys)


@pytest.mark.parametrize("command", ["generate", "score"])
def test_corrupt_or_missing_checkpoint_exits_2(word_dir, tmp_path, capsys, command):
    data = tmp_path / "in.txt"
    data.write_text("the cat\n", encoding="utf-8")
    args = [str(data)] if command == "score" else []
    weights = word_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main([command, str(word_dir), *args]) == 2
    assert "corrupt or truncated" in one_error_line(capsys)
    assert main([command, str(tmp_path / "nowhere"), *args]) == 2
    assert "no such checkpoint directory" in one_error_line(capsys)
    assert capsys.readouterr().out == ""


def test_score_option_errors(word_dir, tmp_path, capsys):
    data = tmp_path / "in.txt"
    data.write_text("the cat\n", encoding="utf-8")
    assert main(["score", str(word_dir), str(data), "--normalize"]) == 2
    assert "--rank" in one_error_line(capsys)
    assert main(["score", str(word_dir), str(data), "--batch-size", "0"]) == 2
    assert "--batch-size" in one_error_line(capsys)


def test_eval_numpy_engine_equals_torch(word_dir, tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text("the cat sat on the mat .\na dog ran , the cat sat .\n" * 4, encoding="utf-8")
    results = {}
    for engine in ("torch", "numpy"):
        assert main(["eval", str(word_dir), "--data", str(data), "--batch-size", "2", "--bptt", "5",
                     "--engine", engine, "--json"]) == 0
        results[engine] = json.loads(capsys.readouterr().out)
    torch_res, numpy_res = results["torch"], results["numpy"]
    assert numpy_res["engine"] == "numpy" and numpy_res["tokens"] == torch_res["tokens"] > 0
    # the torch engine runs the float32 weights in float32; the NumPy engine the same weights in float64
    assert numpy_res["loss"] == pytest.approx(torch_res["loss"], rel=1e-6)
    assert main(["eval", str(word_dir), "--data", str(data), "--engine", "numpy", "--precision", "bf16"]) == 2
    assert "NumPy engine has no bf16" in one_error_line(capsys)
