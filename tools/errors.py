"""The one error commands raise for the user to read."""


class CommandError(Exception):
    """A command failed in a way the user can fix; `cli` prints it as one line and exits with 1."""
