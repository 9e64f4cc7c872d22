"""An OTA download in a boot of its own, before the app: for a board whose heap cannot hold the job beside the app
and its MQTT session (ota.py decides by the free heap when the command comes, marks ota.json `boot` and resets).

    boot()        main.py, at a boot whose ota.json asks for it (chooser.py), before the app: the board and
                  config.json loaded, Wi-Fi joined (wifi.py), a TLS context made with the broker's CA (tlsctx.py:
                  the download server is verified as the broker is),
                  and the job ticked (ota.Job, the same phases) until it ends: verified, it switches and resets into
                  the new app (ota_switch.py); failed, ota.json keeps the failure and the boot goes on into the app,
                  which reports it once it reached the broker (ota_end.outcome). Reboots in between resume it.

The session is dropped on purpose for it: no `ota` progress goes out while it runs (the link is not up; the
`verified`/`applying` reports are not sent either), the new app reports `updated` after the switch as always.
"""

import json
import sys
import time


class _Link:
    """What the job and wifi.py/tlsctx.py use of the link (link.py), without a session: config.json's Wi-Fi and CA
    only (tlsctx.py drops the CA once the context holds it)."""

    up = False

    def __init__(self, b, wifi, ca):
        self._board = b
        self._cfg = {"wifi": wifi, "mqtt": {"ca": ca}}
        self._log = print
        self.verified = bool(b.TLS_VERIFIES)
        self._ctx = None

    def publish(self, name, data, retain=False):
        return False


class _App:
    """What the job uses of the app (app.py)."""

    ota = None
    fw = {}

    def __init__(self, b, link):
        self.b = b
        self.link = link

    def ack(self, *args):
        return False


def boot():
    """The job when ota.json asks for a boot of its own (main.py, before the app); else nothing."""
    del sys.modules["ota_run"]  # (main.py keeps no name for it: the module goes once this call is over)
    _run()


# Each step below loads what it needs itself, and what it hands on is only what the job keeps: a value passed down
# as an argument stays in the heap (the caller's frame holds it) until the call returns, the whole job long here.


def _run():
    st = _job()
    if st is None:
        return
    link = _link()
    if link is None:
        return
    print("ota: the download runs in this boot, before the app")
    _connect(link)  # first, while the heap is young: the TLS context is one block of ~3 KB
    app = _App(link._board, link)
    if st["state"] == "new":  # the command as it came (ota.py): checked now
        st = _check(app, st)
        if st is None:
            return
    import ota_job as ota

    ota.begin(app, st)
    st = None
    b = link._board
    while app.ota is not None:
        b.feed()
        if link._ctx is None:
            _connect(link)
        app.ota.tick()  # (without a context its download fails: the job's retries decide)
        time.sleep_ms(5)


def _job():
    """ota.json's job when it asks for a boot of its own and is not over, else None."""
    import chooser

    st = chooser.job()
    del sys.modules["chooser"]
    if st is None or not st.get("boot") or st["state"] not in ("new", "downloading"):
        return None
    return st


def _link():
    """The board and a _Link of config.json's Wi-Fi and CA (nothing else of config.json stays in the heap), or None
    when config.json cannot be used."""
    import config
    import ports

    try:
        cfg = config.load()
    except config.ConfigError as e:
        print("ota: %s" % e)
        return None
    finally:
        del sys.modules["config"]
    b = ports.board()
    del sys.modules["ports"]
    return _Link(b, cfg["wifi"], cfg["mqtt"]["ca"])


def _check(app, st):
    """The job's state for the command in ota.json, or None when it is refused (ota.json then says why, and the app
    reports it once it reached the broker: ota_end.outcome). A function of its own: the modules it loads leave the
    heap with its frame."""
    import ota_new

    try:
        return ota_new.check(app, st["id"], st["cmd"], True)
    except ValueError as e:
        import chooser

        chooser.write("ota.json", json.dumps({"id": st["id"], "state": "failed", "error": str(e)}))
        del sys.modules["chooser"]
        return None
    finally:
        del sys.modules["ota_new"]


def _connect(link):
    """Wi-Fi joined and the TLS context made (wifi.py, tlsctx.py, as the link does)."""
    try:
        for name in ("wifi", "tlsctx"):
            __import__(name).run(link)
            del sys.modules[name]
    except Exception as e:
        print("ota: %s" % e)
