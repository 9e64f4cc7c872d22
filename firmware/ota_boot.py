"""The boot after an OTA, until the broker is reached: app.py makes a Boot its `ota` (the loop ticks it) when start.py
found the files an OTA leaves (app.trial: the app is on trial, chooser.py; ota.json: a job, ota.py). Then it goes,
and this module with it.

- on trial: a board that has not reached the broker within its trial seconds resets, which counts one of its
  trial boots down (chooser.py puts the previous app back after the last); once it reached it, app.trial is
  removed: the app is confirmed;
- while an OTA of the ESP32 image is not over, `status` says what the running slot holds (ota_partition.running());
- then ota.json's job: a download carried on (ota_job.py), or the outcome of an apply reported (ota_end.py).

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


def run(app):
    """The watch of this boot (app.py's main(), for app.ota)."""
    return Boot(app)


def _exists(name):
    try:
        os.stat(name)
        return True
    except OSError:
        return False


class Boot:
    pace = 200  # ms: the link's turn in the main loop (app.py), as without it

    def __init__(self, app):
        self.app = app
        self._until = None
        if _exists("app.trial"):
            import settings

            t = trial(settings.load())[0]
            del sys.modules["settings"]
            self._until = time.ticks_add(time.ticks_ms(), t * 1000)
            print("ota: on trial: %d s to reach the broker" % t)
        if _exists("ota.json"):
            try:
                import ota_partition

                fw = ota_partition.running(app.b)
                if fw:
                    app.fw = fw
            except Exception as e:  # (ImportError: a tree without the partition method)
                print("ota: the running slot: %s" % e)
            if "ota_partition" in sys.modules:
                del sys.modules["ota_partition"]

    def reached(self):
        """The broker answered CONNECT (app.py's status(), before the `status` that says which md5 runs goes out):
        the new app is confirmed now, so that no power cut can come between a status on the new md5, which the
        backend takes as `updated`, and the confirmation (without it the trial, or an ESP32's bootloader, would still
        go back to the old app)."""
        if self._until is not None:
            self._until = None
            for name in ("app.trial", "app.trial.tmp"):
                try:
                    os.remove(name)
                except OSError:
                    pass
            print("ota: the broker reached on trial: the app is confirmed")
        st = load()
        if st and st["state"] == "applying" and st.get("kind") == "esp32-app" and st["md5"] == self.app.fw.get("md5"):
            import ota_partition

            ota_partition.confirm(self.app.b)  # mark_app_valid_cancel_rollback: harmless when done already
            del sys.modules["ota_partition"]

    def tick(self):
        app = self.app
        if not app.link.up:
            if self._until is not None and time.ticks_diff(time.ticks_ms(), self._until) > 0:
                print("ota: on trial and the broker not reached in time: reset")
                app.b.reset()
            return
        app.ota = None
        del sys.modules["ota_boot"]
        st = load()
        if st is None:
            return
        try:
            if st["state"] == "downloading":  # carried on (a reboot mid-download)
                import ota_job

                ota_job.begin(app, st)
            else:  # an apply, or a failure kept while the link was down: reported
                import ota_end

                ota_end.outcome(app, st)
                del sys.modules["ota_end"]
        except Exception as e:  # (MemoryError: ota.json stays for the next boot)
            print("ota: %s" % e)


def load():
    """ota.json's job (a dict with a "state"), or None; a torn or foreign file is removed."""
    try:
        with open("ota.json") as f:
            st = json.load(f)
        st["state"]
        return st
    except OSError:
        return None
    except Exception as e:
        print("ota: ota.json unreadable (%s): removed" % e)
        os.remove("ota.json")
        return None
