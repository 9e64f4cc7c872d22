"""What runs once per boot, before the app's loop: app.main() imports it, calls run() and unloads it,
so none of this code stays in the heap.

- the boot count and reason (the port's boot()), logged with the firmware version;
- config.json (config.py): none usable -> setup mode (setup.py), which never returns;
- the boot-loop counter (file `unreached`): a boot counts until the board reaches the broker (app.py then
  removes the file); after _SAFE_AFTER consecutive boots that never did, the board starts in safe mode;
- the running bundle's version (manifest.json, written by deploy/OTA), for `status`.
"""

import json
import os
import sys

from micropython import const

VERSION = "0.1.0"
_SAFE_AFTER = const(5)
_UNREACHED = "unreached"  # consecutive boots that never reached the broker
_MANIFEST = "manifest.json"  # {"version", "md5"} of the running app bundle


def run(b, log):
    """(cfg, boot, safe, fw) of this boot: the checked config, {"reason", "count"}, safe mode, the firmware."""
    reason, count = b.boot()
    log("app: boot %d (%s), firmware %s on %s" % (count, reason, VERSION, b.PLATFORM))
    cfg = _load_config(log)
    if cfg is None:
        import setup

        setup.run(b, log)
    b.set_board(cfg["board"])
    unreached = _count(log)
    safe = unreached > _SAFE_AFTER
    if safe:
        log("app: SAFE MODE: %d boots in a row never reached the broker" % (unreached - 1))
    return cfg, {"reason": reason, "count": count}, safe, _firmware()


def _load_config(log):
    """config.json checked (config.py), or None (logged) when there is none usable.

    config.py is needed again only to save: it leaves the heap until then.
    """
    import config

    try:
        return config.load()
    except config.ConfigError as e:
        log("app: no usable configuration (%s): setup mode" % e)
        return None
    finally:
        del sys.modules["config"]


def _count(log):
    """The number in file `unreached` plus one (missing: 1), written back."""
    try:
        with open(_UNREACHED) as f:
            n = int(f.read()) + 1
    except (OSError, ValueError):
        n = 1
    try:
        with open(_UNREACHED + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(_UNREACHED + ".tmp", _UNREACHED)
    except OSError as e:
        log("app: cannot write %s: %s" % (_UNREACHED, e))
    return n


def _firmware():
    try:
        with open(_MANIFEST) as f:
            m = json.load(f)
        return {"version": str(m.get("version", VERSION)), "md5": m.get("md5")}
    except (OSError, ValueError, AttributeError):
        return {"version": VERSION}
