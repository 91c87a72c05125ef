"""Shared command-line plumbing: user mistakes become one-line errors with a non-zero exit."""

import argparse
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


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--compile and --matmul-precision (how the trainer's arithmetic runs, see
    ``interp.train.backend``), shared by interp.train and interp.bench."""
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="torch.compile the fast path's outputs, with CUDA graphs on CUDA "
                             "(opt-in: not yet measured on a GPU; default off)")
    parser.add_argument("--matmul-precision", choices=("highest", "high", "medium"),
                        default="highest",
                        help="opt-in reduced-precision float32 matmuls: 'high' allows TF32 on "
                             "CUDA, 'medium' bfloat16 (default: highest, plain float32)")
