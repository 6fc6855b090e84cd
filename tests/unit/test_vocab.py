import numpy as np
import pytest

from unroll.errors import DataError
from unroll.text import EOS, PAD, UNK, Vocab

TOKENS = "c b a b c c d e e".split()  # c:3, b:2, e:2, a:1, d:1


def test_order_by_frequency_then_lexically():
    assert Vocab.build(TOKENS).itos == ["c", "b", "e", "a", "d"]
    assert Vocab.build({"z": 2, "y": 2, "x": 5}).itos == ["x", "y", "z"]


def test_no_unk_unless_something_is_left_out():
    assert UNK not in Vocab.build(TOKENS)
    v = Vocab.build(TOKENS, max_size=3)  # <unk> takes one of the 3 places
    assert v.itos == [UNK, "c", "b"]
    assert Vocab.build(TOKENS, min_freq=2).itos == [UNK, "c", "b", "e"]


def test_existing_unk_keeps_its_frequency_rank_when_nothing_is_cut():
    v = Vocab.build("x <unk> <unk> y x x".split())
    assert v.itos == ["x", UNK, "y"] and v.unk_id == 1


def test_specials_first_in_given_order():
    v = Vocab.build(TOKENS, specials=[PAD, EOS])
    assert v.itos[:2] == [PAD, EOS] and v.itos[2] == "c"


def test_encode_decode_and_oov():
    v = Vocab.build(TOKENS, max_size=3)
    ids = v.encode(["c", "b", "zzz"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 2, 0]
    assert v.decode(ids) == ["c", "b", UNK]
    assert v["zzz"] == v.unk_id == 0 and len(v) == 3


def test_oov_without_unk_is_an_error():
    v = Vocab.build(TOKENS)
    with pytest.raises(DataError, match="'q' is not in the vocabulary"):
        v.encode(["c", "q"])


def test_json_round_trip(tmp_path):
    v = Vocab.build(TOKENS, max_size=4, specials=[PAD])
    v.save(tmp_path / "vocab.json")
    w = Vocab.load(tmp_path / "vocab.json")
    assert w == v and w.unk_id == v.unk_id
    assert Vocab.from_dict(v.to_dict()).itos == v.itos


def test_load_bad_json(tmp_path):
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(DataError, match="v.json: not a vocabulary JSON file"):
        Vocab.load(tmp_path / "v.json")
    with pytest.raises(DataError, match="no such vocabulary file"):
        Vocab.load(tmp_path / "missing.json")


def test_stats():
    v = Vocab.build(TOKENS, max_size=4)  # <unk>, c, b, e
    s = v.stats(TOKENS)
    assert s["size"] == 4 and s["tokens"] == 9 and s["types"] == 5
    assert s["unk"] == 2 and s["oov_rate"] == pytest.approx(2 / 9) and s["coverage"] == pytest.approx(7 / 9)
    # The word-RNN tutorial's "least frequent word in our vocabulary": e, seen twice.
    assert s["least_frequent"] == {"token": "e", "count": 2}
    assert v.stats(v.encode(TOKENS))["unk"] == 2
