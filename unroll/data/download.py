"""Finding a dataset's files: the local mirror, else the cache, else a verified download.

    UNROLL_DATA_DIR=/path/to/mirror   a folder laid out like ptb/ptb.train.txt, tinyshakespeare/
                                      input.txt, ...: used instead of downloading (tests, CI,
                                      offline machines)
    UNROLL_CACHE_DIR=~/.cache/unroll  where downloads go

Every file is checked against its sha256 each time it is resolved (a few ms for PTB), so a
damaged copy is caught before it turns into strange training numbers.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path
from urllib.request import urlopen

from tqdm import tqdm

from unroll.data.files import sha256_file
from unroll.data.registry import Dataset, get_dataset
from unroll.errors import DataError
from unroll.io import atomic_write_bytes


# The largest download accepted: the biggest registered archive (IMDB, ~84 MB) with room to spare,
# so a wrong address cannot fill memory.
MAX_DOWNLOAD = 512 * 1024 * 1024


def data_dir() -> Path | None:
    """The local mirror, if ``UNROLL_DATA_DIR`` is set."""
    d = os.environ.get("UNROLL_DATA_DIR")
    return Path(d).expanduser() if d else None


def cache_dir() -> Path:
    return Path(os.environ.get("UNROLL_CACHE_DIR") or "~/.cache/unroll").expanduser()


def mirror_folder(ds: Dataset) -> Path | None:
    """The dataset's folder in the mirror, when the mirror has one."""
    mirror = data_dir()
    return mirror / ds.folder if mirror is not None and (mirror / ds.folder).is_dir() else None


def mirror_files(ds: Dataset, folder: Path) -> dict[str, str]:
    """The files a mirror folder holds: the cache's layout, or the mirror's own (IMDB)."""
    if ds.mirror_files is None or all((folder / f).is_file() for f in ds.files):
        return ds.files
    return ds.mirror_files


def locate(ds: Dataset) -> Path | None:
    """Where the dataset's files are now (mirror or cache), without downloading; None if nowhere."""
    folder = mirror_folder(ds)
    if folder is not None:
        return folder
    folder = cache_dir() / ds.folder
    return folder if all((folder / f).is_file() for f in ds.files) else None


def fetch(ds: Dataset | str, progress: bool = True) -> Path:
    """The folder holding ``ds``'s verified files, downloading them into the cache if needed."""
    ds = get_dataset(ds) if isinstance(ds, str) else ds
    folder = mirror_folder(ds)
    if folder is not None:
        _verify_all(folder, mirror_files(ds, folder), in_cache=False)
        return folder
    folder = cache_dir() / ds.folder
    if not all((folder / f).is_file() for f in ds.files):
        if ds.build is not None:
            _build(ds, folder, progress)
        else:
            _download(ds, folder, progress)
    _verify_all(folder, ds.files, in_cache=True)
    return folder


def _verify_all(folder: Path, files: dict[str, str], in_cache: bool) -> None:
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"{path}: missing from the local mirror (UNROLL_DATA_DIR); copy the dataset there "
                f"or unset UNROLL_DATA_DIR to download it"
            )
        algorithm, digest = _algorithm(expected)
        got = sha256_file(path, algorithm)
        if got != digest:
            if in_cache:  # maybe a file the user placed there: moved aside, never deleted
                aside = _free_name(path.with_name(path.name + ".mismatch"))
                path.rename(aside)
                what = f"moved it aside to {aside.name}; run the command again to download it again"
            else:
                what = "replace this copy in the mirror (UNROLL_DATA_DIR)"
            raise DataError(f"{path}: checksum mismatch ({algorithm} expected {digest}, got {got}); {what}")


