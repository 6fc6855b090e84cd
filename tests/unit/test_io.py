"""Atomic writes (all or nothing, with ordinary file permissions) and reading text from stdin."""

import io
import os
import stat
import sys

import pytest

from unroll.data.files import read_text_or_stdin
from unroll.errors import DataError
from unroll.io import atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_whole_file_with_umask_permissions(tmp_path):
    path = tmp_path / "sub" / "f.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(path.parent) == ["f.json"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def interrupted(fd):  # Ctrl-C after the new bytes went into the temporary file
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


class _Stdin:
    """A stand-in for sys.stdin: bytes behind ``buffer``, and whether it is a terminal."""

    def __init__(self, data: bytes, tty: bool = False):
        self.buffer, self._tty = io.BytesIO(data), tty

    def isatty(self) -> bool:
        return self._tty


def test_stdin_gets_the_checks_a_file_gets(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin("caf\xe9\n".encode("latin-1")))
    with pytest.raises(DataError, match="<stdin>: invalid UTF-8 at byte offset 3"):
        read_text_or_stdin("-")
    monkeypatch.setattr(sys, "stdin", _Stdin("caf\xe9\n".encode("latin-1")))
    assert read_text_or_stdin("-", "latin-1") == ("café\n", "<stdin>")
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\x00\x01binary"))
    with pytest.raises(DataError, match="binary"):
        read_text_or_stdin("-")
    monkeypatch.setattr(sys, "stdin", _Stdin(b"", tty=True))
    with pytest.raises(DataError, match="no input"):
        read_text_or_stdin("-")
