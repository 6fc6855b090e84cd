"""Text in pieces of whole lines, so a corpus larger than memory can be tokenized as a stream.

A piece ends at a line end, so every tokenizer sees whole lines (a line's tokens do not depend
on where a piece was cut). Pieces of a file get the checks of ``read_text`` (empty, binary,
undecodable, with the byte offset of the first bad byte in the file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from unroll.data.files import decode_text, read_text
from unroll.errors import DataError

CHUNK_BYTES = 4 << 20


def file_chunks(path: str | os.PathLike, encoding: str | None = None, size: int | None = None) -> Iterator[str]:
    """The text of ``path`` in pieces of about ``size`` bytes, each ending at a line end (the last
    one at the end of the file). UTF-8 is read as a stream; other encodings are read whole, since
    a newline byte may then sit inside a character."""
    path, size = Path(path), size or CHUNK_BYTES
    if encoding not in (None, "utf-8", "utf8", "UTF-8"):
        yield read_text(path, encoding)
        return
    if not path.is_file():
        read_text(path)  # the one-line error for a missing file or a directory
    offset, carry, seen_text = 0, b"", False
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    with f:
        while True:
            block = f.read(size)
            data = carry + block
            if not data:
                break
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0:  # no line end yet: read on
                carry = data
                continue
            piece, carry = data[:cut], data[cut:]
            seen_text = seen_text or bool(piece.strip())
            yield _decode(piece, path, offset)
            offset += len(piece)
    if not seen_text:
        raise DataError(f"{path}: file is empty")


def _decode(piece: bytes, path: Path, offset: int) -> str:
    """``decode_text`` on one piece, with errors placed at their offset in the whole file."""
    nul = piece.find(b"\x00")
    if nul >= 0 or not piece.strip():
        if nul < 0:
            return piece.decode("utf-8")  # whitespace only: fine inside a file
        raise DataError(
            f"{path}: binary file (NUL byte at offset {offset + nul}), expected text; "
            f"if it is UTF-16 text, convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)"
        )
    if offset == 0:
        return decode_text(piece, path)  # drops a BOM
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: invalid UTF-8 at byte offset {offset + e.start} (byte 0x{piece[e.start]:02x}); "
            f"if it is in another encoding, convert it to UTF-8 first (e.g. iconv -f LATIN1 -t UTF-8) "
            f"or give its name with --encoding (e.g. --encoding latin-1)"
        ) from None


def string_chunks(text: str, size: int | None = None) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, each ending at a line end."""
    start, size = 0, size or CHUNK_BYTES
    while start < len(text):
        stop = text.find("\n", start + size) + 1 or len(text)
        yield text[start:stop]
        start = stop
