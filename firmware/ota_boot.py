"""The start of a boot after an OTA: app.py's main() calls run() when start.py found the files an OTA leaves
(app.trial: the app is on trial, chooser.py; ota.json: a job, ota.py), before the app is made (the heap is young
then), and unloads this module: only the small watch it returns (ota_watch.py) stays in the heap while the board
connects.

    run(b, settings, fw) -> (fw, watch)
        fw: start.py's {"version", "md5"}, or, while an OTA of the ESP32 image is being applied, the running slot's
        (ota_partition.running()): the status the app sends says what runs, whichever slot the bootloader chose;
        watch: an ota_watch.Watch with the trial's deadline (app.trial there; settings: start.py's settings.load())
        and whether the running image is the one to confirm (app.py gives it the app)

The trial's settings live in settings.json beside the period (settings.py keeps them but reads them not: it loads
at every boot, this module only after an OTA):

    ota_trial_s       seconds from the boot to reach the broker, 5 to 3600, default 120 (_TRIAL_S)
    ota_trial_boots   boots a new app gets (written into app.trial by the OTA job), 1 to 10, default 3 (_TRIAL_BOOTS)

So a new app that never reaches the broker is back to the previous one after about boots x seconds.
"""

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


def _exists(name):
    try:
        os.stat(name)
        return True
    except OSError:
        return False


def run(b, settings, fw):
    until = None
    if _exists("app.trial"):
        t = trial(settings)[0]
        until = time.ticks_add(time.ticks_ms(), t * 1000)
        print("ota: on trial: %d s to reach the broker" % t)
    import chooser

    st = chooser.job()
    del sys.modules["chooser"]
    confirm = False
    if st is not None and st["state"] == "applying" and st.get("kind") == "esp32-app":
        try:
            import ota_partition

            fw = ota_partition.running(b) or fw
            confirm = fw.get("md5") == st["md5"]
        except Exception as e:  # (ImportError: a tree without the partition method)
            print("ota: the running slot: %s" % e)
        if "ota_partition" in sys.modules:
            del sys.modules["ota_partition"]
    st = None
    import ota_watch

    return fw, ota_watch.Watch(until, confirm)
