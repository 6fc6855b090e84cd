"""Corpora read through UNROLL_DATA_DIR (../shared/data in tests and CI) and user files."""

import numpy as np
import pytest

from unroll.data import corpus_stats, imdb_examples, load_corpus
from unroll.errors import DataError
from unroll.text import EOS, UNK, TextSpec


@pytest.fixture(scope="module")
def ptb(mirror_dir):
    return load_corpus("ptb")


def test_ptb_exact_counts(ptb):
    assert {k: len(v) for k, v in ptb.splits.items()} == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert len(ptb.vocab) == 10_000
    assert all(v.dtype == np.uint16 for v in ptb.splits.values())  # the token cache: 10k ids fit
    # One sentence a line, <eos> at each line end: 42,068 lines in train.
    assert len(ptb.lengths["train"]) == 42_068 and ptb.lengths["train"].sum() == 929_589
    assert int((ptb.splits["train"] == ptb.vocab[EOS]).sum()) == 42_068
    assert ptb.vocab.itos[:3] == ["the", UNK, EOS]


def test_ptb_first_sentence_and_stats(ptb):
    first = ptb.sentences("valid")[0]
    assert ptb.vocab.decode(first)[:3] == ["consumers", "may", "want"] and ptb.vocab.decode(first)[-1] == EOS
    s = corpus_stats(ptb)
    assert s["vocab_size"] == 10_000 and s["splits"]["test"]["tokens"] == 82_430
    assert s["splits"]["train"]["unk"] == 45_020
    assert s["splits"]["train"]["lines"]["count"] == 42_068


def test_tinyshakespeare_split_like_nanogpt(mirror_dir):
    c = load_corpus("tinyshakespeare")
    assert len(c.splits["train"]) == 1_003_854 and len(c.splits["valid"]) == 111_540  # 90% / 10% of 1,115,394
    assert len(c.vocab) == 65 and UNK not in c.vocab
    assert c.text.decode(c.splits["train"][:14], c.vocab) == "First Citizen:"


def test_text_file_split_by_fraction_at_line_boundaries(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("".join(f"line {i} here\n" for i in range(10)))
    c = load_corpus(f, "whitespace", fractions=(0.8, 0.1, 0.1))
    assert [len(c.lengths[s]) for s in ("train", "valid", "test")] == [8, 1, 1]
    assert c.vocab.decode(c.splits["test"]) == ["line", UNK, "here", EOS]  # "9" only occurs in test


def test_char_file_split_anywhere_and_unk_for_unseen(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("aaaaaaaabz")
    c = load_corpus(f, "char")
    assert len(c.splits["train"]) == 9 and len(c.splits["valid"]) == 1
    assert UNK in c.vocab and c.vocab.decode(c.splits["valid"]) == [UNK]  # 'z' is not in train


def test_folder_with_split_files_and_vocab_limits(tmp_path):
    (tmp_path / "my.train.txt").write_text("the cat sat\nthe dog sat\n")
    (tmp_path / "my.valid.txt").write_text("the cow sat\n")
    (tmp_path / "README").write_text("ignored")
    c = load_corpus(tmp_path, "whitespace", min_freq=2)
    assert set(c.splits) == {"train", "valid"}
    assert c.vocab.itos == [UNK, EOS, "sat", "the"]  # all seen twice: lexical order
    assert c.vocab.decode(c.splits["valid"]) == ["the", UNK, "sat", EOS]


def test_csv_column_sentences_like_the_reddit_tutorial(tmp_path):
    f = tmp_path / "comments.csv"
    f.write_text('id,body\n1,"Hello there. How are you?"\n2,"Fine, thanks!"\n3,"Me\ntoo."\n', newline="")
    spec = TextSpec(level="word", lower=True, unit="sentence", bos=True, eos=True)
    c = load_corpus(f, spec=spec, column="body", fractions=(0.75, 0.25))
    train = c.vocab.decode(c.splits["train"])
    assert train[:5] == ["<bos>", "hello", "there", ".", "<eos>"]
    assert c.lengths["train"].tolist() == [5, 6, 6] and c.lengths["valid"].tolist() == [5]
    with pytest.raises(DataError, match="no column 'text'"):
        load_corpus(f, column="text")


def test_not_a_corpus_and_unknown_name():
    with pytest.raises(DataError, match="imdb is a classification dataset"):
        load_corpus("imdb")
    with pytest.raises(DataError, match="unknown dataset 'ptb2'; known datasets: imdb, imdb-lm, ptb, tinyshakespeare, wikitext103, wikitext2"):
        load_corpus("ptb2")


def test_imdb_test_split_examples(mirror_dir):
    ex = imdb_examples("test")
    assert len(ex) == 25_000
    assert sum(label for _, label in ex) == 12_500
    text, label = ex[0]  # negative reviews first, by id: test/neg/0_2.txt
    assert label == 0 and text.startswith("Once again Mr. Costner has dragged out a movie")
    assert "<br />" not in ex[1][0] + ex[2][0]


def test_imdb_lm_is_built_once_from_the_train_and_unlabeled_reviews_only(mirror_dir):
    from unroll.data import fetch

    folder = fetch("imdb-lm", progress=False)  # built into the (test's own) cache, then checked by sha256
    lines = {s: (folder / f"{s}.txt").read_text(encoding="utf-8").splitlines() for s in ("train", "valid", "test")}
    # 75,000 reviews less the 393 that repeat a sentiment test review word for word
    assert {s: len(v) for s, v in lines.items()} == {"train": 71_621, "valid": 1_493, "test": 1_493}
    first = " ".join(imdb_examples("train")[0][0].split())
    assert lines["valid"][0] == first and "<br />" not in lines["train"][0]
    seen = set(lines["train"]) | set(lines["valid"]) | set(lines["test"])
    assert not any(" ".join(text.split()) in seen for text, _ in imdb_examples("test"))
    assert fetch("imdb-lm", progress=False) == folder  # the second time, from the cache
