"""The step of a desired configuration that writes it (desired.py has the others, and says how they follow): app.py
imports this module for it alone and unloads it again; settings.py, which it uses, loads with it for the call.

    desired_w(app, None, step)   step: ("desired_w", v, settings, errors) as desired.py left it. The period
        checked (out of bounds: into `errors`, and out of `settings`); then, unless v is config_v already,
        settings.json gets `period` (telemetry_period; absent: the default), `user` (the maker's keys, whole) and
        `config_v`. Puts ("desired", v, settings, errors, fresh, period) first in the queue: fresh, whether the file
        was written; period, the one to run (None: as it runs). Returns app.
"""

import sys


def desired_w(app, cmd_id, step):
    import settings

    del sys.modules["settings"]  # (gone with this call: a failed one leaves nothing loaded either)
    _, v, new, errors = step
    try:
        period = settings.period(*((new["telemetry_period"],) if "telemetry_period" in new else ()))
    except ValueError as e:
        errors["telemetry_period"] = "not applied: %s" % e
        del new["telemetry_period"]
        period = None
    s = settings.load()
    fresh = s.get("config_v") != v
    if fresh:
        if period:
            s["period"] = period
        p = new.pop("telemetry_period", None)
        s.pop("user", None)
        if new:
            s["user"] = new
        s["config_v"] = v
        settings.save(s)
        if p:
            new["telemetry_period"] = p
    app._queue.insert(0, ("desired", v, new, errors, fresh, period))
    return app
