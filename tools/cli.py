"""`mpfleet`: the maker's command line. Parses arguments, runs one command, decides the exit code."""

import argparse
import sys

from . import accounts, bundle, client, deploy, emulate, flash, ha_account, provision, serve
from .errors import CommandError


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mpfleet",
        description="Manage MicroPython ESP32/ESP8266 boards: run the backend, manage users, flash, provision, "
        "deploy and emulate boards, pack firmware bundles, and use the REST API (devices, commands, firmware, "
        "OTA, telemetry).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(commands)
    accounts.add_parsers(commands)
    ha_account.add_parser(commands)
    provision.add_parser(commands)
    emulate.add_parser(commands)
    bundle.add_parser(commands)
    flash.add_parsers(commands)
    deploy.add_parsers(commands)
    client.add_parsers(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CommandError as error:
        print(f"mpfleet: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
