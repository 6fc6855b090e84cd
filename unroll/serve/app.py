"""The playground's web app: the page, and a JSON API over ``unroll.use`` (load, stream, score).

Models are loaded once, before the app is made. Each model call (a generation step, a scoring
pass) runs in a worker thread, so the event loop keeps answering while a model computes, and
under that model's own lock, because a PyTorch model is not safe for concurrent forward passes
from several threads. Every request keeps its own state (a generator with its own random
stream per sequence), so concurrent requests give what the same requests give one after another.

A generation is an SSE stream (``text/event-stream``): ``event: piece`` with ``{"text": ...}``
for each piece of text as it is sampled (the first is the prime as shown), then ``event: done``
with ``{"stopped": "eos" | "max_tokens", "tokens": N, "seed": S}``. A client that goes away
stops its generation between two steps: the server sees the disconnect and closes the generator.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from unroll.errors import UnrollError
from unroll.serve import params as P
from unroll.serve.openapi import document
from unroll.serve.results import compared, lines_of, model_info, scored
from unroll.use.engine import LoadedModel
from unroll.use.generate import Piece, stream
from unroll.use.score import score
from unroll.use.surprisal import RED_BITS

T = TypeVar("T")

# The page runs only its own inline script and talks only to this server: nothing is fetched
# from elsewhere, so it works offline, and a page from another site cannot be framed around it.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "connect-src 'self'; img-src data:; frame-ancestors 'none'")


class Slot:
    """A loaded model with the lock its engine calls are made under."""

    def __init__(self, name: str, lm: LoadedModel):
        self.name, self.lm, self.lock = name, lm, threading.Lock()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread holding this model's lock. A cancelled request still
        waits for the call to finish (anyio does not abandon the thread), so the caller never
        touches a generator that is still running."""
        def locked() -> T:
            with self.lock:
                return fn(*args)

        return await run_in_threadpool(locked)


class Generation:
    """One streaming generation: its pieces and its place among the generations allowed at once."""

    def __init__(self, slot: Slot, pieces: Iterator[Piece], seed: int, active: list[int]):
        self.slot, self.pieces, self.seed, self._active = slot, pieces, seed, active
        self._open = True

    async def events(self, first: Piece) -> AsyncIterator[bytes]:
        yield _event("piece", {"text": first.text})
        while True:
            piece = await self.slot.call(next, self.pieces, None)
            if piece is None or piece.done:
                stopped = piece.stopped if piece else "max_tokens"
                yield _event("done", {"stopped": stopped, "tokens": piece.tokens if piece else 0, "seed": self.seed})
                return
            yield _event("piece", {"text": piece.text})

    def close(self) -> None:
        """Stop the generator and free the place; safe to call twice."""
        if self._open:
            self._open = False
            self.pieces.close()
            self._active[0] -= 1


class EventStream(StreamingResponse):
    """An SSE response that closes its generation however the response ends: finished, client
    gone (Starlette cancels the stream when the server reports the disconnect), or failed,
    even when it ends before the first event was sent."""

    def __init__(self, generation: Generation, first: Piece):
        super().__init__(generation.events(first), media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.generation = generation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            self.generation.close()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def create_app(models: dict[str, LoadedModel], limits: P.Limits | None = None) -> Starlette:
    """The playground for ``models`` (name -> loaded model; the first is the default), with
    ``limits`` on what one request may ask (:class:`unroll.serve.params.Limits`)."""
    if not models:
        raise UnrollError("the playground needs at least one model")
    limits = limits or P.Limits()
    slots = {name: Slot(name, lm) for name, lm in models.items()}
    active = [0]  # generations streaming now; a list so that Generation can count down
    page = resources.files("unroll.serve").joinpath("page.html").read_text(encoding="utf-8")
    api = document(limits)
    specs = {"generate": P.generate_params(limits), "score": P.score_params(limits),
             "compare": P.compare_params(limits)}

    def slot(name: str | None) -> Slot:
        if name is None:
            return next(iter(slots.values()))
        if name not in slots:
            raise P.RequestError(f"unknown model {name!r}; loaded: {', '.join(slots)}")
        return slots[name]

    async def body(request: Request, what: str) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind != "application/json":
            # a form post from another site's page needs no permission; a JSON one does (CORS)
            raise P.RequestError("send the parameters as JSON (Content-Type: application/json)", 415)
        return P.read(specs[what], await request.body(), limits)

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": [model_info(n, s.lm) for n, s in slots.items()],
                             "limits": vars(limits), "red_bits": RED_BITS,
                             "generations": {"active": active[0], "limit": limits.max_generations}})

    async def generate(request: Request) -> Response:
        p = await body(request, "generate")
        s = slot(p["model"])
        if active[0] >= limits.max_generations:
            raise P.RequestError(f"{active[0]} generations are streaming, the most this server allows at once; "
                                 f"try again when one has finished", 429)
        seed = p["seed"] if p["seed"] is not None else secrets.randbits(32)
        pieces = stream(s.lm, p["prime"], max_tokens=p["max_tokens"], seed=seed, temperature=p["temperature"],
                        top_k=p["top_k"], top_p=p["top_p"], stop_at_eos=p["stop_at_eos"])
        active[0] += 1
        generation = Generation(s, pieces, seed, active)
        try:
            # the prime is read at the first step: a character never seen in training is a 422 here
            first = await s.call(next, pieces)
        except BaseException:
            generation.close()
            raise
        return EventStream(generation, first)

    async def score_text(request: Request) -> Response:
        p = await body(request, "score")
        s = slot(p["model"])
        return JSONResponse({"model": s.name, **await s.call(scored, s.lm, _lines(p["text"]), p["top"])})

    async def compare(request: Request) -> Response:
        p = await body(request, "compare")
        names = p["models"] if p["models"] is not None else list(slots)[:2]
        if len(names) != 2:
            raise P.RequestError(f"compare needs two models (they may be the same); loaded: {', '.join(slots)}")
        pair = [slot(n) for n in names]
        lines = _lines(p["text"])
        texts, where = [t for _, t in lines], [f"line {n}" for n, _ in lines]
        results = []
        for label, s in zip("AB", pair):  # one lock at a time: two requests never wait on each other's
            try:
                results.append(await s.call(score, s.lm, texts, 64, where))
            except UnrollError as e:
                raise P.RequestError(f"model {label} ({s.name}): {e}") from None
        return JSONResponse(compared(names, [s.lm for s in pair], results, lines))

    async def openapi(request: Request) -> Response:
        return JSONResponse(api)

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # unknown path, wrong method: JSON like every other refusal
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        status = exc.status if isinstance(exc, P.RequestError) else 422
        return JSONResponse({"error": str(exc)}, status_code=status)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/models", list_models),
            Route("/api/generate", generate, methods=["POST"]),
            Route("/api/score", score_text, methods=["POST"]),
            Route("/api/compare", compare, methods=["POST"]),
            Route("/api/openapi.json", openapi),
        ],
        exception_handlers={P.RequestError: refused, UnrollError: refused, HTTPException: refused},
    )
    app.state.active = active
    return app


def _lines(text: str) -> list[tuple[int, str]]:
    lines = lines_of(text)
    if not lines:
        raise P.RequestError("text has no non-blank line to score")
    return lines
