"""The built-in command `ota` (app.py loads this module for it; it stays while the job runs, ota_job.done() unloads
it): the command checked and its job started, or, in a boot that finds ota.json (ota_boot.py, cmd_id None), that job
carried on or its outcome reported. Small, so that a board short of heap still gets as far as ota_new.py's choice of
where the job runs (beside the app, or in a boot of its own: ota_run.py).

    ota(app, cmd_id, payload) -> app    (app: the job acks by itself once it is over; a ValueError for a command it
                                        refuses, which app.py acks `failed`)
"""

import gc
import sys


def ota(app, cmd_id, payload):
    st = None
    try:
        if cmd_id is not None:
            if app.ota is not None:
                raise ValueError("an OTA is already in progress")
            import ota_new  # (resets into a boot of its own when the heap has no room for the job)

            try:
                st = ota_new.check(app, cmd_id, payload)
            finally:
                del sys.modules["ota_new"]
                gc.collect()
        import ota_job

        ota_job.begin(app, st)
    except Exception:
        if app.ota is None:
            for name in ("ota", "ota_job"):
                if name in sys.modules:
                    del sys.modules[name]
        raise
    return app
