"""An OTA download in a boot of its own, before the app: for a board whose heap cannot hold the job beside the app
and its MQTT session (ota_new.py decides by the free heap when the command comes, marks ota.json `boot` and resets).

    boot()        chooser.py, at a boot that finds ota.json, before the app: when the job asks for this, the board and
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
    """What the job and wifi.py/tlsctx.py use of the link (link.py), without a session."""

    up = False

    def __init__(self, b, cfg):
        self._board = b
        self._cfg = {"wifi": cfg["wifi"], "mqtt": {"ca": cfg["mqtt"]["ca"]}}  # tlsctx drops the CA from its copy
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
    """The job when ota.json asks for a boot of its own (chooser.py, before the app); else nothing."""
    import ota_boot

    st = ota_boot.load()
    del sys.modules["ota_boot"]
    if st is None or not st.get("boot") or st["state"] not in ("new", "downloading"):
        return
    import config
    import ports

    try:
        cfg = config.load()
    except config.ConfigError as e:
        print("ota: %s" % e)
        return
    finally:
        del sys.modules["config"]
    b = ports.board()
    del sys.modules["ports"]
    run(b, cfg, st)


def run(b, cfg, st):
    print("ota: the download runs in this boot, before the app")
    link = _Link(b, cfg)
    _connect(link)  # first, while the heap is young: the TLS context is one block of ~3 KB
    app = _App(b, link)
    if st["state"] == "new":  # the command as it came (ota.py): checked now
        import ota_new

        try:
            st = ota_new.check(app, st["id"], st["cmd"], True)
        except ValueError as e:  # refused: reported by the app once it reached the broker (ota_end.outcome)
            import chooser

            chooser.write("ota.json", json.dumps({"id": st["id"], "state": "failed", "error": str(e)}))
            return
        finally:
            del sys.modules["ota_new"]
    import ota_job as ota

    ota.begin(app, st)
    while app.ota is not None:
        b.feed()
        if link._ctx is None:
            _connect(link)
        app.ota.tick()  # (without a context its download fails: the job's retries decide)
        time.sleep_ms(5)


def _connect(link):
    """Wi-Fi joined and the TLS context made (wifi.py, tlsctx.py, as the link does)."""
    try:
        for name in ("wifi", "tlsctx"):
            __import__(name).run(link)
            del sys.modules[name]
    except Exception as e:
        print("ota: %s" % e)
