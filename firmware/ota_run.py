"""An OTA download in a boot of its own, before the app: for a board whose heap cannot hold the job beside the app
and its MQTT session (ota.py decides by the free heap when the command comes, marks ota.json `boot` and resets).

    boot()        main.py, at a boot whose ota.json asks for it (chooser.py), before the app: ota_own.py sets the
                  boot up (the board, Wi-Fi, the TLS context, the job begun) and goes again, then the job is ticked
                  (ota_job.py, the same phases) until it ends: verified, it switches and resets into the new app
                  (ota_switch.py); failed, ota.json keeps the failure and the boot goes on into the app, which
                  reports it once it reached the broker (ota_boot.py, ota_end.py). Reboots in between resume it.

The session is dropped on purpose for it: no `ota` progress goes out while it runs (the link is not up; the
`verified`/`applying` reports are not sent either), the new app reports `updated` after the switch as always.
This module is in the heap while the job runs, so it holds only the loop: its set-up is ota_own.py's, loaded for
each call (it held 2.8 KB of a 32 KB board's heap through the download when it was here).
"""

import sys
import time


def boot():
    """The job when ota.json asks for a boot of its own (main.py, before the app); else nothing."""
    del sys.modules["ota_run"]  # (main.py keeps no name for it: the module goes once this call is over)
    a = _own("start")  # the app and link of this boot (ota_own.Alone), its job in a.ota; None: no job to run
    while a is not None and a.ota is not None:
        a.b.feed()
        if a._ctx is None:  # no network yet (without a context the job's download fails: its retries decide)
            _own("connect", a)
        a.ota.tick()
        time.sleep_ms(5)


def _own(name, *args):
    """ota_own.`name`(*args), the module loaded for the call only."""
    try:
        return getattr(__import__("ota_own"), name)(*args)
    finally:
        if "ota_own" in sys.modules:
            del sys.modules["ota_own"]
