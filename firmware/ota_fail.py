"""An OTA job that failed (ota_job.py loads this module then; ota_head.py for rmtree()):

    fail(job, e)    its files closed, the staging directory removed (a bundle's), then `ota` `failed` and the ack
                    `failed` with the reason (ota_end.finish); when the link could not send them (down, or a boot
                    of its own), ota.json keeps the failure for the app to report (ota_boot.py judges it)
    rmtree(d)       directory d and all in it
"""

import json
import os


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
    e = e[:200]
    if __import__("ota_end").finish(job.app, st["id"], "failed", e):
        os.remove("ota.json")
    else:  # kept for the app to report once it reached the broker (a boot of its own, or the link down)
        import chooser

        st["state"] = "failed"
        st["error"] = e
        chooser.write("ota.json", json.dumps(st))
