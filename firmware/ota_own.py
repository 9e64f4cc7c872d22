"""The set-up of an OTA download in a boot of its own (ota_run.py loads this module for each call and unloads it
again, so none of its code is in the heap while the job runs):

    start() -> the boot's Alone, its job begun (a.ota), or None when ota.json asks for no such boot, or config.json
               cannot be used, or the command is refused (ota.json then says why: the app reports it once it reached
               the broker, ota_boot.py)
    connect(a)  Wi-Fi joined and the TLS context made (wifi.py, tlsctx.py, as the link does: the download server
                is verified as the broker is); failures printed, the job's retries decide

Each step loads what it needs itself, and what it hands on is only what the job keeps: a value passed down as an
argument stays in the heap (the caller's frame holds it) until the call returns.
"""

import json
import sys


class Alone:
    """What the job (ota_job.py and its phases) uses of the app (app.py) and of its link (link.py), and wifi.py and
    tlsctx.py of the link, in a boot without a session: `up` False, so nothing is published or acked. Data only, no
    method: its class holds none of this module's code."""

    up = False
    ota = None


def start():
    st = _job()
    if st is None:
        return None
    a = _alone()
    if a is None:
        return None
    print("ota: the download runs in this boot, before the app")
    connect(a)  # first, while the heap is young: the TLS context is one block of ~3 KB
    if st["state"] == "new":  # the command as it came (ota.py): checked now
        st = _check(a, st)
        if st is None:
            return None
    import ota_job

    ota_job.begin(a, st)
    return a


def _job():
    """ota.json's job when it asks for a boot of its own and is not over, else None."""
    import ota_boot

    st = ota_boot.job()
    del sys.modules["ota_boot"]
    if st is None or not st.get("boot") or st["state"] not in ("new", "downloading"):
        return None
    return st


def _alone():
    """An Alone with the board and config.json's Wi-Fi and CA (nothing else of config.json stays in the heap; tlsctx.py
    drops the CA once the context holds it), or None when config.json cannot be used."""
    import config
    import ports

    try:
        cfg = config.load()
    except config.ConfigError as e:
        print("ota: %s" % e)
        return None
    finally:
        del sys.modules["config"]
    a = Alone()
    a.b = a._board = ports.board()
    del sys.modules["ports"]
    a.link = a
    a._cfg = {"wifi": cfg["wifi"], "mqtt": {"ca": cfg["mqtt"]["ca"]}}
    a._log = print
    a.verified = bool(a.b.TLS_VERIFIES)
    a._ctx = None
    return a


def _check(a, st):
    """The job's state for the command in ota.json, or None when it is refused (ota.json then says why)."""
    import ota_new

    try:
        return ota_new.check(a, st["id"], st["cmd"], True)
    except ValueError as e:
        import chooser

        chooser.write("ota.json", json.dumps({"id": st["id"], "state": "failed", "error": str(e)}))
        del sys.modules["chooser"]
        return None
    finally:
        del sys.modules["ota_new"]


def connect(a):
    try:
        for name in ("wifi", "tlsctx"):
            __import__(name).run(a)
            del sys.modules[name]
    except Exception as e:
        print("ota: %s" % e)
