"""The watch of a boot after an OTA until the broker is reached (ota_boot.py makes it; app.py ticks it as app.ota
and calls reached() from status()). Then it goes, and this module with it: ota_end.resume() carries on or reports
ota.json's job.

- on trial (until: a ticks_ms deadline): a board that has not reached the broker in time resets, which counts one
  of its trial boots down (chooser.py puts the previous app back after the last); once it reached it, app.trial is
  removed: the app is confirmed;
- confirm: the ESP32 image an OTA applied runs: once the broker is reached it is marked valid
  (ota_partition.confirm), or the bootloader would go back to the old one at the next reset.
"""

import os
import sys
import time


class Watch:
    pace = 200  # ms: the link's turn in the main loop (app.py), as without it

    app = None  # (app.py sets it once the app is made)

    def __init__(self, until, confirm):
        self._until = until
        self._confirm = confirm

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
        if self._confirm:
            self._confirm = False
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
        del sys.modules["ota_watch"]
        import ota_end

        ota_end.resume(app)
        del sys.modules["ota_end"]
