"""The built-in commands but `ping` (app.py answers that one): function `kind`(app, cmd_id, payload) -> result.

They are rare, so app.py imports this module for one command and unloads it afterwards: its code holds
no heap while the board only publishes. A handler that acks by itself (reboot, wifi_reset: `accepted`,
`done`, then reset) never returns.
"""

import json
import os
import sys

from micropython import const

_PERIOD_MIN = const(5)
_PERIOD_MAX = const(86400)


def reboot(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    app.cmds.ack(cmd_id, "done")
    print("app: reboot by command")
    app.b.reset()


def wifi_reset(app, cmd_id, payload):
    app.cmds.ack(cmd_id, "accepted")
    _forget_wifi()
    app.b.wifi_forget()
    app.cmds.ack(cmd_id, "done")
    print("app: wifi forgotten; reboot into setup")
    app.b.reset()


def set_telemetry_period(app, cmd_id, payload):
    period = payload.get("period")
    if not isinstance(period, int) or isinstance(period, bool) or not _PERIOD_MIN <= period <= _PERIOD_MAX:
        raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
    import config  # the file as it is, CA included (the link dropped it from app.cfg)

    try:
        cfg = config.load()
        cfg["telemetry"]["period"] = period
        config.save(cfg)
    finally:
        del sys.modules["config"]
    app.cfg["telemetry"]["period"] = period
    app.tele.set_period(period)
    return {"period": period}


def ota(app, cmd_id, payload):
    raise ValueError("OTA is not supported by this firmware yet")


def _forget_wifi(path="config.json"):
    """Remove the Wi-Fi section of config.json (atomically); the next boot goes to setup mode."""
    with open(path) as f:
        cfg = json.load(f)
    cfg.pop("wifi", None)
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f)
    os.rename(path + ".tmp", path)
