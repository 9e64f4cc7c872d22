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

A board without the heap for the next steps (below _ROOM free here) refuses the message before any of them loads:
every key in `errors` ("no memory": at 32 KB a report of 3 keys with a longer reason, even "not enough memory",
found no piece of heap for its text), nothing written, logged `config: v7 refused: not enough memory`; when even
the report finds no room (more keys) it is only logged (`..., not reported`) and the backend shows the device not
in sync without a report. The retained message comes again at the next connect and is refused again:
nothing is left behind (a module that fails to load leaves its names interned, which is what the refusal avoids).

The report, {"v": 7, "applied": {...}, "errors": {"<key>": "<why>"}}: each key of the message's settings in one.
"""

import gc
import json

from micropython import const

# Bytes of the maker's keys in settings.json as MicroPython's json writes them (", " and ": "): what the backend
# allows (512 bytes of compact JSON, 16 keys) fits; and a boot, which reads the file whole, holds no more.
_USER_MAX = const(640)
# Free heap (after gc.collect(), with this module and the message loaded) below which a configuration is refused:
# measured on the unix port (64-bit) with the benchmark's configuration (3 keys) and these modules as they are:
# 2,944 here at 34 KB applied it, 1,984 at 33 KB failed in a later step, 1,248 at 32 KB (a 32-bit board's objects
# are about half the size: the figure is cautious there).
_ROOM = const(2432)


def desired(app, cmd_id, cfg):
    if type(cfg) is tuple:
        return _report(app, cfg)
    v = cfg.get("v")
    new = cfg["settings"]
    cfg = None
    if type(v) is not int or v < 1 or type(new) is not dict:
        print("config: ignored: no configuration")
        return app
    gc.collect()
    if gc.mem_free() < _ROOM:
        for k in new:  # (the message's own dict: its values freed, no table grown)
            new[k] = "no memory"
        try:
            gc.collect()
            app.link.publish("config_report", json.dumps({"v": v, "applied": {}, "errors": new}))
            print("config: v%d refused: not enough memory" % v)
        except MemoryError:
            new = None
            print("config: v%d refused: not enough memory, not reported" % v)
        return app
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
    app._queue.insert(0, ("desired_w", v, new, errors))
    return app


def _report(app, step):
    _, v, x, errors, fresh, period = step
    step = None
    app.link.publish("config_report", json.dumps({"v": v, "applied": x, "errors": errors}))
    print("config: v%d applied%s, %d not" % (v, "" if fresh else " already", len(errors)))
    if fresh and period and period != app.tele.period:
        app.tele.set_period(period)
    x.pop("telemetry_period", None)  # (the maker's keys alone are user.py's)
    hook = getattr(app.user, "configure", None)  # (none in safe mode: no user module)
    if hook:
        hook(x)
    return app
