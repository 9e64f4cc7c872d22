"""The options every REST client command has (--url, --token, --json), and the Api a command's arguments name."""

import argparse
import json
from urllib.parse import quote

from mpfleet.backend import schemas

from ..errors import CommandError
from . import config
from .api import Api

_CONNECTION_HELP = (f"Server and token: --url/--token, else ${config.URL_ENV}/${config.TOKEN_ENV}, else the login file "
                    "that `mpfleet login` writes ($XDG_CONFIG_HOME/mpfleet/login.json, else "
                    "~/.config/mpfleet/login.json).")


def add_command(commands, name, *, help, description, run, json_output=True):
    """A subcommand of the client on `commands` (argparse subparsers), with --url and --token (and --json unless
    `json_output` is False); returns its parser."""
    parser = commands.add_parser(name, help=help, description=f"{description} {_CONNECTION_HELP}")
    connection = parser.add_argument_group("server")
    connection.add_argument("--url", metavar="URL", help=f"the mpfleet server, e.g. http://127.0.0.1:8080 "
                            f"(default: ${config.URL_ENV}, else the login file)")
    connection.add_argument("--token", metavar="TOKEN",
                            help=f"API token (default: ${config.TOKEN_ENV}, else the login file)")
    if json_output:
        parser.add_argument("--json", action="store_true",
                            help="print the API's answer as JSON on stdout instead of a table (for scripts)")
    parser.set_defaults(run=run)
    return parser


def add_device(parser):
    """The UID argument of a command about one device."""
    parser.add_argument("uid", metavar="UID", help="the device's uid (see `mpfleet devices`)")


def connect(args):
    """The Api of a command's --url and --token (else the environment, else the login file)."""
    return Api(config.resolve(args.url, args.token))


def add_wait(parser, what="the command", *, done="it is done"):
    """--wait and --timeout of a command that sends a command to a device (or to many: `what` and `done` say)."""
    parser.add_argument("--wait", action="store_true",
                        help=f"wait until {what} is final (done, failed or expired), polling the server; exit 1 "
                        f"unless {done}")
    parser.add_argument("--timeout", type=positive_seconds, default=90.0, metavar="SECONDS",
                        help="with --wait: give up after this long (default: 90; the server expires a command "
                        "after 60 s without its answer)")


def add_ttl(parser, offline="the server refuses it (409)"):
    """--ttl of a command that sends a command: how long it may wait for an offline device."""
    parser.add_argument("--ttl", type=whole_seconds, metavar="SECONDS",
                        help="an offline device gets the command when it is back online, if that is within SECONDS "
                        f"(1 to {schemas.TTL_MAX}, a week); without --ttl {offline}")


def whole_seconds(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 second or more")
    return value


def positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def json_object(text, what):
    """`text` parsed as a JSON object; raises CommandError naming `what` otherwise."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise CommandError(f"{what} is not valid JSON ({error}): e.g. '{{\"cmd\": \"ping\"}}'") from None
    if not isinstance(value, dict):
        raise CommandError(f"{what} must be a JSON object, e.g. '{{\"cmd\": \"ping\"}}'")
    return value


def device_path(uid, *rest):
    """/v1/user/devices/{uid}/..., each part quoted (a uid is whatever the user typed)."""
    return "/".join(["/v1/user/devices", quote(uid, safe=""), *(quote(str(p), safe="") for p in rest)])
