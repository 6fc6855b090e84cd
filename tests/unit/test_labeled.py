"""Labeled data for classification: the three readers, the held-out valid split, labels, and the
tutorial's preprocessing (HTML breaks, vocabulary cap, maxlen drop / head / tail)."""

from __future__ import annotations

import numpy as np
import pytest

from unroll.data.labeled import (
    build_vocab,
    classify_spec,
    clean_text,
    encode_docs,
    label_names,
    load_labeled,
    read_labeled,
    split_off,
    tokenize_texts,
    training_splits,
)
from unroll.errors import DataError


def write_class_folders(root, examples):
    for i, (text, label) in enumerate(examples):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


def test_folder_per_class_and_split_folders(tmp_path):
    flat = write_class_folders(tmp_path / "flat", [("Great fun.", "pos"), ("Dull.", "neg"), ("Meh.", "neutral")])
    assert sorted(read_labeled(flat)["all"], key=lambda e: e[1]) == [("Dull.", "neg"), ("Meh.", "neutral"), ("Great fun.", "pos")]
    write_class_folders(tmp_path / "split" / "train", [("a", "x"), ("b", "y")])
    write_class_folders(tmp_path / "split" / "test", [("c", "x")])
    raw = read_labeled(tmp_path / "split")
    assert set(raw) == {"train", "test"} and raw["test"] == [("c", "x")]


def test_unsup_folder_of_an_aclimdb_tree_is_not_a_class(tmp_path):
    write_class_folders(tmp_path / "aclImdb" / "train", [("fine", "pos"), ("poor", "neg"), ("no label", "unsup")])
    write_class_folders(tmp_path / "aclImdb" / "test", [("good", "pos"), ("bad", "neg")])
    (tmp_path / "aclImdb" / "imdb.vocab").write_text("the\n", encoding="utf-8")
    raw = read_labeled(tmp_path / "aclImdb")
    assert sorted(raw["train"]) == [("fine", "pos"), ("poor", "neg")] and len(raw["test"]) == 2


def test_csv_and_tsv_with_named_columns(tmp_path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('id,review,stars\n1,"Loved it, truly",5\n2,Hated it,1\n\n', encoding="utf-8")
    assert read_labeled(csv_path, text_column="review", label_column="stars") == {
        "all": [("Loved it, truly", "5"), ("Hated it", "1")]}
    tsv_path = tmp_path / "d.tsv"
    tsv_path.write_text("text\tlabel\nok, fine\tpos\n", encoding="utf-8")
    assert read_labeled(tsv_path)["all"] == [("ok, fine", "pos")]
    with pytest.raises(DataError, match="no column 'text'.*--text-column"):
        read_labeled(csv_path)


def test_valid_split_is_seeded_and_sized():
    examples = [(str(i), "a" if i % 2 else "b") for i in range(100)]
    train, valid = split_off(examples, 0.05, seed=7)
    assert len(valid) == 5 and len(train) == 95 and not set(train) & set(valid)
    assert split_off(examples, 0.05, seed=7) == (train, valid)
    assert split_off(examples, 0.05, seed=8)[1] != valid
    splits = training_splits({"train": examples, "test": examples[:3]}, 0.1, seed=1)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [90, 10, 3]


def test_labels_sorted_numerically_and_single_class_rejected():
    assert label_names([("", "10"), ("", "2"), ("", "1")], "d") == ["1", "2", "10"]
    assert label_names([("", "pos"), ("", "neg")], "d") == ["neg", "pos"]
    with pytest.raises(DataError, match="single class .'pos'."):
        label_names([("", "pos"), ("", "pos")], "d")


def test_preprocessing_html_vocabulary_and_maxlen():
    assert clean_text("Fun.<br /><br />Really<BR>.") == "Fun.  Really ."
    docs = tokenize_texts(["The film<br />was GOOD.", "the the film"], classify_spec("word", lower=True))
    assert docs[0] == ["the", "film", "was", "good", "."]
    vocab = build_vocab(docs, n_words=3)
    assert vocab.itos == ["<unk>", "the", "film"]  # <unk> counts toward n_words, as the tutorial's dictionary
    ids = encode_docs(docs, vocab)
    assert ids[0].tolist() == [1, 2, 0, 0, 0]
    assert encode_docs(docs, vocab, maxlen=2, overlong="head")[0].tolist() == [1, 2]
    assert encode_docs(docs, vocab, maxlen=2, overlong="tail")[0].tolist() == [0, 0]
    assert encode_docs([[]], vocab)[0].tolist() == [0]  # an empty example still gets a prediction


def test_load_labeled_drops_long_training_examples_only(tmp_path):
    path = tmp_path / "d.csv"
    rows = [f"{'w ' * n}good,pos" if n % 2 else f"{'w ' * n}bad,neg" for n in range(1, 41)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = load_labeled(str(path), maxlen=10, overlong="drop", valid_portion=0.25, seed=0)
    assert data.labels == ["neg", "pos"] and set(data.x) == {"train", "valid"}
    assert all(len(x) <= 10 for s in data.x for x in data.x[s])
    assert data.dropped["train"] + data.dropped["valid"] == 31  # lengths 2..41: 11..41 are too long
    cut = load_labeled(str(path), maxlen=10, overlong="tail", valid_portion=0.25, seed=0)
    assert sum(len(cut.x[s]) for s in cut.x) == 40 and max(len(x) for x in cut.x["train"]) == 10
    assert all(data.vocab.itos[x[-1]] in ("good", "bad") for x in cut.x["train"])  # the end is kept


def test_imdb_reader_on_the_mirror(mirror_dir):
    raw = read_labeled("imdb")
    assert [len(raw[s]) for s in ("train", "test")] == [25000, 25000]
    assert {label for _, label in raw["train"]} == {"neg", "pos"}
    sample = raw["train"][:100] + raw["train"][-100:]  # a slice: 100 negative, 100 positive reviews
    assert [label for _, label in sample] == ["neg"] * 100 + ["pos"] * 100
    assert not any("<br" in text for text, _ in sample)
    docs = tokenize_texts([t for t, _ in sample], classify_spec())
    vocab = build_vocab(docs, n_words=500)
    ids = encode_docs(docs, vocab, maxlen=100, overlong="tail")
    assert len(vocab) == 500 and all(0 < len(x) <= 100 for x in ids)
    assert np.mean([len(d) for d in docs]) > 100  # reviews are long: why imdb-lstm truncates
