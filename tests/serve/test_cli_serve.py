"""``unroll serve`` as a user runs it: it prints its URL, answers, and shuts down cleanly on
SIGTERM (then ends by that signal, as uvicorn does, so a supervisor sees why) or Ctrl-C (exit 130,
like every unroll command); bad arguments are one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

pytest.importorskip("uvicorn", reason="needs the serve extra (pip install 'unroll-lm[serve]')")
import httpx2 as httpx  # noqa: E402

from unroll.cli import main  # noqa: E402
from tests.support.tiny_models import char_lm, save, word_lm  # noqa: E402


@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_serve_prints_its_url_answers_and_shuts_down_on_a_signal(tmp_path, stop, code):
    save(tmp_path / "words", word_lm(dtype=torch.float32))
    save(tmp_path / "chars", char_lm())
    proc = subprocess.Popen(
        [sys.executable, "-m", "unroll", "serve", str(tmp_path / "words"), f"letters={tmp_path / 'chars'}",
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = proc.stdout.readline()
        assert line.startswith("unroll playground: http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split()[2]
        models = httpx.get(url + "api/models", timeout=10).json()["models"]
        assert [m["name"] for m in models] == ["words", "letters"]
        r = httpx.post(url + "api/score", json={"model": "letters", "text": "abc"}, timeout=10)
        assert r.status_code == 200 and len(r.json()["sentences"][0]["tokens"]) == 4
    finally:
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err
    assert "Traceback" not in err and ("unroll: interrupted" in err) == (stop == signal.SIGINT)


def test_a_port_in_use_is_a_clear_error(tmp_path, capsys):
    save(tmp_path / "words", word_lm())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(tmp_path / "words"), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in one_error_line_after_loading(capsys)


def one_error_line_after_loading(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("loaded ")]
    assert len(err) == 1 and err[0].startswith("unroll: error: "), err
    return err[0]


@pytest.mark.parametrize("argv, says", [
    (["serve", "{missing}"], "no such"),
    (["serve", "{run}", "{run}"], "two models are named 'words'"),
    (["serve", "{run}", "--port", "70000"], "--port must be in [0, 65535]"),
    (["serve", "{run}", "--max-tokens", "0"], "max-tokens must be at least 1"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, says):
    save(tmp_path / "words", word_lm())
    argv = [a.format(run=tmp_path / "words", missing=tmp_path / "nothing") for a in argv]
    assert main(argv) == 2
    assert says in one_error_line_after_loading(capsys)
