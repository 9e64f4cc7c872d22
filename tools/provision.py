"""`mpfleet provision`: register a device over the REST API and write its flash directory's config.json.

    DIR/config.json     what firmware/config.py reads: Wi-Fi, the MQTT login (mqtt.ca holds the CA PEM inline),
                        board key and its pins (from GET /v1/boards), the OTA download port (ota.port, from the
                        registration answer); 0600, it holds the device's password
    DIR/settings.json   what firmware/settings.py reads, and commands change: the telemetry period
    DIR/ca.pem          the same CA certificate, for humans and other tools

The period's bounds and default, and the settings file's name, are read from the firmware's settings.py (the one
place they are stated).

Without --wifi-ssid, config.json has no wifi section: a board then starts in setup mode and asks for its network
on a web form (firmware/setup.py); the emulator (--board unix) instead gets a stand-in network name, which its
unix port "joins" at once.

The server shows a device's MQTT password once, in the answer to the registration; config.json is then its
only copy. So an existing DIR/config.json is never replaced without --force, and that check comes before any
request: a refused run registers nothing.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mpfleet.backend.config import default_data_dir

from . import files
from .errors import CommandError
from .firmware_build import firmware_constant

DEFAULT_SERVER = "http://127.0.0.1:8080"
EMULATOR_PLATFORM = "unix"  # the MicroPython unix port: no radio, the host's network
EMULATOR_WIFI = {"ssid": "emulator", "password": ""}  # ports/unix.py joins any named network at once
_TIMEOUT = 15  # seconds, per request


def add_parser(commands):
    parser = commands.add_parser(
        "provision",
        help="register a device and write its config.json (for a board or the emulator)",
        description="Register a new device on the server (REST API) and write DIR/config.json with its MQTT "
        "login, the broker's CA certificate (also DIR/ca.pem) and the board's pins, and DIR/settings.json with "
        "what commands may change later (the telemetry period), ready for `mpfleet emulate DIR` or to be "
        "copied to a board's flash. The device password is shown by the server only once and is kept "
        "only in DIR/config.json: an existing one is never overwritten without --force.",
    )
    parser.add_argument("--server", default=os.environ.get("MPFLEET_SERVER") or DEFAULT_SERVER, metavar="URL",
                        help=f"the mpfleet backend (default: $MPFLEET_SERVER or {DEFAULT_SERVER})")
    parser.add_argument("--token", metavar="TOKEN",
                        help="API token (default: $MPFLEET_TOKEN, else admin.token of the data directory, "
                        "$MPFLEET_DATA or ./var, when present)")
    parser.add_argument("--name", metavar="NAME", help="device name shown in the API (default: the name of DIR)")
    parser.add_argument("--board", required=True, metavar="KEY",
                        help="board key from GET /v1/boards, e.g. d1_mini, esp32dev, or unix for the emulator; "
                        "the platform follows from it")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="flash directory to write config.json and ca.pem into (created if missing)")
    parser.add_argument("--wifi-ssid", metavar="SSID",
                        help="Wi-Fi network the board joins (default: none; a board then asks for it in setup "
                        "mode, the emulator needs none)")
    parser.add_argument("--wifi-password", default="", metavar="PASSWORD",
                        help="Wi-Fi password (default: empty, an open network)")
    parser.add_argument("--mqtt-host", metavar="HOST",
                        help="broker host written into config.json instead of the one the server names, e.g. "
                        "127.0.0.1 for the emulator on this machine (it must be in the broker's certificate)")
    least, most, default = period_bounds()
    parser.add_argument("--period", type=int, default=default, metavar="SECONDS",
                        help=f"seconds between telemetry samples, {least} to {most} (default: {default}); written to "
                        "DIR/settings.json, where the set_telemetry_period command changes it")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing DIR/config.json (its device stays registered on the server)")
    parser.set_defaults(run=run)


def run(args):
    out = args.out
    name = args.name or out.resolve().name
    check_out_dir(out, force=args.force)
    wifi = wifi_section(args.wifi_ssid, args.wifi_password)
    least, most, _ = period_bounds()
    if not least <= args.period <= most:
        raise CommandError(f"--period must be {least} to {most} seconds")
    api = Api(args.server, find_token(args.token))

    board = find_board(api.get("/v1/boards")["data"], args.board)
    platform = board["platform"]["key"]
    progress(f"Registering {name!r} (board {args.board}, platform {platform}) on {api.base_url} ...")
    device = api.post("/v1/user/devices", {"name": name, "platform": platform, "board": args.board})["data"]
    uid = device["uid"]
    mqtt = device["mqtt"]
    progress(f"Registered device {uid}")

    if wifi is None and platform == EMULATOR_PLATFORM:
        wifi = EMULATOR_WIFI
    config = make_config(device, wifi=wifi, mqtt_host=args.mqtt_host, board=board)
    out.mkdir(parents=True, exist_ok=True)
    if not mqtt.get("ca_cert"):
        # Keep the password anyway (it is shown only once), then say what is missing.
        files.write_atomic(out / "config.json", json.dumps(config, indent=2) + "\n", mode=0o600)
        raise CommandError(f"registered {uid} and wrote {out / 'config.json'}, but the server sent no CA certificate "
                           "for its broker: put the broker's CA PEM into mqtt.ca there")
    files.write_atomic(out / "ca.pem", mqtt["ca_cert"], mode=0o644)
    settings = out / firmware_constant("settings", "_FILE")
    files.write_atomic(settings, json.dumps({"period": args.period}) + "\n", mode=0o644)
    files.write_atomic(out / "config.json", json.dumps(config, indent=2) + "\n", mode=0o600)
    m = config["mqtt"]
    progress(f"Wrote {out / 'config.json'} (broker {m['host']}:{m['port']}, user {uid}), {settings} (telemetry "
             f"every {args.period} s) and {out / 'ca.pem'}")
    if platform == EMULATOR_PLATFORM:
        progress(f"Next: mpfleet emulate {out}")
        return
    if wifi is None:
        progress("No --wifi-ssid: the board starts in setup mode and asks for its Wi-Fi network "
                 "(access point mpfleet-XXXXXX, page http://192.168.4.1/)")
    progress(f"Next: copy {out}/config.json and {settings.name} to the board's flash along with the firmware")


def check_out_dir(out, *, force):
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out} is not a directory")
    if (out / "config.json").exists() and not force:
        raise CommandError(f"{out} is already provisioned ({out / 'config.json'} exists; its device password is "
                           "kept only there): choose another --out, or add --force to replace it")


def wifi_section(ssid, password):
    """The wifi section, or None when no SSID is given."""
    if ssid is None:
        if password:
            raise CommandError("--wifi-password needs --wifi-ssid")
        return None
    if not 1 <= len(ssid) <= 32:
        raise CommandError("--wifi-ssid must be 1 to 32 characters")
    if len(password) > 64:
        raise CommandError("--wifi-password must be at most 64 characters")
    return {"ssid": ssid, "password": password}


def find_token(given):
    """--token, else $MPFLEET_TOKEN, else DATA/admin.token; raises CommandError when there is none."""
    if given:
        return given
    if os.environ.get("MPFLEET_TOKEN"):
        return os.environ["MPFLEET_TOKEN"]
    token_file = default_data_dir() / "admin.token"
    try:
        token = token_file.read_text().strip()
    except OSError:
        token = ""
    if not token:
        raise CommandError(f"no API token: give --token, set $MPFLEET_TOKEN, or run where {token_file} exists")
    return token


def find_board(boards, key):
    """The entry of GET /v1/boards whose key is `key`; raises CommandError listing the known keys."""
    for board in boards:
        if board.get("key") == key:
            return board
    known = ", ".join(sorted(b.get("key", "?") for b in boards)) or "none"
    raise CommandError(f"unknown board {key!r}; known boards: {known}")


def period_bounds():
    """(least, most, default) seconds of the telemetry period, as firmware/settings.py states them."""
    return tuple(firmware_constant("settings", name) for name in ("_PERIOD_MIN", "_PERIOD_MAX", "_PERIOD"))


def make_config(device, *, wifi, mqtt_host, board):
    """config.json for `device` (the registration answer) on `board` (its GET /v1/boards entry), in the layout of
    firmware/config.py: the board's pins (those it has) are carried from its definition.

    `wifi` None leaves the wifi section out: the board's setup mode asks for it.
    """
    mqtt = device["mqtt"]
    config = {
        "wifi": dict(wifi) if wifi else None,
        "mqtt": {
            "host": mqtt_host or mqtt["host"],
            "port": mqtt["port"],
            "uid": device["uid"],
            "password": mqtt["password"],
            "ca": mqtt.get("ca_cert"),
        },
        "board": board["key"],
        "pins": {name: value for name, value in (board.get("pins") or {}).items() if value is not None},
    }
    if device.get("ota"):  # for people and tools: the board downloads from the URL each `ota` command carries
        config["ota"] = {"port": device["ota"]["port"]}
    if not wifi:
        del config["wifi"]
    if not config["pins"]:  # the emulated board: none (and no empty object to hold in its heap)
        del config["pins"]
    return config


def progress(line):
    print(line, flush=True)


class Api:
    """JSON over HTTP to the backend; every failure becomes a one-line CommandError."""

    def __init__(self, base_url, token):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(f"--server must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token

    def get(self, path):
        return self._call("GET", path)

    def post(self, path, body):
        return self._call("POST", path, body)

    def _call(self, method, path, body=None):
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                return self._json(response.read(), method, path)
        except urllib.error.HTTPError as error:
            with error:
                raise self._refused(error.code, error.read(), method, path) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            reason = getattr(reason, "strerror", None) or reason
            raise CommandError(f"cannot reach the server at {self.base_url}: {reason}") from None

    def _json(self, raw, method, path):
        try:
            return json.loads(raw)
        except ValueError:
            raise CommandError(f"{method} {self.base_url}{path}: the answer is not JSON; is --server "
                               "an mpfleet backend?") from None

    def _refused(self, status, raw, method, path):
        if status == 401:
            return CommandError("the server refused the token (401): check --token or $MPFLEET_TOKEN")
        try:
            message = json.loads(raw).get("message")
        except (ValueError, AttributeError):
            message = None
        if status == 404 and not message:
            return CommandError(f"{self.base_url}{path}: not found; is --server an mpfleet backend?")
        return CommandError(f"{method} {path}: the server answered {status}: {message or 'no message'}")
