"""How an OTA job ends: reported. app.py loads this module once the boot after an OTA reached the broker, ota_fail.py
for a job that failed:

    report(app)     the boot after an OTA reached the broker (ota_confirm.py confirmed the app already): ota.out's
                    outcome sent (ota_boot.py judged it at this boot), then ota.out and ota.json removed; without
                    ota.out, a job cut by a reboot mid-download carried on (ota_job.py)
    finish(app, cmd_id, state, error, result=None) -> True when both went out
                    `state` on the `ota` topic and the final ack of command `cmd_id`: `failed` with `error`, else
                    `done` with `result` (a boot of its own has no session: link.up False)

When the link could not send them, ota.json (and ota.out) stay for the next boot. Small on purpose: this module runs
once the board is online, beside the whole app (a 32 KB board has ~3 KB free then).
"""

import json
import os
import sys


def report(app):
    try:
        with open("ota.out") as f:
            cmd_id, state, error, result = json.load(f)
    except OSError:  # no outcome: a download to carry on, or nothing
        st = __import__("ota_boot").job()
        del sys.modules["ota_boot"]
        if st is not None and st["state"] == "downloading":
            __import__("ota_job").begin(app, st)
        return
    except ValueError:  # torn (ota_boot.py writes it again at the next boot)
        os.remove("ota.out")
        return
    if finish(app, cmd_id, state, error, result):
        for name in ("ota.out", "ota.json"):  # (cut between: ota.json judged and sent again at the next boot)
            os.remove(name)


def finish(app, cmd_id, state, error, result=None):
    body = {"id": cmd_id, "state": state}
    if error is not None:
        body["error"] = error
    print("ota: " + state + ("" if error is None else ": " + error))
    link = app.link
    return link.up and link.publish("ota", json.dumps(body)) and app.ack(cmd_id, "failed" if error else "done",
                                                                         result, error)
