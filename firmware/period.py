"""The built-in command `set_telemetry_period`: set_telemetry_period(app, cmd_id, payload) -> {"period": n}.

app.py imports this module for the command and unloads it afterwards (admin.py holds the other built-ins: only
this one's code is loaded for it). config.json holds the CA's PEM text: parsing it whole (and config.py to check
it) takes more heap, and more of it in one piece, than a board online has to spare. The file is copied through a
small buffer instead, the one number changed on the way.
"""

import json
import os

from micropython import const

_PERIOD_MIN = const(5)
_PERIOD_MAX = const(86400)
_CONFIG = "config.json"
_TMP = "config.json.tmp"  # the new file, renamed over the old one (config.load() takes it after a power cut between)
_CHUNK = const(128)
# How json.dumps writes the validated section (CPython's at provisioning, MicroPython's in config.save). A quote
# inside a JSON string is escaped, so these bytes are that key and nothing else.
_PERIOD_KEY = b'"telemetry": {"period": '
_TAIL = const(23)  # len(_PERIOD_KEY) - 1


def set_telemetry_period(app, cmd_id, payload):
    period = payload.get("period")
    if not isinstance(period, int) or isinstance(period, bool) or not _PERIOD_MIN <= period <= _PERIOD_MAX:
        raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
    # config.json copied to the new file _CHUNK bytes at a time, the number after _PERIOD_KEY replaced on the way.
    with open(_CONFIG, "rb") as src, open(_TMP, "wb") as dst:
        text = b""
        while True:
            chunk = src.read(_CHUNK)
            text += chunk
            i = text.find(_PERIOD_KEY)
            if i >= 0 or not chunk:
                break
            dst.write(text[:-_TAIL])
            text = text[-_TAIL:]  # may hold the key's start
        found = i >= 0
        if found:
            i += len(_PERIOD_KEY)
            text += src.read(8)  # the number (at most 5 digits) and what follows it
            j = i
            while j < len(text) and 0x30 <= text[j] <= 0x39:
                j += 1
            found = j > i
        if found:
            dst.write(text[:i])
            dst.write(str(period))
            dst.write(text[j:])
            while chunk:
                chunk = src.read(_CHUNK)
                dst.write(chunk)
    if found:
        os.rename(_TMP, _CONFIG)
    else:
        _rewrite(period)
    app.tele.set_period(period)
    return {"period": period}


def _rewrite(period):
    """config.json written otherwise (by hand, or without a period): the whole file, parsed and written again."""
    with open(_CONFIG) as f:
        cfg = json.load(f)
    if not isinstance(cfg.get("telemetry"), dict):
        cfg["telemetry"] = {}
    cfg["telemetry"]["period"] = period
    with open(_TMP, "w") as f:
        json.dump(cfg, f)
    os.rename(_TMP, _CONFIG)
