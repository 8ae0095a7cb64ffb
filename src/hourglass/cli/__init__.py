"""The ``hourglass`` command line: train, score, encode, cluster, neighbors, map, denoise, demo.

Each verb lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``; this module wires them together and turns user errors
into one line on standard error with an exit code: 2 for a usage mistake (an
option argparse refuses, or a value that raises ``InvalidParameterError``: a
bad option or parameter value), 1 for everything else the user can fix (bad
data, missing files, a model that cannot do what is asked: ``InvalidInputError``
and the other :mod:`hourglass.exceptions`).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from sklearn.utils._param_validation import InvalidParameterError

from hourglass._version import __version__
from hourglass.cli import (
    cluster,
    demo,
    denoise,
    encode,
    export,
    maps,
    native,
    neighbors,
    report,
    score,
    serve,
    train,
)
from hourglass.exceptions import HourglassError

__all__ = ["build_parser", "main"]

_VERBS = (
    train,
    score,
    encode,
    cluster,
    neighbors,
    maps,
    report,
    denoise,
    export,
    serve,
    demo,
    native,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hourglass`` command."""
    parser = _Parser(
        prog="hourglass",
        description="Autoencoders for outlier detection and embeddings.",
        epilog="Run 'hourglass VERB --help' for the options of each verb.",
    )
    parser.add_argument("--version", action="version", version=f"hourglass {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in _VERBS:
        verb.add_parser(subparsers)
    return parser


def _one_line(message: object) -> str:
    """``str(message)`` on one line: errors and warnings may span several."""
    return " ".join(str(message).split())


def _one_line_warning(verb: str) -> Any:
    """A ``warnings.showwarning`` that prints one line, as the CLI's errors do."""

    def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        print(f"hourglass {verb}: warning: {_one_line(message)}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return int(exit_.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for verbs that relaunch themselves
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.verb)
            return int(args.run(args))
    except InvalidParameterError as error:  # also hourglass.exceptions.InvalidParameterError
        print(f"hourglass {args.verb}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except (HourglassError, OSError, ValueError) as error:
        print(f"hourglass {args.verb}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hourglass {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug in hourglass, not a user error
        if os.environ.get("HOURGLASS_DEBUG"):
            traceback.print_exc()
        print(
            f"hourglass {args.verb}: internal error: {type(error).__name__}: {_one_line(error)}. "
            "Set HOURGLASS_DEBUG=1 to see the traceback, and please report it.",
            file=sys.stderr,
        )
        return 1
