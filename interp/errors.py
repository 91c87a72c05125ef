"""The one exception type for mistakes a user can fix (bad config, bad path, bad file), and
the one way to warn about what was skipped."""

import sys


class UserError(Exception):
    """A problem in the user's input, reported as a one-line message without a traceback."""


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr (something was skipped; the command goes on)."""
    print(f"warning: {message}", file=sys.stderr)
