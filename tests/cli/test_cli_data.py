"""`unroll data` and its one-line errors: exit code 2, one line on stderr, no traceback."""

import hashlib
import json
import urllib.error

import pytest

from unroll.cli import main
from unroll.data import DATASETS, Dataset, Source
import unroll.data.download as download_module
from unroll.text import TextSpec


def run(capsys, *argv):
    code = main(["data", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unroll: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_stats_json_on_a_user_file(tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text("He left!\nShe didn't.\n" * 5)
    code, out, _ = run(capsys, "stats", f, "--json")
    stats = json.loads(out)
    assert code == 0 and stats["text"]["level"] == "word"
    assert stats["splits"]["train"]["tokens"] + stats["splits"]["valid"]["tokens"] == 5 * (4 + 5)
    assert stats["splits"]["train"]["lines"]["max"] == 5


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "ptb" in out and "wikitext2" in out


def test_stats_table_on_the_mirror(mirror_dir, capsys):
    code, out, _ = run(capsys, "stats", "ptb")
    assert code == 0 and "vocabulary 10,000" in out and "929,589" in out


def test_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "stats", tmp_path / "nope.txt")
    assert_one_line_error(code, err, "nope.txt", "no such file")


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.txt").write_bytes(b"")
    code, _, err = run(capsys, "stats", tmp_path / "empty.txt")
    assert_one_line_error(code, err, "empty.txt", "file is empty")


def test_binary_file(tmp_path, capsys):
    (tmp_path / "model.bin").write_bytes(b"PK\x03\x04\x00\x00\xff\xfe")
    code, _, err = run(capsys, "stats", tmp_path / "model.bin")
    assert_one_line_error(code, err, "model.bin", "binary file (NUL byte at offset 4)")


def test_invalid_utf8_names_the_offset_and_encoding_option_reads_it(tmp_path, capsys):
    (tmp_path / "latin.txt").write_bytes("un café noir\nun thé\n".encode("latin-1"))
    code, _, err = run(capsys, "stats", tmp_path / "latin.txt", "--level", "whitespace")
    assert_one_line_error(code, err, "latin.txt", "invalid UTF-8 at byte offset 6 (byte 0xe9)", "--encoding")
    code, out, err = run(capsys, "stats", tmp_path / "latin.txt", "--level", "whitespace", "--encoding", "latin-1", "--json")
    assert code == 0 and json.loads(out)["splits"]["train"]["tokens"] == 4


def test_unknown_encoding(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("a\n")
    code, _, err = run(capsys, "stats", tmp_path / "a.txt", "--encoding", "klingon")
    assert_one_line_error(code, err, "unknown text encoding 'klingon'")


def test_unknown_dataset_lists_known_ones(capsys):
    code, _, err = run(capsys, "fetch", "ptb3")
    assert_one_line_error(code, err, "unknown dataset 'ptb3'", "imdb, imdb-lm, ptb, tinyshakespeare, wikitext103, wikitext2")
    code, _, err = run(capsys, "stats", "ptb3")
    assert_one_line_error(code, err, "unknown dataset 'ptb3'")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A registered dataset served from a local file, with an empty cache and no mirror."""
    src = tmp_path / "corpus.txt"
    src.write_bytes(b"a b c\n")

    def register(sha):
        ds = Dataset(
            name="fake", folder="fake", description="test", source=Source(url=src.as_uri(), sha256=sha),
            files={"corpus.txt": sha}, splits={"train": "corpus.txt"}, text=TextSpec(),
        )
        monkeypatch.setitem(DATASETS, "fake", ds)

    monkeypatch.delenv("UNROLL_DATA_DIR", raising=False)
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(tmp_path / "cache"))
    register(hashlib.sha256(b"a b c\n").hexdigest())
    return register


def test_checksum_mismatch(fake, tmp_path, capsys):
    fake("f" * 64)
    code, _, err = run(capsys, "fetch", "fake")
    assert_one_line_error(code, err, "corpus.txt", "checksum mismatch", "expected " + "f" * 64, "got " + hashlib.sha256(b"a b c\n").hexdigest())
    assert not (tmp_path / "cache" / "fake" / "corpus.txt").exists()


def test_fetch_downloads_into_the_cache(fake, tmp_path, capsys):
    code, out, _ = run(capsys, "fetch", "fake")
    assert code == 0 and out.strip() == str(tmp_path / "cache" / "fake" / "corpus.txt")


def test_offline_without_mirror(fake, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    code, _, err = run(capsys, "fetch", "fake")
    assert_one_line_error(code, err, "cannot download", "Temporary failure in name resolution", "set UNROLL_DATA_DIR")
