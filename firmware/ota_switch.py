"""The last phase of an OTA (ota.py), once the image is staged and verified: `verified`; what the new app is, where
it is (bundle: <dir>/fw.json {"version", "md5"}; esp32-app: ota_partition.apply(), which records the slot and sets
it to boot); `applying`; app.trial ("<from> <boots>", ota_boot.py's ota_trial_boots); for a bundle app.ptr names the
staging directory (chooser.py); reset. app.trial goes first: a power cut before app.ptr leaves the old app on a
harmless trial of itself. The new app reports once it reached the broker (ota_boot.py judges the outcome,
ota_end.py sends it).
"""

import json

import chooser
import ota_job as ota


def step(job, deadline):
    st = job.st
    app = job.app
    st["state"] = "verified"
    st["boot"] = False  # the download is over: no boot of its own follows (chooser.py)
    ota.save(st)
    ota.report(app, st, "verified")
    if st["kind"] == "bundle":
        with open(st["dir"] + "/fw.json", "w") as f:
            json.dump({"version": st["version"] or job.version, "md5": st["md5"]}, f)
    else:
        import ota_partition

        ota_partition.apply(app.b, st["md5"], st["version"])
    st["state"] = "applying"
    ota.save(st)
    ota.report(app, st, "applying")
    import ota_boot
    import settings

    chooser.write("app.trial", "%s %d" % (st["from"], ota_boot.trial(settings.load())[1]))
    if st["kind"] == "bundle":
        chooser.write("app.ptr", st["dir"])
    print("ota: switched; reset into the new app")
    app.b.reset()
