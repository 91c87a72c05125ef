"""Shared command-line plumbing: user mistakes become one-line errors with a non-zero exit."""

import sys
from collections.abc import Callable

from interp.errors import UserError

EXIT_USER_ERROR = 2


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Call ``main(argv)``; print a ``UserError`` as ``error: ...`` on stderr and return 2."""
    try:
        return main(argv) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
