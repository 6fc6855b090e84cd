"""Reading user text files, with a one-line error for every way they can be wrong."""

from __future__ import annotations

import codecs
import hashlib
import os
import sys
from pathlib import Path

from unroll.errors import DataError


def read_text(path: str | os.PathLike, encoding: str | None = None) -> str:
    """The text of ``path`` (UTF-8 unless ``encoding`` says otherwise; a UTF-8 BOM is dropped).

    Missing, empty, binary and undecodable files raise :class:`DataError` naming the file, the
    problem and, for bad bytes, the byte offset.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode_text(data, path, encoding)


def decode_text(data: bytes, path: str | os.PathLike, encoding: str | None = None) -> str:
    """Decode file contents read from ``path``; see :func:`read_text`."""
    codec = _codec(encoding or "utf-8")
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    if codec.name == "utf-8":
        nul = data.find(b"\x00")
        if nul >= 0:
            raise DataError(
                f"{path}: binary file (NUL byte at offset {nul}), expected text; "
                f"if it is UTF-16 text, convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)"
            )
        codec = codecs.lookup("utf-8-sig")
    try:
        return data.decode(codec.name)
    except UnicodeDecodeError as e:
        hint = ("if it is in another encoding, convert it to UTF-8 first (e.g. iconv -f LATIN1 -t UTF-8) "
                "or give its name with --encoding (e.g. --encoding latin-1)")
        raise DataError(
            f"{path}: invalid {codec.name.replace('-sig', '').upper()} at byte offset {e.start} "
            f"(byte 0x{data[e.start]:02x}); {hint}"
        ) from None


def read_text_or_stdin(path: str, encoding: str | None = None) -> tuple[str, str]:
    """The text of ``path``, or of standard input for ``-``, and its name for messages.

    Standard input gets the same checks as a file (empty, binary, undecodable); one typed at
    the terminal is refused, since a command reading it would seem to hang.
    """
    if path != "-":
        return read_text(path, encoding), path
    if sys.stdin.isatty():
        raise DataError("no input: give a FILE or pipe text in")
    return decode_text(sys.stdin.buffer.read(), "<stdin>", encoding), "<stdin>"


def _codec(encoding: str) -> codecs.CodecInfo:
    try:
        return codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} (try utf-8 or latin-1)") from None


def sha256_file(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The file's hex digest (sha256 unless ``algorithm`` names another of hashlib's)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
