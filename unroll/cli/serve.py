"""``unroll serve``: the playground page and its JSON API on a local web server."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="a local web playground: generate, score with a surprisal heatmap, compare two models",
        description="Serve a page (and the JSON API behind it, described at /api/openapi.json) to generate "
        "text, score it token by token and compare two models. Each RUN is a checkpoint or a training run "
        "(its best/ checkpoint), loaded once; name one NAME=RUN to choose how the page lists it. "
        "Needs the serve extra: pip install \"unroll-lm[serve]\".",
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="checkpoint or run directory, or NAME=DIR")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-chars", type=int, default=10_000, metavar="N",
                   help="longest prime or text to score, in characters (default 10000)")
    p.add_argument("--max-tokens", type=int, default=1000, metavar="N",
                   help="most tokens one generation may ask for (default 1000)")
    p.add_argument("--max-generations", type=int, default=4, metavar="N",
                   help="generations streaming at once, all clients together (default 4)")
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch",
                   help="torch (fast) or numpy (the reference engine)")
    p.add_argument("--device", default="auto", help="torch engine: auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unroll.errors import UnrollError

    try:
        import uvicorn

        from unroll.serve import Limits, create_app
    except ImportError as e:
        raise UnrollError(f"unroll serve needs the serve extra ({e.name} is missing): "
                          f"pip install \"unroll-lm[serve]\"") from None
    from unroll.use.engine import load

    if not 0 <= args.port <= 65535:
        raise UnrollError(f"--port must be in [0, 65535], got {args.port}")
    limits = Limits(max_chars=args.max_chars, max_tokens=args.max_tokens, max_generations=args.max_generations)
    models = {}
    for run_arg in args.runs:
        name, directory = _named(run_arg)
        if name in models:
            raise UnrollError(f"two models are named {name!r}; name them apart with NAME=DIR")
        models[name] = load(directory, engine=args.engine, device=args.device)
        print(f"loaded {name} from {directory}", file=sys.stderr)
    if args.host not in LOOPBACK:
        print(f"unroll: warning: listening on {args.host}: anyone who can reach this machine can use the "
              f"playground (there is no authentication)", file=sys.stderr)
    sock = _bind(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"unroll playground: http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)", flush=True)
    server = _server_class()(uvicorn.Config(create_app(models, limits), log_level="warning"))
    server.run(sockets=[sock])
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt  # uvicorn's own re-raise can be lost (see _server_class): exit 130 all the same
    return 0


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, remembering the signal that stopped it. uvicorn raises a caught SIGINT
        again after shutting down, but from inside asyncio's runner, whose SIGINT handler only
        cancels a task that may already be finishing: then the Ctrl-C is lost and the exit is 0."""

        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts so that the URL printed is the real
    one (with ``--port 0``, the port is known only once bound) and a port in use is a clear error."""
    from unroll.errors import UnrollError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UnrollError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _named(run_arg: str) -> tuple[str, str]:
    """``NAME=DIR`` or ``DIR`` (named by its last path part, ``best`` skipped)."""
    name, sep, directory = run_arg.partition("=")
    if sep and name and not os.path.exists(run_arg):
        return name, directory
    parts = [p for p in os.path.normpath(run_arg).split(os.sep) if p not in ("", ".", "best")]
    return (parts[-1] if parts else "model"), run_arg
