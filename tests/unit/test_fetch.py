"""Download, cache and checksum logic, against local file:// URLs: nothing touches the network."""

import hashlib
import io
import tarfile
import urllib.error
import zipfile

import pytest

from unroll.data import DATASETS, Dataset, Source, fetch, load_corpus
import unroll.data.download as download_module
from unroll.errors import DataError
from unroll.text import TextSpec

TEXT = b"the cat sat\nthe dog sat\n"
SHA = hashlib.sha256(TEXT).hexdigest()


def make_dataset(url: str, sha: str = SHA, members: dict | None = None, archive_sha: str | None = None,
                 fallbacks: tuple[str, ...] = ()) -> Dataset:
    return Dataset(
        name="fake", folder="fake", description="a test corpus",
        source=Source(url=url, sha256=archive_sha if members else sha, members=members or {}, fallbacks=fallbacks),
        files={"corpus.txt": sha}, splits={"train": "corpus.txt"},
        text=TextSpec(level="whitespace"), fractions=(0.5, 0.5),
    )


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("UNROLL_DATA_DIR", raising=False)
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "corpus.txt").write_bytes(TEXT)
    return tmp_path


def no_network(*args, **kwargs):
    raise urllib.error.URLError("no network in tests")


def test_download_verifies_and_caches(env, monkeypatch):
    ds = make_dataset((env / "corpus.txt").as_uri())
    monkeypatch.setitem(DATASETS, "fake", ds)
    folder = fetch(ds, progress=False)
    assert folder == env / "cache" / "fake" and (folder / "corpus.txt").read_bytes() == TEXT
    monkeypatch.setattr(download_module, "urlopen", no_network)  # now served from the cache
    c = load_corpus("fake")
    assert c.vocab.decode(c.splits["train"]) == ["the", "cat", "sat", "<eos>"]


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_archive_members_are_extracted_and_checked(env, kind):
    member = "simple-examples/data/corpus.txt"
    buf = io.BytesIO()
    if kind == "tgz":
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("./" + member)  # leading ./ as in Mikolov's archive
            info.size = len(TEXT)
            tar.addfile(info, io.BytesIO(TEXT))
    else:
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(member, TEXT)
    archive = env / f"data.{kind}"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="corpus.txt has the wrong checksum.*nothing was written"):
        fetch(make_dataset(archive.as_uri(), sha="0" * 64, members={member: "corpus.txt"}), progress=False)
    assert not (env / "cache" / "fake" / "corpus.txt").exists()
    folder = fetch(make_dataset(archive.as_uri(), members={member: "corpus.txt"}), progress=False)
    assert (folder / "corpus.txt").read_bytes() == TEXT


def test_download_checksum_mismatch_keeps_nothing(env):
    with pytest.raises(DataError, match=f"checksum mismatch \\(sha256 expected {'0' * 64}, got {SHA}\\)"):
        fetch(make_dataset((env / "corpus.txt").as_uri(), sha="0" * 64), progress=False)
    assert not (env / "cache" / "fake" / "corpus.txt").exists()


def test_a_mismatching_cache_file_is_moved_aside_then_downloaded_again(env):
    ds = make_dataset((env / "corpus.txt").as_uri())
    cached = env / "cache" / "fake" / "corpus.txt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"my own edit")
    with pytest.raises(DataError, match="moved it aside to corpus.txt.mismatch"):
        fetch(ds, progress=False)
    assert not cached.exists() and (cached.parent / "corpus.txt.mismatch").read_bytes() == b"my own edit"
    fetch(ds, progress=False)
    assert cached.read_bytes() == TEXT
    cached.write_bytes(b"edited again")  # a second mismatch never overwrites the first one set aside
    with pytest.raises(DataError, match="corpus.txt.mismatch.1"):
        fetch(ds, progress=False)
    assert (cached.parent / "corpus.txt.mismatch").read_bytes() == b"my own edit"