def _algorithm(expected: str) -> tuple[str, str]:
    """``"sha1:HEX"`` (where only a SHA-1 was ever published: WikiText-103) or a plain sha256
    -> (hashlib's name, the hex digest)."""
    algorithm, _, digest = expected.rpartition(":")
    return algorithm or "sha256", digest


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2`` ... the first that does not exist."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def _build(ds: Dataset, folder: Path, progress: bool) -> None:
    """Make a dataset from another (``Dataset.build``), fetching that one first; each file is
    written whole and renamed into place, and checked against the registry like a download."""
    module, _, function = ds.build.partition(":")
    fetch(ds.source.url.removeprefix("unroll:"), progress)
    if progress:
        print(f"building {ds.name} from {ds.source.url.removeprefix('unroll:')} into {folder} (once)",
              file=sys.stderr, flush=True)
    getattr(importlib.import_module(module), function)(folder)


def _download(ds: Dataset, folder: Path, progress: bool) -> None:
    """Download and verify the dataset's files, from its fallback addresses in turn when one fails;
    write them into ``folder`` only once every file has verified."""
    src = ds.source
    errors = []
    for url in (src.url, *src.fallbacks):
        try:
            files = _verified_files(ds, url, progress)
        except DataError as e:
            errors.append(str(e))
            continue
        for name, content in files.items():
            atomic_write_bytes(folder / name, content)
        return
    raise DataError("; ".join(errors) + _offline_hint(ds))


def _verified_files(ds: Dataset, url: str, progress: bool) -> dict[str, bytes]:
    """The dataset's files (name -> bytes) from one download of ``url``, each checksum checked."""
    src = ds.source
    data = download(url, desc=ds.name, progress=progress)
    if src.sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != src.sha256:
            raise DataError(
                f"{url}: checksum mismatch (sha256 expected {src.sha256}, got {got}); "
                f"the download was not kept in the cache; try again later or use a local copy"
            )
    if not src.members:
        (name,) = ds.files
        return {name: data}
    files = {}
    for member, name in src.members.items():
        content = _extract(data, member, url)
        algorithm, digest = _algorithm(ds.files[name])
        got = hashlib.new(algorithm, content).hexdigest()
        if got != digest:
            raise DataError(
                f"{url}: {member} has the wrong checksum ({algorithm} expected {digest}, "
                f"got {got}); nothing was written to the cache"
            )
        files[name] = content
    return files


def _extract(archive: bytes, member: str, url: str) -> bytes:
    """One member's bytes from a .zip or .tar(.gz) archive held in memory."""
    try:
        if zipfile.is_zipfile(io.BytesIO(archive)):
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                return z.read(member)
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for info in tar:  # member names may carry a leading "./"
                if info.isfile() and info.name.removeprefix("./") == member:
                    f = tar.extractfile(info)
                    assert f is not None
                    return f.read()
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise DataError(f"{url}: the download is not a readable archive ({e}); try again") from None
    except KeyError:
        pass
    raise DataError(f"{url}: the archive has no member {member}; the download is not the expected file")


def download(url: str, desc: str = "", progress: bool = True) -> bytes:
    """The bytes at ``url``, with a tqdm progress bar on stderr (when it is a terminal)."""
    try:
        with urlopen(url, timeout=60) as r:
            total = int(r.headers.get("Content-Length") or 0) or None
            if total is not None and total > MAX_DOWNLOAD:
                raise DataError(f"{url}: {total:,} bytes, more than any registered dataset ({MAX_DOWNLOAD:,}); not downloaded")
            chunks, size = [], 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc or url, disable=None if progress else True) as bar:
                for chunk in iter(lambda: r.read(1 << 16), b""):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise DataError(f"{url}: more than {MAX_DOWNLOAD:,} bytes, more than any registered dataset; "
                                        f"download stopped")
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except OSError as e:  # URLError, HTTPError, timeouts and resets are all OSErrors
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason})") from None
    return b"".join(chunks)


def _offline_hint(ds: Dataset) -> str:
    files = ", ".join(f"{ds.folder}/{f}" for f in (ds.mirror_files or ds.files))
    return (
        f"; to use a local copy, set UNROLL_DATA_DIR to a folder holding {files} "
        f"(or put the files in {cache_dir() / ds.folder})"
    )
