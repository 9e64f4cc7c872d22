"""The start of a boot after an OTA: app.py's main() calls run() when start.py found the files an OTA leaves
(app.trial: the app is on trial, chooser.py; ota.json: a job, ota.py), before the app is made (the heap is young
then), and unloads this module: nothing of it is in the heap while the board connects (a watch module kept there
until the broker was reached cost 1.7 KB, more than a 32 KB board has to spare while it connects).

    run(b, settings, fw) -> (fw, until, image)
        fw: start.py's {"version", "md5"}, or, while an OTA of the ESP32 image is being applied, the running slot's
        (ota_partition.running()): the status the app sends says what runs, whichever slot the bootloader chose;
        until: on trial (app.trial there), the ticks_ms by which the broker must be reached (settings: start.py's
        settings.load()); link.py resets the board at a failed connect after it (which counts one of the trial's
        boots down: chooser.py puts the previous app back after the last); else None;
        image: when the running ESP32 image is the job's, the fw.json it is to be recorded in once confirmed
        (ota_confirm.py); else False.
        A job that is over is judged here, by the md5 this app runs, and its outcome written to ota.out for this
        boot to send once connected (ota_end.report): `applying` and this app's md5 the job's: `updated` (the ack
        `done` {"version", "md5"}); another md5: `rolled_back` (the app went back, chooser.py); `verified` (a reset
        before the switch) or `failed` (kept while the link was down): `failed`. Every such boot writes it anew:
        only the app that reaches the broker sends its own judgement.
    job() -> ota.json's job (a dict with a "state"), or None; a torn or foreign file is removed

The trial's settings live in settings.json beside the period (settings.py keeps them but reads them not: it loads
at every boot, this module only after an OTA):

    ota_trial_s       seconds from the boot to reach the broker, 5 to 3600, default 120 (_TRIAL_S)
    ota_trial_boots   boots a new app gets (written into app.trial by the OTA job), 1 to 10, default 3 (_TRIAL_BOOTS)

So a new app that never reaches the broker is back to the previous one after about boots x seconds.
"""

import json
import os
import sys
import time

from micropython import const

_TRIAL_S = const(120)
_TRIAL_BOOTS = const(3)


def trial(s):
    """(ota_trial_s, ota_trial_boots) of the settings `s` (settings.load()), each its default when missing or not a
    whole number in its range."""
    out = []
    for key, default, low, high in (("ota_trial_s", _TRIAL_S, 5, 3600), ("ota_trial_boots", _TRIAL_BOOTS, 1, 10)):
        n = s.get(key)
        ok = isinstance(n, int) and not isinstance(n, bool) and low <= n <= high
        out.append(n if ok else default)
    return out


def job():
    try:
        with open("ota.json") as f:
            st = json.load(f)
        st["state"]
        return st
    except OSError:
        return None
    except MemoryError:  # (no room to read it now: it stays, for a boot with room)
        raise
    except Exception as e:
        print("ota: ota.json unreadable (%s): removed" % e)
        os.remove("ota.json")
        return None


def run(b, settings, fw):
    until = None
    try:
        os.stat("app.trial")
        t = trial(settings)[0]
        until = time.ticks_add(time.ticks_ms(), t * 1000)
        print("ota: on trial: %d s to reach the broker" % t)
    except OSError:
        pass
    image = False
    st = job()
    if st is None or st["state"] == "downloading":  # (carried on once connected: ota_end.report)
        try:  # an outcome left by a boot whose app went back (chooser.py) before it could send it
            os.remove("ota.out")
        except OSError:
            pass
        return fw, until, image
    if st["state"] == "applying" and st.get("kind") == "esp32-app":
        try:
            import ota_partition

            fw = ota_partition.running(b) or fw
            if fw.get("md5") == st["md5"]:
                d = st["from"]
                image = d + "/fw.json" if d else "fw.json"
        except Exception as e:  # (ImportError: a tree without the partition method)
            print("ota: the running slot: %s" % e)
        if "ota_partition" in sys.modules:
            del sys.modules["ota_partition"]
    _judge(st, fw)
    return fw, until, image


def _judge(st, fw):
    state = st["state"]
    result = None
    if state != "applying":
        out, error = "failed", ("the board restarted before it switched to the new app" if state == "verified" else
                                st.get("error") or "failed")
    elif fw.get("md5") != st["md5"]:
        out, error = "rolled_back", ("rolled back: the new app (%s) did not reach the broker within its trial; "
                                     "running %s again" % (st["version"] or st["md5"], fw.get("version")))
    else:
        out, error, result = "updated", None, {"version": fw.get("version"), "md5": fw["md5"]}
    with open("ota.out", "w") as f:
        json.dump([st["id"], out, error, result], f)
