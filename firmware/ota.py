"""The built-in command `ota` (app.py loads this module for it and unloads it after the call: the job it starts
keeps what it needs, ota_job.py): where the job runs is chosen first, by the free heap, before anything large is
loaded:

- _ROOM bytes free or more (measured on the unix port, 64-bit: the job's peak is ~18 KB above steady state): beside
  the app and its MQTT session; ota_new.py checks the command and writes ota.json, ota_job.py runs the job;
- less: in a boot of its own (ota_run.py, the MQTT session dropped on purpose): ota.json gets the command as it came
  (state "new", boot true), `downloading` 0 is reported and the board resets; that boot checks and runs it.

    ota(app, cmd_id, payload) -> app    (app: the job acks by itself once it is over; a ValueError for a command it
                                        refuses, which app.py acks `failed`)
"""

import gc
import json
import sys

from micropython import const

_ROOM = const(20480)


def ota(app, cmd_id, payload):
    try:
        if app.ota is not None:
            raise ValueError("an OTA is already in progress")
        gc.collect()
        if gc.mem_free() < _ROOM:
            _own_boot(app, cmd_id, payload)
        import ota_new

        try:
            st = ota_new.check(app, cmd_id, payload)
        finally:
            del sys.modules["ota_new"]
            gc.collect()
        import ota_job

        ota_job.begin(app, st)
    except Exception:
        if app.ota is None:
            for name in ("ota", "ota_job"):
                if name in sys.modules:
                    del sys.modules[name]
        raise
    return app


def _own_boot(app, cmd_id, payload):
    """The command kept for a boot of its own (ota_run.py), then the reset. Never returns."""
    import chooser  # its write(): the one atomic write (FAT included)

    print("ota: %d bytes of heap free: the download runs in a boot of its own" % gc.mem_free())
    chooser.write("ota.json", json.dumps({"id": cmd_id, "state": "new", "boot": True, "cmd": payload}))
    app.link.publish("ota", json.dumps({"id": cmd_id, "state": "downloading", "progress": 0}))
    app.b.reset()
