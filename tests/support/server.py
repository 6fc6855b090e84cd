"""A real uvicorn server for an app, on a free loopback port, in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from unroll.use.engine import LoadedModel


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve ``app`` while the block runs; yields its base URL (``http://127.0.0.1:PORT``)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def slowed(lm: LoadedModel, delay: float) -> tuple[LoadedModel, list[int]]:
    """A copy of ``lm`` whose generation steps each take ``delay`` seconds longer, and the count
    of steps taken: a generation long enough to stop halfway, whose progress can be watched."""
    engine, steps = lm.engine, [0]

    class Slow:
        def __getattr__(self, name):
            return getattr(engine, name)

        def step(self, ids, state):
            steps[0] += 1
            time.sleep(delay)
            return engine.step(ids, state)

    slow = LoadedModel(lm.model, lm.vocab, lm.spec)
    slow.engine = Slow()
    return slow, steps


def wait_until_idle(app, seconds: float = 5) -> None:
    """Wait until no generation of ``app`` is streaming (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    while app.state.active[0] and time.monotonic() < deadline:
        time.sleep(0.02)
