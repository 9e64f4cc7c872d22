"""What commands change on the board: settings.json, a few bytes apart from config.json (Wi-Fi, the broker login, the
CA's PEM text, the board), so that a command reads and writes this small file whole and never config.json (parsing
it, CA included, takes more heap than a board online has to spare).

    {"period": 60, "user": {"greeting": "hi"}, "config_v": 7}

period: whole seconds between telemetry samples, 5 to 86400 (_PERIOD_MIN, _PERIOD_MAX), default 60 (_PERIOD).
user, config_v: the maker's own keys of the desired configuration (an object: user.py's configure() gets them) and
the version of it last applied (desired_w.py writes them). Keys not listed here are kept as they are:
`ota_trial_s` and `ota_trial_boots` (a new app's trial after an OTA) are read by ota_boot.py, which states them, and
not here, which every boot loads.

    load()                                       the settings with defaults: start.py, once per boot
    set_telemetry_period(app, cmd_id, payload)   the built-in command -> {"period": n}; app.py loads this module
                                                 for it and unloads it afterwards
    period(value), save(s)                       for desired_w.py: a period checked (period(): the default),
                                                 the file written whole

A missing, unreadable or invalid file, or an invalid value, gives the default. The file is written atomically:
settings.json.tmp, then renamed over settings.json; load() reads the .tmp when settings.json is missing (FAT renames
over a file by removing it first: a power cut between leaves only the new file, under its temporary name).

`mpfleet provision` writes this file, and the tools read _FILE and the bounds from this source (firmware_constant()
of tools/firmware_build.py): each is stated here only.
"""

import json
import os

from micropython import const

_FILE = const("settings.json")
_TMP = const("settings.json.tmp")
_PERIOD = const(60)
_PERIOD_MIN = const(5)
_PERIOD_MAX = const(86400)


def load():
    """The settings as a dict, defaults applied. Never raises for what the file holds."""
    s = None
    for name in (_FILE, _TMP):
        try:
            with open(name) as f:
                s = json.load(f)
            break
        except OSError:  # missing: the next name
            pass
        except ValueError:  # damaged (UnicodeError included): the defaults
            print("settings: %s is not valid JSON; defaults used" % name)
            break
    if not isinstance(s, dict):
        s = {}
    if not _period_ok(s.get("period")):
        s["period"] = _PERIOD
    return s


def _period_ok(period):
    # bool is an int in Python; true is no period.
    return isinstance(period, int) and not isinstance(period, bool) and _PERIOD_MIN <= period <= _PERIOD_MAX


def set_telemetry_period(app, cmd_id, payload):
    p = period(payload.get("period"))
    s = load()
    s["period"] = p
    save(s)
    app.tele.set_period(p)
    return {"period": p}


def period(value=_PERIOD):
    """value when it is a period, else ValueError saying what one is; period() is the default."""
    if not _period_ok(value):
        raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
    return value


def save(s):
    """The settings `s` (a dict) as settings.json, whole: the temporary file, then renamed over it."""
    with open(_TMP, "w") as f:
        json.dump(s, f)
    os.rename(_TMP, _FILE)
