"""``otel-cache``: the package's command line.

::

    otel-cache --version
    otel-cache demo [OPTIONS]       # the live sync-vs-async demo (otel-cache demo --help)

The demo is not part of the library's wheel: it is its own distribution in the
repository's ``demo/`` folder (``pip install -e ./demo``, which the README's first command
does), and ``otel-cache demo`` hands its arguments to :func:`otel_cache_demo.cli.main`.
Without it, ``otel-cache demo`` says how to install it and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otel_cache._version import __version__

__all__ = ["main"]

_DEMO_MISSING = (
    "otel-cache demo: the demo is not installed; it is not part of the library's wheel. From a clone"
    " of the repository: pip install -e ./demo"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-cache", description="otel-cache's command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo", help="sync vs async, live, with a report (otel-cache demo --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``otel-cache`` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args, rest = _parser().parse_known_args(arguments)
    if args.command == "demo":
        try:
            demo = importlib.import_module("otel_cache_demo.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in ("otel_cache_demo", "otel_cache_demo.cli"):
                raise
            print(_DEMO_MISSING, file=sys.stderr)
            return 1
        status: int = demo.main(rest)
        return status
    raise AssertionError(args.command)  # argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
