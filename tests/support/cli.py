"""What the command-line tests check of a failed command: one line on stderr, ``unroll: error: ...``."""

from __future__ import annotations


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unroll: error: "), err
    return err[0]
