"""`mpfleet login` and `mpfleet logout`: the server and token the other client commands use by default."""

import getpass
import os
import sys
from pathlib import Path

from ..errors import CommandError
from . import config, output
from .api import Api
from .options import add_command


def add_parsers(commands):
    add_command(
        commands, "login", run=login, json_output=False,
        help="check a server URL and API token, and save them for the other commands",
        description="Check the token against the server (an authenticated request), then save the URL and the "
        f"token to {_shown(config.login_file())} (mode 0600). A refused token or an unreachable server saves "
        "nothing. Without --token: $MPFLEET_TOKEN, else it is asked for (not echoed).",
    )
    add_command(
        commands, "logout", run=logout, json_output=False,
        help="forget the saved server URL and token",
        description=f"Remove the login file ({_shown(config.login_file())}).",
    )


def login(args):
    url = args.url or os.environ.get(config.URL_ENV)
    if not url:
        raise CommandError(f"give the server's URL: mpfleet login --url http://HOST:8080 (or set ${config.URL_ENV})")
    token, source = args.token, "--token"
    if not token and os.environ.get(config.TOKEN_ENV):
        token, source = os.environ[config.TOKEN_ENV], f"${config.TOKEN_ENV}"
    if not token:
        token, source = _ask_token(), "the prompt"
    api = Api(config.Login(url, token, "--url" if args.url else f"${config.URL_ENV}", source))
    total = api.get("/v1/user/devices", limit=1)["meta"]["total"]  # refused (401) or unreachable: raises
    path = config.save_login(api.base_url, token)
    count = f"{total} device" + ("" if total == 1 else "s")
    output.line(f"Logged in to {api.base_url} ({count}); saved to {path} (mode 0600)")


def logout(args):
    path = config.forget_login()
    output.line(f"Removed {path}" if path else f"Not logged in ({config.login_file()} does not exist)")


def _ask_token():
    if not sys.stdin.isatty():
        raise CommandError(f"give the API token: --token TOKEN or ${config.TOKEN_ENV} (there is no terminal "
                           "to ask for it)")
    token = getpass.getpass("API token: ").strip()
    if not token:
        raise CommandError("no API token given")
    return token


def _shown(path):
    """The login file's path as --help shows it: under ~ when it is there."""
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)