def test_offline_without_mirror_says_how_to_use_a_local_copy(env, monkeypatch):
    monkeypatch.setattr(download_module, "urlopen", no_network)
    with pytest.raises(DataError, match="cannot download .*set UNROLL_DATA_DIR to a folder holding fake/corpus.txt"):
        fetch(make_dataset("https://example.invalid/corpus.txt"), progress=False)


def test_mirror_is_used_instead_of_downloading(env, monkeypatch):
    mirror = env / "mirror"
    (mirror / "fake").mkdir(parents=True)
    (mirror / "fake" / "corpus.txt").write_bytes(TEXT)
    monkeypatch.setenv("UNROLL_DATA_DIR", str(mirror))
    monkeypatch.setattr(download_module, "urlopen", no_network)
    assert fetch(make_dataset("https://example.invalid/x"), progress=False) == mirror / "fake"
    with pytest.raises(DataError, match="replace this copy in the mirror"):
        fetch(make_dataset("https://example.invalid/x", sha="1" * 64), progress=False)
    assert (mirror / "fake" / "corpus.txt").exists()  # never delete the user's mirror


def test_fallback_addresses_are_tried_in_turn(env):
    (env / "changed.txt").write_bytes(b"another file at the old address\n")
    missing, changed, good = (env / "gone.txt").as_uri(), (env / "changed.txt").as_uri(), (env / "corpus.txt").as_uri()
    folder = fetch(make_dataset(missing, fallbacks=(changed, good)), progress=False)
    assert (folder / "corpus.txt").read_bytes() == TEXT


def test_every_address_failing_names_each_and_writes_nothing(env):
    (env / "changed.txt").write_bytes(b"another file\n")
    missing, changed = (env / "gone.txt").as_uri(), (env / "changed.txt").as_uri()
    with pytest.raises(DataError) as e:
        fetch(make_dataset(missing, fallbacks=(changed,)), progress=False)
    message = str(e.value)
    assert f"cannot download {missing}" in message and f"{changed}: checksum mismatch" in message
    assert message.count("UNROLL_DATA_DIR") == 1 and "\n" not in message
    assert not (env / "cache" / "fake" / "corpus.txt").exists()


def test_a_download_larger_than_any_dataset_is_refused(env, monkeypatch):
    monkeypatch.setattr(download_module, "MAX_DOWNLOAD", 10)
    with pytest.raises(DataError, match="more than any registered dataset"):
        fetch(make_dataset((env / "corpus.txt").as_uri()), progress=False)
    assert not (env / "cache" / "fake" / "corpus.txt").exists()


def test_a_sha1_digest_is_checked_where_only_one_was_published(env):
    member = "wikitext-103/wiki.train.tokens"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, TEXT)
    archive = env / "data.zip"
    archive.write_bytes(buf.getvalue())
    sha1 = hashlib.sha1(TEXT).hexdigest()
    with pytest.raises(DataError, match=f"sha1 expected {'0' * 40}, got {sha1}"):
        fetch(make_dataset(archive.as_uri(), sha="sha1:" + "0" * 40, members={member: "corpus.txt"}), progress=False)
    folder = fetch(make_dataset(archive.as_uri(), sha="sha1:" + sha1, members={member: "corpus.txt"}), progress=False)
    assert (folder / "corpus.txt").read_bytes() == TEXT
    (folder / "corpus.txt").write_bytes(b"changed\n")
    with pytest.raises(DataError, match="checksum mismatch \\(sha1 expected"):
        fetch(make_dataset(archive.as_uri(), sha="sha1:" + sha1, members={member: "corpus.txt"}), progress=False)


def test_registered_corpora_for_large_vocabularies():
    assert DATASETS["wikitext103"].files["train.txt"].startswith("sha1:") and DATASETS["wikitext103"].is_corpus
    lm = DATASETS["imdb-lm"]
    assert lm.build and lm.text.level == "word" and set(lm.splits) == {"train", "valid", "test"}
