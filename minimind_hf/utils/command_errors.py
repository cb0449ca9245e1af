"""How the project's commands end on an expected error: one line on stderr and a non-zero status.

A missing or malformed data file, a missing recipe, an unknown recipe key, a folder that cannot be written --
routine mistakes -- print ``PROG: error: MESSAGE`` (the message names the file and line where there is one)
and a hint how to see the traceback, instead of thirty lines of it. ``--debug`` on the command line, or
``MINIMIND_DEBUG=1`` in the environment, lets the exception through with its traceback. Anything that is not
an expected error (a bug) keeps its traceback.

    @one_line_errors("python -m data_tools.web")
    def main(argv=None) -> int: ...
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence

import yaml

DEBUG_FLAG = "--debug"
DEBUG_ENV = "MINIMIND_DEBUG"
EXIT_ERROR = 1

EXPECTED: tuple[type[BaseException], ...] = (OSError, ValueError, yaml.YAMLError)
"""Errors of input and environment: files missing or unwritable, data or recipes malformed (``DataFormatError``
and ``json.JSONDecodeError`` are ``ValueError``s)."""

__all__ = ["DEBUG_ENV", "DEBUG_FLAG", "EXIT_ERROR", "EXPECTED", "describe", "one_line_errors"]


def describe(err: BaseException) -> str:
    """The one-line message of an expected error."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        return f"{err.strerror}: {err.filename}"
    return str(err).strip() or type(err).__name__


def debugging(argv: Sequence[str] | None = None) -> bool:
    """Whether tracebacks are asked for: ``--debug`` in ``argv`` or ``MINIMIND_DEBUG`` set (not 0)."""
    return DEBUG_FLAG in (argv or ()) or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def one_line_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a ``main(argv=None) -> int``: expected errors end it with one line and :data:`EXIT_ERROR`.

    ``--debug`` is taken out of ``argv`` before ``main`` sees it.
    """

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(argv: Sequence[str] | None = None) -> int:
            args = list(sys.argv[1:] if argv is None else argv)
            debug = debugging(args)
            args = [arg for arg in args if arg != DEBUG_FLAG]
            try:
                return main(args)
            except EXPECTED as err:
                if debug:
                    raise
                print(f"{prog}: error: {describe(err)}", file=sys.stderr)
                print(f"{prog}: (run with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
                return EXIT_ERROR

        return wrapped

    return decorate
