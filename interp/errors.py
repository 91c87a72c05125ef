"""The one exception type for mistakes a user can fix (bad config, bad path, bad file)."""


class UserError(Exception):
    """A problem in the user's input, reported as a one-line message without a traceback."""
