"""The built-in commands but `ping` (app.py answers that one): function `kind`(app, cmd_id, payload) -> result.

They are rare, so app.py imports this module for one command and unloads it afterwards: its code holds
no heap while the board only publishes. A handler that acks by itself (reboot, wifi_reset: `accepted`,
`done`, then reset) never returns.

config.json holds the CA's PEM text: parsing it whole (and config.py to check it) takes more heap, and more of
it in one piece, than a board online has to spare. set_telemetry_period copies the file through a small buffer
instead, the one number changed on the way.
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


def reboot(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    app.cmds.ack(cmd_id, "done")
    print("app: reboot by command")
    app.b.reset()


def wifi_reset(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    cfg = _load()
    cfg.pop("wifi", None)  # the next boot finds no Wi-Fi: setup mode
    _save(cfg)
    app.b.wifi_forget()
    app.cmds.ack(cmd_id, "done")
    print("app: wifi forgotten; reboot into setup")
    app.b.reset()


def set_telemetry_period(app, cmd_id, payload):
    period = payload.get("period")
    if not isinstance(period, int) or isinstance(period, bool) or not _PERIOD_MIN <= period <= _PERIOD_MAX:
        raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
    at = _period_at()
    if at < 0:  # written otherwise (by hand, or without a period): the whole file, parsed
        cfg = _load()
        if not isinstance(cfg.get("telemetry"), dict):
            cfg["telemetry"] = {}
        cfg["telemetry"]["period"] = period
        _save(cfg)
    else:
        with open(_CONFIG, "rb") as src, open(_TMP, "wb") as dst:
            _copy(src, dst, at)
            dst.write(str(period))
            c = src.read(1)
            while b"0" <= c <= b"9":  # the old number
                c = src.read(1)
            dst.write(c)
            _copy(src, dst, -1)
        os.rename(_TMP, _CONFIG)
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


def _period_at():
    """The offset in config.json of the number after _PERIOD_KEY, or -1 when there is none."""
    keep = len(_PERIOD_KEY) - 1  # what may be the key's start at the end of one read
    tail = b""
    base = 0  # the file offset of tail[0]
    with open(_CONFIG, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return -1
            text = tail + chunk
            i = text.find(_PERIOD_KEY)
            if i >= 0:
                i += len(_PERIOD_KEY)
                c = text[i : i + 1] or f.read(1)
                return base + i if b"0" <= c <= b"9" else -1
            tail = text[-keep:]
            base += len(text) - len(tail)


def _copy(src, dst, n):
    """Copy n bytes (n < 0: all that is left) from file src to file dst, _CHUNK at a time."""
    while n:
        chunk = src.read(_CHUNK if n < 0 else min(n, _CHUNK))
        if not chunk:
            return
        dst.write(chunk)
        if n > 0:
            n -= len(chunk)
