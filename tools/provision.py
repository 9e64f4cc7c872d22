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

The server and token are found as the REST client finds them (tools/client/config.py): --url (or its old name
--server), $MPFLEET_URL (then the old $MPFLEET_SERVER), the login file of `mpfleet login`; and last the server on
this machine (http://127.0.0.1:8080 and DATA/admin.token: after `make run`, no login is needed).
"""

import json
from pathlib import Path

from mpfleet.backend.config import default_data_dir

from . import files
from .client import config as client_config
from .client.api import Api
from .errors import CommandError
from .firmware_build import firmware_constant

DEFAULT_SERVER = "http://127.0.0.1:8080"
EMULATOR_PLATFORM = "unix"  # the MicroPython unix port: no radio, the host's network
EMULATOR_WIFI = {"ssid": "emulator", "password": ""}  # ports/unix.py joins any named network at once
OLD_URL_ENV = "MPFLEET_SERVER"  # provision's variable before the REST client's $MPFLEET_URL


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
    add_login_options(parser)
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
    check_period(args.period)
    api = Api(find_login(args))
    board = find_board(api.get("/v1/boards")["data"], args.board)
    config = register(api, board, name=name, out=out, wifi=wifi, mqtt_host=args.mqtt_host, period=args.period)
    if board["platform"]["key"] == EMULATOR_PLATFORM:
        progress(f"Next: mpfleet emulate {out}")
        return
    if wifi is None:
        progress("No --wifi-ssid: the board starts in setup mode and asks for its Wi-Fi network "
                 "(access point mpfleet-XXXXXX, page http://192.168.4.1/)")
    progress(f"Next: mpfleet deploy --port PORT --config {out}   (PORT: the board's serial port, e.g. /dev/ttyUSB0)")


def add_login_options(parser):
    """--url (alias --server) and --token, found as the REST client finds them (find_login)."""
    where = f"else the login file of `mpfleet login`, else {DEFAULT_SERVER}"
    parser.add_argument("--url", metavar="URL",
                        help=f"the mpfleet server (default: $MPFLEET_URL, else ${OLD_URL_ENV}, {where})")
    parser.add_argument("--server", metavar="URL", help="the same as --url (its former name)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="API token (default: $MPFLEET_TOKEN, else the login file, else admin.token of the data "
                        "directory, $MPFLEET_DATA or ./var, when present)")


def find_login(args):
    """The client_config.Login of add_login_options' arguments: flags, environment, login file, this machine's
    server. Raises CommandError."""
    if args.url and args.server and args.url != args.server:
        raise CommandError("--url and --server name the same thing: give one of them")
    flag = "--server" if args.server and not args.url else "--url"
    local = client_config.Local(DEFAULT_SERVER, default_data_dir() / "admin.token")
    return client_config.resolve(args.url or args.server, args.token, url_flag=flag, old_url_env=OLD_URL_ENV,
                                 local=local)


def register(api, board, *, name, out, wifi, mqtt_host, period):
    """Register device `name` on `board` (its GET /v1/boards entry) through `api` and write `out`'s config.json,
    settings.json and ca.pem, a line of progress each; returns the config written. `wifi` None: the emulator's
    stand-in network on the unix platform, else none (setup mode). Raises CommandError."""
    platform = board["platform"]["key"]
    progress(f"Registering {name!r} (board {board['key']}, platform {platform}) on {api.base_url} ...")
    device = api.post("/v1/user/devices", {"name": name, "platform": platform, "board": board["key"]})["data"]
    uid = device["uid"]
    mqtt = device["mqtt"]
    progress(f"Registered device {uid}")

    if wifi is None and platform == EMULATOR_PLATFORM:
        wifi = EMULATOR_WIFI
    config = make_config(device, wifi=wifi, mqtt_host=mqtt_host, board=board)
    out.mkdir(parents=True, exist_ok=True)
    if not mqtt.get("ca_cert"):
        # Keep the password anyway (it is shown only once), then say what is missing.
        files.write_atomic(out / "config.json", json.dumps(config, indent=2) + "\n", mode=0o600)
        raise CommandError(f"registered {uid} and wrote {out / 'config.json'}, but the server sent no CA certificate "
                           "for its broker: put the broker's CA PEM into mqtt.ca there")
    files.write_atomic(out / "ca.pem", mqtt["ca_cert"], mode=0o644)
    settings = out / firmware_constant("settings", "_FILE")
    files.write_atomic(settings, json.dumps({"period": period}) + "\n", mode=0o644)
    files.write_atomic(out / "config.json", json.dumps(config, indent=2) + "\n", mode=0o600)
    m = config["mqtt"]
    progress(f"Wrote {out / 'config.json'} (broker {m['host']}:{m['port']}, user {uid}), {settings} (telemetry "
             f"every {period} s) and {out / 'ca.pem'}")
    return config


def check_period(period):
    least, most, _ = period_bounds()
    if not least <= period <= most:
        raise CommandError(f"--period must be {least} to {most} seconds")


def check_out_dir(out, *, force, remedy="choose another --out, or add --force to replace it"):
    """Refuse (CommandError, ending with `remedy`) an `out` that is not a directory or holds a config.json."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out} is not a directory")
    if (out / "config.json").exists() and not force:
        raise CommandError(f"{out} is already provisioned ({out / 'config.json'} exists; its device password is "
                           f"kept only there): {remedy}")


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

