"""`mpfleet deploy`: being built (issue 10)."""


def add_parsers(commands):
    """Its subcommands on `commands` (argparse subparsers): none yet."""
