"""`mpfleet config UID` and `mpfleet group-config ID`: desired configuration, a device's and a group's, shown or
changed (.../devices/UID/configuration, /v1/user/groups/ID/configuration; docs/api.md, Configuration)."""

import argparse
import json

from mpfleet.backend import config_schemas

from ..errors import CommandError
from . import output
from .groups import _path as group_path
from .options import add_command, connect, device_path

_CHANGES = ("Changes: --set KEY=VALUE (VALUE as JSON when it is a number, true or false, or a quoted string; else "
            "the text as it is), --unset KEY, --clear (every key); the settings are read, changed and put back whole. "
            f"`{config_schemas.PERIOD_KEY}` is the board's telemetry period ({config_schemas.PERIOD_MIN} to "
            f"{config_schemas.PERIOD_MAX} s); other keys ({config_schemas.KEY_RULE}) are the maker's own, which "
            "user.py reads.")


def add_parsers(commands):
    device = add_command(commands, "config", run=device_config, help="show or change a device's desired settings",
                         description="A device's desired configuration (GET /v1/user/devices/UID/configuration): its "
                         "effective settings (its groups', then its own), what its board reported it applied, and "
                         "whether the two agree. With changes, its own settings are put (PUT ...) and the board gets "
                         f"them retained, now or when it is back. {_CHANGES}")
    device.add_argument("uid", metavar="UID", help="the device's uid (see `mpfleet devices`)")
    _add_changes(device)

    group = add_command(commands, "group-config", run=group_config, help="show or change a group's settings",
                        description="A group's settings (GET /v1/user/groups/ID/configuration), which its members get "
                        "unless their own settings override a key (groups merged in ascending id). With changes they "
                        f"are put (PUT ...) and every member whose settings change gets them. {_CHANGES}")
    group.add_argument("id", type=int, metavar="ID", help="the group's id (see `mpfleet groups`)")
    _add_changes(group)


def _add_changes(parser):
    parser.add_argument("--set", action="append", default=[], type=_setting, metavar="KEY=VALUE", dest="set",
                        help="set a key (repeat for several)")
    parser.add_argument("--unset", action="append", default=[], metavar="KEY", help="remove a key (repeatable)")
    parser.add_argument("--clear", action="store_true", help="remove every key first")


def _setting(text):
    """KEY=VALUE → (key, value): VALUE as JSON when it is a number, a boolean or a quoted string, else as text."""
    key, equals, raw = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if not isinstance(value, (bool, int, float, str)):  # null, a list or an object: the text as it is
        value = raw
    return key, value


def _changed(args, current):
    """The settings after the command's changes, or None when it asks for none."""
    if not (args.set or args.unset or args.clear):
        return None
    settings = {} if args.clear else dict(current)
    for key in args.unset:
        if key not in settings and not args.clear:
            raise CommandError(f"{key}: no such key in the settings")
        settings.pop(key, None)
    settings.update(args.set)
    return settings


def device_config(args):
    api = connect(args)
    path = device_path(args.uid, "configuration")
    data = api.get(path)["data"]
    settings = _changed(args, data["own"])
    if settings is not None:
        data = api.put(path, {"settings": settings})["data"]
    if args.json:
        return output.emit_json(data)
    _show_device(args.uid, data)


def _show_device(uid, data):
    reported = data["reported"]
    if reported is None:
        state = "nothing reported yet"
    else:
        state = f"the board reported version {reported['v']} at {reported['reported_at']}"
    sync = "in sync" if data["in_sync"] else "not in sync"
    output.line(f"Configuration of {uid}: version {data['version']}, {sync} ({state})")
    applied = reported["applied"] if reported else {}
    errors = reported["errors"] if reported else {}
    keys = sorted({*data["desired"], *applied, *errors})
    rows = [(key, _value(data["desired"], key), "device" if key in data["own"] else "group" if key in data["desired"]
             else "", _value(applied, key), errors.get(key, "")) for key in keys]
    output.table(["Key", "Desired", "From", "Applied", "Error"], rows, title="Settings")


def _value(settings, key):
    return json.dumps(settings[key], ensure_ascii=False) if key in settings else ""


def group_config(args):
    api = connect(args)
    path = group_path(args.id, "configuration")
    settings = api.get(path)["data"]["settings"]
    changed = _changed(args, settings)
    if changed is not None:
        settings = api.put(path, {"settings": changed})["data"]["settings"]
    if args.json:
        return output.emit_json(settings)
    output.table(["Key", "Value"], [(key, _value(settings, key)) for key in sorted(settings)],
                 title=f"Settings of group {args.id}")
