"""The REST client commands of `mpfleet`: the whole API (docs/api.md) from the command line (docs/cli.md).

    config.py     where the server URL and token come from (flags, environment, the login file)
    api.py        JSON over HTTP; every failure one CommandError with the API's message
    multipart.py  the streamed multipart body of a firmware upload
    output.py     tables, --json, progress bars (rich)
    waiting.py    reading something again until it is over (a command, an OTA job, a bulk command)
    options.py    what every client command has (--url, --token, --json, --wait, --ttl)
    the rest      one group of commands each
"""

from . import (alarms, buttons, bulk, campaigns, commands, configuration, devices, firmware, groups, health, ota, rules,
               session, tags, telemetry, watch)


def add_parsers(subparsers):
    """Every client command on `subparsers` (argparse subparsers)."""
    for group in (session, devices, tags, groups, configuration, commands, buttons, bulk, firmware, ota, campaigns,
                  telemetry, health, rules, alarms, watch):
        group.add_parsers(subparsers)
