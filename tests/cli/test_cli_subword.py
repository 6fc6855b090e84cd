"""`--level bpe|unigram --vocab-size N` end to end: train, resume (the tokenizer is loaded, never
refitted), eval with every figure, score, generate, data stats, classify; and one error line
(exit 2) for each kind of bad subword input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import one_error_line
from tests.support.labeled import synthetic_csv
from unroll import rundir
from unroll.cli import main
from unroll.text.spec import text_counts

ANIMALS = "cat dog bird fox owl hen cow pig yak emu ant bee elk".split()
PLACES = "mat rug hill barn pond road roof yard field tree".split()
TEXT = "".join(f"The {a} sat on the {p}, and the {b} ran {n} times.\n"
               for n in range(3) for a in ANIMALS for b in ANIMALS[::3] for p in PLACES[n::3])
TINY = ["--hidden-size", "16", "--emb-size", "8", "--num-layers", "1", "--batch-size", "4", "--bptt", "12",
        "--eval-batch-size", "4", "--quiet"]


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize("level", ["bpe", "unigram"])
def test_train_resume_eval_score_generate(tmp_path, book, capsys, level):
    out = tmp_path / "run"
    assert main(["train", "--data", str(book), "--level", level, "--vocab-size", "300", *TINY,
                 "--max-steps", "6", "--out", str(out)]) == 0
    assert "bpc" in capsys.readouterr().out
    model_file = rundir.latest(out) / "tokenizer.model"
    assert model_file.is_file() and (out / "best" / "tokenizer.model").is_file()
    text = json.loads((out / "best" / "config.json").read_text())["text"]
    assert text == {"level": level, "lower": False, "unit": "line", "bos": False, "eos": True, "vocab_size": 300}
    before = model_file.read_bytes()

    assert main(["train", "--resume", str(out), "--max-steps", "10"]) == 0
    assert (rundir.latest(out) / "tokenizer.model").read_bytes() == before
    record = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert {"valid_bpc", "valid_bpb", "valid_word_ppl", "valid_bits_per_token"} <= set(record)
    capsys.readouterr()

    assert main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 < res["chars"] < len(TEXT) and res["bpb"] == pytest.approx(res["bpc"])  # ASCII: a byte a character
    assert res["bpc"] < res["bits_per_token"] and res["word_ppl"] > res["ppl"]  # a piece spans characters
    assert main(["eval", str(out), "--data", str(book), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert {k: whole[k] for k in ("chars", "bytes", "words")} == text_counts(TEXT)

    assert main(["score", str(out), str(book), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["tokens"][0].startswith("▁") and len(first["logprobs"]) == len(first["tokens"])
    assert main(["generate", str(out), "--prime", "The cat", "--max-tokens", "8", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("The cat")


def test_data_stats_and_classify_at_the_subword_level(tmp_path, book, capsys):
    assert main(["data", "stats", str(book), "--level", "bpe", "--vocab-size", "300", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["vocab_size"] == 301 and stats["text"]["vocab_size"] == 300  # the pieces and <eos>
    data = synthetic_csv(tmp_path / "d.csv")
    out = tmp_path / "clf"
    assert main(["classify", "train", "--data", str(data), "--level", "bpe", "--vocab-size", "300", "--emb-size", "8",
                 "--epochs", "1", "--max-length", "none", "--quiet", "--out", str(out)]) == 0
    assert (out / "best" / "tokenizer.model").is_file()
    capsys.readouterr()
    assert main(["classify", "eval", str(out), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 240


@pytest.mark.parametrize("argv, message", [
    (["--level", "bpe", "--vocab-size", "100000"], r"--vocab-size 100000 is more than the training text supports"),
    (["--level", "unigram", "--vocab-size", "40"], r"--vocab-size 40 is too small"),
    (["--vocab-size", "500"], r"is for a subword level"),
    (["--level", "char", "--vocab-size", "500"], r"is for a subword level"),
    (["--level", "bpe", "--vocab-size", "1"], r"vocab_size must be at least 2"),
])
def test_bad_subword_settings_are_one_line(tmp_path, book, capsys, argv, message):
    assert main(["train", "--data", str(book), *argv, *TINY, "--max-steps", "1", "--out", str(tmp_path / "r")]) == 2
    assert re.search(message, one_error_line(capsys))
    assert not (tmp_path / "r" / "best").exists()


def test_a_corrupt_tokenizer_file_is_one_line(tmp_path, book, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(book), "--level", "bpe", "--vocab-size", "300", *TINY, "--max-steps", "2",
                 "--out", str(out)]) == 0
    (out / "best" / "tokenizer.model").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["eval", str(out / "best")]) == 2
    assert "corrupt or unreadable tokenizer file" in one_error_line(capsys)
    (out / "best" / "tokenizer.model").unlink()
    assert main(["score", str(out / "best"), str(book)]) == 2
    assert "tokenizer file is missing" in one_error_line(capsys)
