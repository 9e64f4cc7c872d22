"""Where the client finds its server and token: flags, else the environment, else the login file.

The login file is written by `mpfleet login` (JSON `{"url", "token"}`, mode 0600, its folder 0700) at
$XDG_CONFIG_HOME/mpfleet/login.json, else ~/.config/mpfleet/login.json.

The maker's commands that talk to the server (provision, setup-board) look in the same places, then at the server on
this machine (a Local: the one `make run` starts, whose admin token is a file), so that they need no login there.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..errors import CommandError

URL_ENV = "MPFLEET_URL"
TOKEN_ENV = "MPFLEET_TOKEN"
LOGIN_NAME = "login.json"


@dataclass(frozen=True)
class Login:
    """A server and a token, and where each came from (named in errors: the user knows what to fix)."""

    url: str
    token: str
    url_source: str
    token_source: str


@dataclass(frozen=True)
class Local:
    """The server on this machine, the last place a command looks: its URL, and the file that holds its admin token
    (`mpfleet serve` writes DATA/admin.token)."""

    url: str
    token_file: Path

    def read_token(self):
        """The token in token_file, or None when there is none."""
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None


LOCAL_SOURCE = "the default for a server on this machine"


def config_dir():
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "mpfleet"


def login_file():
    return config_dir() / LOGIN_NAME


def resolve(url=None, token=None, *, url_flag="--url", old_url_env=None, local=None):
    """The Login of a command: each of URL and token from its flag, else its variable, else the login file, else
    (with `local`, a Local) the server on this machine.

    `url_flag` names the flag `url` came from (in errors: the one the user typed); `old_url_env` is a variable read
    after $MPFLEET_URL (provision's former $MPFLEET_SERVER, for old scripts). Raises CommandError naming the places
    when one of them is nowhere.
    """
    url, url_source = _first((url, url_flag), (os.environ.get(URL_ENV), f"${URL_ENV}"),
                             (old_url_env and os.environ.get(old_url_env), f"${old_url_env}"))
    token, token_source = _first((token, "--token"), (os.environ.get(TOKEN_ENV), f"${TOKEN_ENV}"))
    path = login_file()
    if not (url and token):  # the file is read only when needed: one that is broken is then reported
        saved = read_login()
        url, url_source = _first((url, url_source), (saved.get("url"), str(path)))
        token, token_source = _first((token, token_source), (saved.get("token"), str(path)))
    if local and not (url and token):
        url, url_source = _first((url, url_source), (local.url, LOCAL_SOURCE))
        token, token_source = _first((token, token_source), (local.read_token(), str(local.token_file)))
    if not url:
        raise CommandError(f"no server URL: give --url, set ${URL_ENV}, or run `mpfleet login` (it writes {path})")
    if not token:
        login = f"run `mpfleet login` (it writes {path})"
        places = f"{login}, or run where {local.token_file} exists" if local else f"or {login}"
        raise CommandError(f"no API token: give --token, set ${TOKEN_ENV}, {places}")
    return Login(url, token, url_source, token_source)


def _first(*candidates):
    """(value, source) of the first candidate with a value, else (None, None)."""
    for value, source in candidates:
        if value:
            return value, source
    return None, None


def read_login():
    """The saved {"url", "token"}, or {} when there is no login file. Raises CommandError for one that is not
    a login file (rather than silently ignoring what the user wrote)."""
    path = login_file()
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CommandError(f"{path} is not a login file ({error}): run `mpfleet login` again") from None
    if not isinstance(saved, dict):
        raise CommandError(f"{path} is not a login file: run `mpfleet login` again")
    return {key: saved[key] for key in ("url", "token") if isinstance(saved.get(key), str)}


def save_login(url, token):
    """Write the login file, owner-only (it holds the token); returns its path."""
    path = login_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.write_atomic(path, json.dumps({"url": url, "token": token}, indent=2) + "\n", mode=0o600)
    return path


def forget_login():
    """Remove the login file; returns its path if there was one, else None."""
    path = login_file()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
