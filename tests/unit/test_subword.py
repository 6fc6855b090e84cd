"""The subword levels (sentencepiece BPE and unigram) and the yardsticks that compare levels:
exact round trips on PTB, WikiText-2 and Unicode text, a tokenizer that reloads and retrains
byte for byte, training on the train split only, bits per character / byte and word
perplexity against their closed forms on a uniform model, and both engines agreeing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from unroll import reference
from unroll.checkpoint import load_checkpoint
from unroll.config import ModelConfig
from unroll.data import load_corpus
from unroll.errors import CheckpointError, DataError, UnrollError
from unroll.evaluate import evaluate
from unroll.models import LanguageModel, save_model
from unroll.text import TextSpec, Vocab
from unroll.text.spec import text_counts
from unroll.train.metrics import read_metrics
from unroll.use import engine
from unroll.use.generate import _Detokenizer
from unroll.use.score import score

UNICODE = "Zoë’s café — naïve façade, 東京 and Straße; emoji 🙂 at the end.\n  two  spaces\ttab\n"


def whole_lines(text: str) -> str:
    return text[: text.rindex("\n") + 1]


def first_lines(path: Path, n: int) -> str:
    with open(path, encoding="utf-8") as f:
        return "".join(next(f) for _ in range(n))


@pytest.fixture(scope="module")
def ptb_text(mirror_dir) -> str:
    return first_lines(mirror_dir / "ptb" / "ptb.train.txt", 2000)


@pytest.fixture(scope="module")
def bpe(ptb_text) -> TextSpec:
    return TextSpec.for_level("bpe", vocab_size=400).fit(ptb_text)


@pytest.mark.parametrize("level", ["bpe", "unigram"])
def test_round_trips_on_ptb_wikitext_and_unicode(mirror_dir, ptb_text, level):
    wiki = first_lines(mirror_dir / "wikitext-2" / "train.txt", 400)
    for train, held_out in ((ptb_text, first_lines(mirror_dir / "ptb" / "ptb.valid.txt", 300)),
                            (wiki, first_lines(mirror_dir / "wikitext-2" / "test.txt", 300))):
        spec = TextSpec.for_level(level, vocab_size=500).fit(train)
        vocab = Vocab(["<eos>", *spec.tokenizer.inventory()])
        for text in (whole_lines(train[:20000]), held_out, UNICODE):  # characters never seen: byte pieces
            assert spec.decode(spec.encode(text, vocab), vocab) == text
    assert any(t.startswith("<0x") for t in spec.tokenize(UNICODE))


def test_ptb_unk_is_one_token_the_vocabulary_reads_as_unk(ptb_text, bpe):
    corpus = load_corpus_from_text(ptb_text, bpe)
    assert "<unk>" in bpe.tokenize("a <unk> b")
    assert corpus.vocab.unk_id == corpus.vocab["<unk>"]
    assert corpus.vocab.stats(corpus.splits["train"])["unk"] == ptb_text.count("<unk>")


def load_corpus_from_text(text: str, spec: TextSpec, tmp: Path | None = None):
    import tempfile

    folder = Path(tempfile.mkdtemp() if tmp is None else tmp)
    (folder / "train.txt").write_text(text, encoding="utf-8")
    (folder / "valid.txt").write_text(text[:2000], encoding="utf-8")
    return load_corpus(folder, spec=spec)


def test_a_saved_tokenizer_reloads_to_the_same_ids_and_retrains_byte_for_byte(tmp_path, ptb_text, bpe):
    bpe.save_files(tmp_path)
    loaded = TextSpec.for_level("bpe", vocab_size=400).load_files(tmp_path)
    assert loaded.fitted and loaded.tokenize(ptb_text[:5000]) == bpe.tokenize(ptb_text[:5000])
    for level in ("bpe", "unigram"):
        a, b = tmp_path / f"{level}-a", tmp_path / f"{level}-b"
        for d in (a, b):
            TextSpec.for_level(level, vocab_size=400).fit(ptb_text).save_files(d)
        assert (a / "tokenizer.model").read_bytes() == (b / "tokenizer.model").read_bytes()


def test_the_tokenizer_learns_from_the_train_split_only(tmp_path):
    text = "".join(f"the cat sat on mat number {i}\n" for i in range(200)) + "zebras quizzically vex\n" * 20
    path = tmp_path / "one.txt"
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus(path, "bpe", vocab_size=300)  # the last 10% of the characters: valid
    assert "<0x7A>" in corpus.vocab.decode(corpus.splits["valid"])  # "z" never occurs in train: bytes
    assert "<0x7A>" not in corpus.vocab.decode(corpus.splits["train"])
    train, valid = (corpus.text.decode(corpus.splits[s], corpus.vocab) for s in ("train", "valid"))
    assert train + valid == text and valid.endswith("zebras quizzically vex\n" * 20)
    assert corpus.counts["train"] == text_counts(train) and corpus.counts["valid"] == text_counts(valid)


def test_every_level_counts_the_same_characters_bytes_and_words(tmp_path):
    text = "Héllo there, world!\nA second line.\n\n" * 30 + "no newline at the end"
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    expected = {"chars": len(text) + 1, "bytes": len(text.encode()) + 1,
                "words": len(text.split()) + text.count("\n") + 1}
    for level, unit in (("char", "text"), ("word", "line"), ("whitespace", "line"), ("bpe", "line"),
                        ("word", "sentence")):
        spec = TextSpec(level=level, unit=unit, eos=unit != "text", vocab_size=300 if level == "bpe" else None)
        corpus = load_corpus(path, spec=spec)
        totals = {k: sum(c[k] for c in corpus.counts.values()) for k in expected}
        assert totals == expected, (level, unit)


def uniform(vocab_size: int) -> reference.LanguageModel:
    """A model whose every prediction is uniform: zero output weights and bias."""
    cfg = ModelConfig(vocab_size=vocab_size, cell="lstm", emb_size=4, hidden_size=4, num_layers=1)
    model = reference.LanguageModel(cfg, seed=0, dtype=np.float64)
    model.params["decoder.weight"][...] = 0
    model.params["decoder.bias"][...] = 0
    return model


@pytest.mark.parametrize("level", ["char", "whitespace", "bpe"])
def test_a_uniform_model_gives_each_figure_its_closed_form(tmp_path, level):
    text = "the cat sat on the mat\nthe dog ran\n" * 50
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")
    (tmp_path / "valid.txt").write_text(text, encoding="utf-8")
    corpus = load_corpus(tmp_path, level, vocab_size=290 if level == "bpe" else None)
    ids, counts, V = corpus.splits["valid"], corpus.counts["valid"], len(corpus.vocab)
    res = evaluate(uniform(V), ids, batch_size=1, bptt=20, counts=counts)
    n = len(ids)  # every token of the stream, at the mean
    assert counts == {"chars": len(text), "bytes": len(text), "words": len(text.split()) + 100}
    assert res["loss"] == pytest.approx(math.log(V), rel=1e-12)
    assert res["nll"] == pytest.approx((n - 1) * math.log(V), rel=1e-12)
    assert res["bits_per_token"] == pytest.approx(math.log2(V), rel=1e-12)
    assert res["bpc"] == pytest.approx(n * math.log2(V) / len(text), rel=1e-12)
    assert res["bpb"] == pytest.approx(n * math.log2(V) / len(text.encode()), rel=1e-12)
    assert res["word_ppl"] == pytest.approx(V ** (n / counts["words"]), rel=1e-9)


def test_both_engines_score_and_evaluate_a_subword_checkpoint_alike(tmp_path, ptb_text, bpe):
    corpus = load_corpus_from_text(ptb_text, bpe, tmp_path)
    cfg = ModelConfig(vocab_size=len(corpus.vocab), cell="lstm", emb_size=8, hidden_size=8, num_layers=2)
    torch.manual_seed(0)
    save_model(LanguageModel(cfg), tmp_path / "ckpt", corpus.vocab, extra={"train": {"data": str(tmp_path)}},
               text=corpus.text)
    a, b = engine.load(tmp_path / "ckpt", "torch", dtype=torch.float64), engine.load(tmp_path / "ckpt", "numpy")
    assert a.spec.fitted and b.spec.tokenize("stocks fell") == bpe.tokenize("stocks fell")
    lines = ["stocks fell sharply in tokyo", "the <unk> rose 5 %", "Zoë’s café 東京"]
    sa, sb = score(a, lines), score(b, lines)
    for x, y in zip(sa, sb):
        assert x.tokens == y.tokens and x.tokens[0].startswith("▁")
        np.testing.assert_allclose(x.logprobs, y.logprobs, rtol=1e-10)
    valid, counts = corpus.splits["valid"], corpus.counts["valid"]
    ra, rb = evaluate(a.model, valid, 4, 10, counts=counts), evaluate(b.model, valid, 4, 10, counts=counts)
    assert ra["bpc"] == pytest.approx(rb["bpc"], rel=1e-10) and ra["word_ppl"] == pytest.approx(rb["word_ppl"], rel=1e-10)


def test_streamed_generation_detokenizes_spaces_and_whole_characters(bpe):
    vocab = Vocab(["<eos>", *bpe.tokenizer.inventory()])
    line = bpe.tokenize("the market fell, 東京.", complete=False)
    prime = bpe.tokenize("the market", complete=False)
    assert line[: len(prime)] == prime
    rest = line[len(prime):]
    detok = _Detokenizer(bpe, prime)
    pieces = [detok.add(t) for t in [*rest, "<eos>"]]
    assert "".join(pieces) == " fell, 東京.\n"
    assert "\ufffd" not in "".join(pieces) and "" in pieces  # the bytes of 東 wait for the last one
    assert bpe.decode(vocab.encode(prime + rest + ["<eos>"]), vocab) == "the market fell, 東京.\n"


def test_bad_subword_settings_are_one_line_errors(tmp_path, ptb_text, bpe):
    with pytest.raises(DataError, match=r"--vocab-size 100000 is more than .* \(at most \d+\); choose a smaller one"):
        TextSpec.for_level("bpe", vocab_size=100000).fit(ptb_text[:3000])
    with pytest.raises(DataError, match=r"--vocab-size 50 is too small"):
        TextSpec.for_level("unigram", vocab_size=50).fit(ptb_text[:3000])
    with pytest.raises(UnrollError, match="is for a subword level"):
        TextSpec.for_level("word", vocab_size=500)
    with pytest.raises(DataError, match="empty"):
        TextSpec.for_level("bpe").fit("\n\n")
    bpe.save_files(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"\x00not a model")
    with pytest.raises(CheckpointError, match="corrupt or unreadable tokenizer file"):
        TextSpec.for_level("bpe", vocab_size=400).load_files(tmp_path)
    bpe.save_files(tmp_path)
    with pytest.raises(CheckpointError, match="does not belong to this checkpoint"):
        TextSpec.for_level("bpe", vocab_size=401).load_files(tmp_path)


def test_a_checkpoint_without_its_tokenizer_file_is_refused(tmp_path, ptb_text, bpe):
    corpus = load_corpus_from_text(ptb_text, bpe, tmp_path)
    cfg = ModelConfig(vocab_size=len(corpus.vocab), cell="gru", emb_size=4, hidden_size=4, num_layers=1)
    reference.save_model(reference.LanguageModel(cfg, seed=0), tmp_path / "ckpt", corpus.vocab, text=corpus.text)
    assert load_checkpoint(tmp_path / "ckpt").text.tokenize("the dog") == bpe.tokenize("the dog")
    (tmp_path / "ckpt" / "tokenizer.model").unlink()
    with pytest.raises(CheckpointError, match="tokenizer file is missing"):
        load_checkpoint(tmp_path / "ckpt")


def test_old_metrics_logs_read_their_bits_per_token_under_that_name(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"kind": "epoch", "valid_loss": 4.6, "valid_ppl": 99.5, "valid_bpc": 6.64}\n'
                   '{"kind": "test", "test_loss": 4.5, "test_ppl": 90.0, "test_bpc": 6.49}\n', encoding="utf-8")
    old = read_metrics(log)
    assert old[0]["valid_bits_per_token"] == 6.64 and "valid_bpc" not in old[0]
    assert old[1]["test_bits_per_token"] == 6.49 and "test_bpc" not in old[1]


def test_the_onnx_example_tokenizes_subwords_without_unroll_as_unroll_does(tmp_path, bpe):
    pytest.importorskip("onnxruntime")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "examples" / "onnx_score.py"
    module_spec = importlib.util.spec_from_file_location("onnx_score_example", path)
    example = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(example)
    bpe.save_files(tmp_path)
    for text, complete in ((UNICODE, True), ("the market <unk> fell\n", True), ("the market", False)):
        assert example.tokenize_fallback(bpe.to_dict(), text, complete, tmp_path) == bpe.tokenize(text, complete)
