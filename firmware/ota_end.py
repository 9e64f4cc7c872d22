"""How an OTA job ends (ota_job.py, ota_watch.py load this module then): a failure reported and its staging
removed, or, in the boot after a switch, the outcome judged by the md5 the app runs:

    fail(job, e)        `ota` `failed` and the ack `failed` with the reason; the staging directory removed
    resume(app)         the boot after an OTA reached the broker (ota_watch.py): ota.json's job carried on (a
                        reboot mid-download: ota_job.py) or its outcome reported
    outcome(app, st)    ota.json `applying` and this app's md5 the job's (confirmed by ota_watch.py already): `updated`
                        and the ack `done` {"version", "md5"}; another md5: rolled back (`rolled_back`, ack `failed`);
                        `verified` (a reset before the switch) or `failed` (kept while the link was down): `failed`
    rmtree(d)           directory d and all in it

ota.json goes once the report and the ack are out; when the link could not send them it stays (marked failed)
for the next connect.
"""

import json
import os
import sys


def resume(app):
    import chooser

    st = chooser.job()
    del sys.modules["chooser"]
    if st is None:
        return
    try:
        if st["state"] == "downloading":  # carried on (a reboot mid-download)
            import ota_job

            ota_job.begin(app, st)
        else:  # an apply, or a failure kept while the link was down: reported
            outcome(app, st)
    except Exception as e:  # (MemoryError: ota.json stays for the next boot)
        print("ota: %s" % e)


def rmtree(d):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d)


def fail(job, e):
    for f in (job.mf, getattr(job, "out", None), getattr(job, "src", None)):
        if f is not None:
            f.close()
    st = job.st
    if st["kind"] == "bundle":
        rmtree(st["dir"])
    if isinstance(e, Exception):  # our ValueErrors say it all; others are named
        t = " ".join(str(e).split())
        e = t if type(e) is ValueError and t else "%s: %s" % (type(e).__name__, t)
    finish(job.app, st, "failed", e[:200])


def finish(app, st, state, error, result=None):
    """`state` on the `ota` topic and the final ack; ota.json goes once both are out."""
    body = {"id": st["id"], "state": state}
    if error is not None:
        body["error"] = error
    print("ota: " + state + ("" if error is None else ": " + error))
    if app.link.publish("ota", json.dumps(body)) and app.ack(st["id"], "failed" if error else "done", result, error):
        os.remove("ota.json")
    elif st["state"] == "downloading":
        import chooser

        st["state"] = "failed"
        st["error"] = error
        chooser.write("ota.json", json.dumps(st))
        del sys.modules["chooser"]


def outcome(app, st):
    fw = app.fw
    state = st["state"]
    if state == "applying" and fw.get("md5") == st["md5"]:
        if st["kind"] == "esp32-app":  # (confirmed by ota_watch.py) fw.json says what runs from now on (start.py)
            d = st["from"]
            with open(d + "/fw.json" if d else "fw.json", "w") as f:
                json.dump(fw, f)
        finish(app, st, "updated", None, {"version": fw.get("version"), "md5": fw["md5"]})
    elif state == "applying":
        finish(app, st, "rolled_back", "rolled back: the new app (%s) did not reach the broker within its trial; "
               "running %s again" % (st["version"] or st["md5"], fw.get("version")))
    elif state == "verified":
        finish(app, st, "failed", "the board restarted before it switched to the new app")
    else:
        finish(app, st, "failed", st.get("error") or "failed")
