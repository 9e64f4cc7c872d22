"""The built-in command `ota` (app.py loads this module for it and unloads it after the call: the job it starts
keeps what it needs, ota_job.py). Where the job runs is chosen first, by the free heap, before anything large is
loaded, so this module stays small (a board at its smallest heap has ~4 KB free when the command comes):

- _ROOM bytes free or more (measured on the unix port, 64-bit: the job's peak is ~16 KB above steady state): beside
  the app and its MQTT session; ota_new.py checks the command, writes ota.json and starts the job (ota_job.py);
- less: in a boot of its own (ota_run.py, the MQTT session dropped on purpose): ota.json gets the command as it came
  (state "new", boot true), `downloading` 0 is reported and the board resets; that boot checks and runs it.
  ota.json is written in place here (no room for chooser.py's atomic write): a torn file is removed at the next
  boot (ota_boot.job), and the backend sends the command again when the board is back with the job still `sent`.

    ota(app, cmd_id, payload) -> app    (app: the job acks by itself once it is over; a ValueError for a command it
                                        refuses, which app.py acks `failed`)
"""

import gc
import json
import sys

from micropython import const

_ROOM = const(20480)


def ota(app, cmd_id, payload):
    if app.ota is not None:
        raise ValueError("an OTA is already in progress")
    gc.collect()
    if gc.mem_free() < _ROOM:
        print("ota: %d bytes of heap free: the download runs in a boot of its own" % gc.mem_free())
        with open("ota.json", "w") as f:
            json.dump({"id": cmd_id, "state": "new", "boot": True, "cmd": payload}, f)
        app.link.publish("ota", '{"id": "%s", "state": "downloading", "progress": 0}' % cmd_id)
        app.b.reset()
    try:
        __import__("ota_new").start(app, cmd_id, payload)
    finally:
        for name in ("ota_new",) if app.ota is not None else ("ota_new", "ota_job", "httpget", "chooser"):
            if name in sys.modules:  # (refused, or it could not start: nothing of the job stays)
                del sys.modules[name]
        gc.collect()
    return app
