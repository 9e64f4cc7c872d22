"""The built-in commands but `ping` (app.py answers that one): function `kind`(app, cmd_id, payload) -> result.

They are rare, so app.py imports this module for one command and unloads it afterwards: its code holds
no heap while the board only publishes. A handler that acks by itself (reboot, wifi_reset: `accepted`,
`done`, then reset) never returns.

config.json holds the CA's PEM text: parsing it whole (and config.py to check it) takes more heap, and more of
it in one piece, than a board online has to spare. set_telemetry_period copies the file through a small buffer
instead, the one number changed on the way; wifi_reset leaves the change to the next boot (start.py).
"""

import json
import os

from micropython import const

_PERIOD_MIN = const(5)
_PERIOD_MAX = const(86400)
_CONFIG = "config.json"
_TMP = "config.json.tmp"  # the new file, renamed over the old one (config.load() takes it after a power cut between)
_CHUNK = const(128)
_FORGET_WIFI = "forget_wifi"  # for the next boot: take the Wi-Fi section out of config.json (start.py)
# How json.dumps writes the validated section (CPython's at provisioning, MicroPython's in config.save). A quote
# inside a JSON string is escaped, so these bytes are that key and nothing else.
_PERIOD_KEY = b'"telemetry": {"period": '
_TAIL = const(23)  # len(_PERIOD_KEY) - 1


def reboot(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    app.cmds.ack(cmd_id, "done")
    print("app: reboot by command")
    app.b.reset()


def wifi_reset(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    # The next boot takes the Wi-Fi section out of config.json (start.py), where the heap has room to parse the
    # file, CA included, and then finds no Wi-Fi: setup mode.
    with open(_FORGET_WIFI, "w"):
        pass
    app.b.wifi_forget()
    app.cmds.ack(cmd_id, "done")
    print("app: wifi forgotten; reboot into setup")
    app.b.reset()


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
    else:  # written otherwise (by hand, or without a period): the whole file, parsed
        cfg = _load()
        if not isinstance(cfg.get("telemetry"), dict):
            cfg["telemetry"] = {}
        cfg["telemetry"]["period"] = period
        _save(cfg)
    app.tele.set_period(period)
    return {"period": period}


def ota(app, cmd_id, payload):
    raise ValueError("OTA is not supported by this firmware yet")


def _load():
    with open(_CONFIG) as f:
        return json.load(f)


def _save(cfg):
    with open(_TMP, "w") as f:
        json.dump(cfg, f)
    os.rename(_TMP, _CONFIG)
