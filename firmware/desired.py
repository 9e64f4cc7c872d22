"""The desired configuration (topic `config`, retained: the backend's `PUT .../configuration`) applied and reported.
Its messages travel as commands do: app.py's handler keeps them in the command queue (it runs inside umqtt.simple,
and the retained message comes at every connect), commands.py parses each and hands it back as the built-in
`desired`, and the loop runs that once the connect is over, in steps with one module loaded for each alone (all at
once did not fit a small heap). Each step puts the next first in the queue, a tuple whose first item names the
built-in, which commands.py hands back the same way (cmd_refused.py):

    desired(app, None, cfg)        the message, {"v": 7, "settings": {...}}: checked here
                                   -> ("desired_w", v, settings, errors)
    desired_w(app, None, step)     (desired_w.py) the period checked, settings.json written unless v is config_v
                                   already -> ("desired", v, settings, errors, fresh, period)
    desired(app, None, step)       the report on `config_report`, the telemetry's period when the file was written
                                   (fresh), and user.py's configure(keys) the maker's keys

Each returns app (nothing is acked: the report answers). A message is the whole configuration; an empty one (the
retained message cleared: a deleted device) is none (cmd_refused.py drops it); malformed JSON is logged as
a malformed command is. One that is no such object (no whole `v` >= 1,
`settings` no object) is logged and dropped: there is no version to report against. A key that cannot be applied
is left out, with the reason in `errors`, and the rest is applied: here, a value that is no bool, number or string,
or the maker's keys beyond _USER_MAX bytes of settings.json; in desired_w.py, a period out of bounds. A message
whose v is config_v already (every connect brings the retained one back) is reported, not written again, and
user.py hears of its keys again: that is how user.py gets them after a boot (nothing is loaded for them at boot:
the every-boot path has no heap to spare at 32 KB), once the board is online.

The report, {"v": 7, "applied": {...}, "errors": {"<key>": "<why>"}}: each key of the message's settings in one.
"""

import json

from micropython import const

# Bytes of the maker's keys in settings.json as MicroPython's json writes them (", " and ": "): what the backend
# allows (512 bytes of compact JSON, 16 keys) fits; and a boot, which reads the file whole, holds no more.
_USER_MAX = const(640)


def desired(app, cmd_id, x):
    q = app._queue
    if type(x) is dict:
        x = _check(x)
        if x:
            q.insert(0, x)
        return app
    _, v, x, errors, fresh, period = x
    app.link.publish("config_report", json.dumps({"v": v, "applied": x, "errors": errors}))
    print("config: v%d applied%s, %d not" % (v, "" if fresh else " already", len(errors)))
    if fresh and period and period != app.tele.period:
        app.tele.set_period(period)
    x.pop("telemetry_period", None)  # (the maker's keys alone are user.py's)
    hook = getattr(app.user, "configure", None)  # (none in safe mode: no user module)
    if hook:
        hook(x)
    return app


def _check(cfg):
    """("desired_w", v, settings, errors) of message `cfg` (parsed), or None when it is no configuration."""
    v = cfg.get("v")
    new = cfg["settings"]
    if type(v) is not int or v < 1 or type(new) is not dict:
        print("config: ignored: no configuration")
        return None
    errors = {}
    size = 2  # {}
    for k in new:
        x = new[k]
        if type(x) not in (bool, int, float, str):
            errors[k] = "not applied: not a bool, number or string"
        elif k != "telemetry_period":  # the maker's
            size += len(json.dumps(k)) + len(json.dumps(x)) + 4  # "k": x,
            if size > _USER_MAX:
                errors[k] = "not applied: no room in settings.json (%d bytes for these keys)" % _USER_MAX
    for k in errors:
        del new[k]
    return "desired_w", v, new, errors
