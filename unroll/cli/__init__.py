"""The ``unroll`` command line: a thin layer over the Python API.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (called with the parsed arguments; returns the exit code). Modules import
their heavy dependencies (torch) inside ``func`` so that ``unroll --help`` stays instant. What
they share (run flags, settings flags, durations, run directories) is in ``unroll.cli.common``;
a subcommand never imports another.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterator

from unroll.errors import UnrollError

# Subcommand modules, in the order `unroll --help` lists them.
COMMANDS = [
    "unroll.cli.demo",
    "unroll.cli.train",
    "unroll.cli.eval",
    "unroll.cli.classify",
    "unroll.cli.generate",
    "unroll.cli.score",
    "unroll.cli.serve",
    "unroll.cli.export",
    "unroll.cli.average",
    "unroll.cli.data",
    "unroll.cli.gradcheck",
]


def build_parser() -> argparse.ArgumentParser:
    from unroll import __version__

    parser = argparse.ArgumentParser(
        prog="unroll", description="Recurrent neural-network language models: train, evaluate, use."
    )
    parser.add_argument("--version", action="version", version=f"unroll {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with one_line_warnings():
            return int(args.func(args) or 0)
    except UnrollError as e:
        print(f"unroll: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unroll: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `unroll generate ... | head` closed the pipe: not an error
        sys.stderr.close()
        return 0


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show warnings as ``unroll: warning: ...`` on stderr, like errors, without a source line;
    each distinct message once (one raised at every evaluation is shown the first time)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in seen:
            seen.add(str(message))
            print(f"unroll: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
