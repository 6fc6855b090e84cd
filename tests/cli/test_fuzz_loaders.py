"""Damaged checkpoint files, fuzzed: truncated, bit-flipped or random bytes in each file a loader
reads. The property: the command finishes (exit 0, when the damage happens to leave a loadable
file) or fails with exit 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.cli import one_error_line
from tests.support.labeled import synthetic_csv
from tests.support.fuzz import cases
from unroll.cli import main
from tests.support.tiny_models import save, word_lm

FILES = ["model.safetensors", "config.json", "vocab.json"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, bytes]:
    directory = save(tmp_path_factory.mktemp("ckpt") / "word", word_lm())
    return {name: (directory / name).read_bytes() for name in FILES}


# Positions as integers, not floats: hypothesis refuses to draw floats once training has set the
# CPU's flush-to-zero flag (torch.set_flush_denormal) in the same process.
damage = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 99)),  # percent of the file kept
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), min_size=1, max_size=8)),
    st.tuples(st.just("random"), st.binary(max_size=300)),
)


def damaged(data: bytes, how: tuple) -> bytes:
    kind, arg = how
    if kind == "truncate":
        return data[: len(data) * arg // 100]
    if kind == "random":
        return arg
    out = bytearray(data)
    for where, bit in arg:
        out[where % len(out)] ^= 1 << bit
    return bytes(out)


@settings(max_examples=cases(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), how=damage)
def test_a_damaged_checkpoint_file_is_one_line_exit_2_or_still_works(pristine, tmp_path, capsys, name, how):
    directory = tmp_path / "ckpt"
    directory.mkdir(exist_ok=True)
    for f, data in pristine.items():
        (directory / f).write_bytes(damaged(data, how) if f == name else data)
    capsys.readouterr()  # what an earlier example printed (a warning before exit 0) is not this one's
    code = main(["generate", str(directory), "--prime", "the cat", "--max-tokens", "3", "--seed", "0"])
    assert code in (0, 2)
    if code == 2:
        one_error_line(capsys)


TEXT = "It was the best of times, it was the worst of times.\n" * 30
STATE_FILES = ["trainer_state.json", "trainer_state.safetensors", "metrics.jsonl"]


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("run")
    (root / "book.txt").write_text(TEXT, encoding="utf-8")
    out = root / "run"
    assert main(["train", "--data", str(root / "book.txt"), "--level", "char", "--hidden-size", "8", "--emb-size", "4",
                 "--num-layers", "1", "--batch-size", "4", "--bptt", "8", "--eval-batch-size", "4", "--epochs", "1",
                 "--max-steps", "4", "--quiet", "--out", str(out)]) == 0
    return out, {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@settings(max_examples=cases(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(STATE_FILES), how=damage)
@example(name="metrics.jsonl", how=("random", b"0"))  # valid JSON, not a record: once a traceback
def test_a_damaged_trainer_state_is_one_line_exit_2_or_resumes(run_files, tmp_path, capsys, name, how):
    source, files = run_files
    directory = tmp_path / "run"
    shutil.rmtree(directory, ignore_errors=True)  # a fresh copy for each example
    for f, data in files.items():
        (directory / f).parent.mkdir(parents=True, exist_ok=True)
        (directory / f).write_bytes(damaged(data, how) if Path(f).name == name else data)
    capsys.readouterr()  # an earlier example's output is not this one's
    code = main(["train", "--resume", str(directory), "--max-steps", "6", "--quiet"])
    assert code in (0, 2)
    if code == 2:
        one_error_line(capsys)


CLASSIFIER_FILES = ["model.safetensors", "config.json", "vocab.json"]


@pytest.fixture(scope="module")
def classifier_files(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("classifier")
    data = synthetic_csv(root / "d.csv", n=60)
    assert main(["classify", "train", "--data", str(data), "--emb-size", "8", "--epochs", "1", "--quiet",
                 "--out", str(root / "run")]) == 0
    best = root / "run" / "best"
    return {name: (best / name).read_bytes() for name in CLASSIFIER_FILES}


@settings(max_examples=cases(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(CLASSIFIER_FILES), how=damage)
def test_a_damaged_classifier_checkpoint_is_one_line_exit_2_or_predicts(classifier_files, tmp_path, capsys, name, how):
    directory = tmp_path / "ckpt"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    for f, data in classifier_files.items():
        (directory / f).write_bytes(damaged(data, how) if f == name else data)
    lines = tmp_path / "lines.txt"
    lines.write_text("a good film\nbad\n", encoding="utf-8")
    capsys.readouterr()  # an earlier example's output is not this one's
    code = main(["classify", "predict", str(directory), str(lines)])
    assert code in (0, 2)
    if code == 2:
        one_error_line(capsys)
