"""The boot after an OTA, until the broker is reached: app.py makes a Boot its `ota` (the loop ticks it) when start.py
found the app on trial (app.trial, chooser.py) or an OTA job in ota.json. Then it goes, and this module with it.

- on trial: a board that has not reached the broker within its trial seconds (settings ota_trial_s) resets, which
  counts one of its trial boots down (chooser.py puts the previous app back after the last); once it reached it,
  app.trial is removed: the app is confirmed;
- then ota.json's job is handed to ota.py (a download carried on, the outcome of an apply reported).
"""

import os
import sys
import time


class Boot:
    pace = 200  # ms: the link's turn in the main loop (app.py), as without it
    def __init__(self, app, trial_s):
        self.app = app
        self._until = time.ticks_add(time.ticks_ms(), trial_s * 1000) if trial_s else None
        if trial_s:
            print("ota: on trial: %d s to reach the broker" % trial_s)

    def tick(self):
        app = self.app
        if not app.link.up:
            if self._until is not None and time.ticks_diff(time.ticks_ms(), self._until) > 0:
                print("ota: on trial and the broker not reached in time: reset")
                app.b.reset()
            return
        app.ota = None
        del sys.modules["ota_boot"]
        if self._until is not None:
            for name in ("app.trial", "app.trial.tmp"):
                try:
                    os.remove(name)
                except OSError:
                    pass
            print("ota: the broker reached on trial: the app is confirmed")
        try:
            os.stat("ota.json")
        except OSError:
            return
        try:
            import ota

            ota.ota(app, None, None)
        except Exception as e:  # (MemoryError: ota.json stays for the next boot)
            print("ota: %s" % e)
