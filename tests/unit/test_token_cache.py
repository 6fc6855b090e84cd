"""The token cache: a corpus tokenized once, memory-mapped after; identical ids to tokenizing
directly; damage detected and rebuilt; streaming pieces and worker processes change nothing."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unroll.data.chunks as chunks
import unroll.data.encode as encode
import unroll.data.prepare as prepare
from unroll.data import batchify, iter_bptt, load_corpus
from unroll.data.token_cache import tokens_dir
from unroll.errors import DataError
from unroll.text import UNK, TextSpec, Vocab

TEXT = "the cat sat on the mat\n\nthe dog sat .\n  \nA cat ! The end .\nlast line without newline"


def folder_corpus(tmp_path: Path, texts: dict[str, str]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for split, text in texts.items():
        (folder / f"{split}.txt").write_text(text, encoding="utf-8")
    return folder


def entries() -> list[Path]:
    return sorted(p for p in tokens_dir().iterdir() if not p.name.startswith("."))


def test_first_load_builds_later_loads_map_the_cache(tmp_path, monkeypatch):
    folder = folder_corpus(tmp_path, {"train": TEXT * 3, "valid": TEXT, "test": "the cat\n"})
    first = load_corpus(folder, "whitespace")
    assert len(entries()) == 1
    monkeypatch.setattr(prepare, "encode_stream", lambda *a, **k: pytest.fail("tokenized again"))
    again = load_corpus(folder, "whitespace")
    assert isinstance(again.splits["train"], np.memmap) and again.splits["train"].dtype == np.uint16
    assert again.vocab == first.vocab and again.counts == first.counts
    for split in first.splits:
        np.testing.assert_array_equal(again.splits[split], first.splits[split])
        np.testing.assert_array_equal(again.lengths[split], first.lengths[split])
    moved = tmp_path / "moved"
    folder.rename(moved)  # the key is the files' contents, not their names
    np.testing.assert_array_equal(load_corpus(moved, "whitespace").splits["valid"], first.splits["valid"])


def test_a_load_from_the_cache_does_not_import_nltk(tmp_path):
    """NLTK takes seconds to import; a run that finds its corpus tokenized never pays for it."""
    folder = folder_corpus(tmp_path, {"train": "He left! Don't.\n" * 3, "valid": "She stayed.\n"})
    load_corpus(folder, "word")
    code = ("import sys; from unroll.data import load_corpus; c = load_corpus(sys.argv[1], 'word'); "
            "print(len(c.vocab), 'nltk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(load_corpus(folder, "word").vocab)), "False"]


def test_a_changed_file_or_setting_is_a_new_entry(tmp_path):
    folder = folder_corpus(tmp_path, {"train": TEXT, "valid": TEXT})
    load_corpus(folder, "whitespace")
    load_corpus(folder, "whitespace", lower=True)
    (folder / "valid.txt").write_text("the cat\n", encoding="utf-8")
    c = load_corpus(folder, "whitespace")
    assert len(entries()) == 3 and c.vocab.decode(c.splits["valid"]) == ["the", "cat", "<eos>"]


@pytest.mark.parametrize("level", ["whitespace", "word", "char"])
def test_cached_ids_equal_tokenizing_directly(tmp_path, level):
    texts = {"train": TEXT * 2, "valid": TEXT.upper() + "\n", "test": TEXT}
    spec = TextSpec.for_level(level)
    c = load_corpus(folder_corpus(tmp_path, texts), spec=spec)
    assert UNK in c.vocab  # the upper-case valid split has tokens the train split lacks
    assert [t for t in c.vocab.itos if t != UNK] == Vocab.build(spec.tokenize(texts["train"])).itos
    for split, text in texts.items():
        assert c.vocab.decode(c.splits[split]) == [t if t in c.vocab else UNK for t in spec.tokenize(text)]


lines = st.lists(st.sampled_from(["", "  ", "a b", "c . d !", "b a a", "é ü", "x\ty"]), min_size=3, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines, piece=st.integers(1, 24), unit=st.sampled_from(["line", "sentence"]), workers=st.sampled_from([1, 2]))
def test_pieces_and_workers_change_no_id_length_or_count(tmp_path_factory, monkeypatch, lines, piece, unit, workers):
    """A file read in pieces of a few bytes, tokenized by one or two processes, gives the ids,
    unit lengths and text counts of the whole text tokenized at once."""
    tmp = tmp_path_factory.mktemp("pieces")
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(tmp / "cache"))
    path = tmp / "one.txt"
    path.write_text("\n".join(lines) + "\nlast a\n", encoding="utf-8")
    spec = TextSpec("whitespace", False, unit, True, True)
    whole = load_corpus(path, spec=spec)
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(tmp / "cache2"))
    monkeypatch.setattr(chunks, "CHUNK_BYTES", piece)
    monkeypatch.setattr(encode, "PARALLEL_BYTES", 1 if workers == 2 else 1 << 40)
    streamed = load_corpus(path, spec=spec)
    assert streamed.vocab == whole.vocab and streamed.counts == whole.counts
    for split in whole.splits:
        np.testing.assert_array_equal(streamed.splits[split], whole.splits[split])
        np.testing.assert_array_equal(streamed.lengths[split], whole.lengths[split])


def test_two_worker_processes_on_a_registered_corpus(mirror_dir, monkeypatch):
    one = load_corpus("ptb")
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(Path(os.environ["UNROLL_CACHE_DIR"]) / "other"))
    monkeypatch.setattr(encode, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 1 << 18)
    two = load_corpus("ptb")
    assert two.vocab == one.vocab
    for split in one.splits:
        np.testing.assert_array_equal(two.splits[split], one.splits[split])


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "meta"])
def test_a_damaged_entry_is_rebuilt_never_trusted(tmp_path, capsys, damage):
    folder = folder_corpus(tmp_path, {"train": TEXT * 3, "valid": TEXT})
    good = np.array(load_corpus(folder, "whitespace").splits["train"])
    entry = entries()[0]
    ids = entry / "train.ids"
    if damage == "flip":
        data = bytearray(ids.read_bytes())
        data[3] ^= 0xFF
        ids.write_bytes(bytes(data))
    elif damage == "truncate":
        ids.write_bytes(ids.read_bytes()[:-2])
    elif damage == "delete":
        ids.unlink()
    else:
        (entry / "meta.json").write_text("{not json", encoding="utf-8")
    again = load_corpus(folder, "whitespace")
    np.testing.assert_array_equal(again.splits["train"], good)
    assert "damaged" in capsys.readouterr().err


def test_an_interrupted_build_leaves_no_entry(tmp_path, monkeypatch):
    folder = folder_corpus(tmp_path, {"train": TEXT, "valid": TEXT})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "_write_ids", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_corpus(folder, "whitespace")
    assert list(tokens_dir().iterdir()) == []  # not even the temporary folder
    monkeypatch.undo()


def test_a_cache_directory_that_is_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(blocker))
    with pytest.raises(DataError, match="cannot write the token cache.*UNROLL_CACHE_DIR"):
        load_corpus(folder_corpus(tmp_path, {"train": TEXT, "valid": TEXT}), "whitespace")


def test_a_bad_byte_late_in_a_file_is_placed_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16)
    path = tmp_path / "bad.txt"
    good = ("word " * 20 + "\n") * 5
    path.write_bytes(good.encode() + b"ok \xff no\n")
    with pytest.raises(DataError, match=f"invalid UTF-8 at byte offset {len(good) + 3} \\(byte 0xff\\)"):
        load_corpus(path, "whitespace")


def test_a_learned_tokenizer_is_cached_with_the_ids(tmp_path, monkeypatch):
    folder = folder_corpus(tmp_path, {"train": TEXT * 20, "valid": TEXT})
    first = load_corpus(folder, "bpe", vocab_size=300)
    assert (entries()[0] / "tokenizer.model").is_file()
    monkeypatch.setattr(type(first.text.tokenizer), "fit", lambda *a: pytest.fail("fitted again"))
    again = load_corpus(folder, "bpe", vocab_size=300)
    assert again.text.tokenizer.learned() == first.text.tokenizer.learned()
    np.testing.assert_array_equal(again.splits["valid"], first.splits["valid"])
    # a checkpoint's own fitted tokenizer and vocabulary find the same entry
    load_corpus(folder, spec=first.text, vocab=first.vocab)
    assert len(entries()) == 1


def test_a_given_vocabulary_that_differs_gets_its_own_ids(tmp_path):
    folder = folder_corpus(tmp_path, {"train": TEXT, "valid": "the zebra\n"})
    vocab = Vocab(["<unk>", "zebra", "the", "<eos>"])
    c = load_corpus(folder, "whitespace", vocab=vocab)
    assert c.vocab == vocab and c.vocab.decode(c.splits["valid"]) == ["the", "zebra", "<eos>"]
    assert c.vocab.decode(c.splits["train"][:3]) == ["the", "<unk>", "<unk>"]


def test_batches_read_from_the_memory_map_equal_those_of_an_array(tmp_path):
    folder = folder_corpus(tmp_path, {"train": TEXT * 40, "valid": TEXT})
    ids = load_corpus(folder, "whitespace").splits["train"]
    mapped, plain = batchify(ids, 4), batchify(np.array(ids, np.int64), 4)
    assert np.shares_memory(mapped, ids)  # a view: no copy of the corpus
    windows = list(zip(iter_bptt(mapped, 7), iter_bptt(plain, 7)))
    assert len(windows) > 3
    for (i, x, y), (j, x2, y2) in windows:
        assert i == j
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
