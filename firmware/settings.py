"""What commands change on the board: settings.json, a few bytes apart from config.json (Wi-Fi, the broker login, the
CA's PEM text, the board), so that a command reads and writes this small file whole and never config.json (parsing
it, CA included, takes more heap than a board online has to spare).

    {"period": 60, "ota_trial_s": 120, "ota_trial_boots": 3}

period: whole seconds between telemetry samples, 5 to 86400 (_PERIOD_MIN, _PERIOD_MAX), default 60 (_PERIOD).
ota_trial_s: seconds a new app on trial has, from its boot, to reach the broker before it resets (ota_boot.py), 5 to 3600,
default 120 (_TRIAL_S); ota_trial_boots: how many boots it has (the count goes into app.trial, chooser.py), 1 to 10,
default 3 (_TRIAL_BOOTS). So a new app that never reaches the broker is rolled back after about boots x seconds.
Keys not listed here are kept as they are. (The OTA job keeps its own state in ota.json: ota.py.)

    load()                                       the settings with defaults: start.py, once per boot
    ota_trial(s)                                 (seconds, boots) of a new app's trial: start.py, the OTA job
    set_telemetry_period(app, cmd_id, payload)   the built-in command -> {"period": n}; app.py loads this module
                                                 for it and unloads it afterwards

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
_TRIAL_S = const(120)
_TRIAL_BOOTS = const(3)
# (key, default, lowest, highest) of the OTA trial's settings
_INTS = (("ota_trial_s", _TRIAL_S, 5, 3600), ("ota_trial_boots", _TRIAL_BOOTS, 1, 10))


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


def ota_trial(s):
    """(ota_trial_s, ota_trial_boots) of the settings `s` (load()), each its default when missing or invalid."""
    return tuple(s.get(k) if _int_ok(s.get(k), low, high) else default for k, default, low, high in _INTS)


def _period_ok(period):
    return _int_ok(period, _PERIOD_MIN, _PERIOD_MAX)


def _int_ok(n, low, high):
    # bool is an int in Python; true is no number.
    return isinstance(n, int) and not isinstance(n, bool) and low <= n <= high


def set_telemetry_period(app, cmd_id, payload):
    period = payload.get("period")
    if not _period_ok(period):
        raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
    s = load()
    s["period"] = period
    with open(_TMP, "w") as f:
        json.dump(s, f)
    os.rename(_TMP, _FILE)
    app.tele.set_period(period)
    return {"period": period}
