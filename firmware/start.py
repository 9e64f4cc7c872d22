"""What runs once per boot, before the app's loop: app.main() imports it, calls run() and unloads it,
so none of this code stays in the heap.

- the firmware's lib/ put before the image's frozen modules on sys.path;
- the boot count and reason (the port's boot()), logged with the firmware version;
- after a wifi_reset command, the Wi-Fi section taken out of config.json;
- config.json (config.py): none usable -> setup mode (setup.py), which never returns;
- settings.json (settings.py): what commands change, e.g. the telemetry period;
- the boot-loop counter (file `unreached`): a boot counts until the board reaches the broker (app.py then
  removes the file); after _SAFE_AFTER consecutive boots that never did, the board starts in safe mode;
- the running app's version and md5 for `status`: fw.json of its directory (chooser.py put it first on sys.path),
  {"version", "md5"} of what an OTA installed (ota_boot.py puts the running ESP32 slot's in its place while an
  OTA of the image is not over);
- whether an OTA left its files (app.trial: on trial; ota.json: a job): ota_boot.py then starts the boot.
"""

import json
import os
import sys

from micropython import const

VERSION = "0.1.0"
_SAFE_AFTER = const(5)
_UNREACHED = "unreached"  # consecutive boots that never reached the broker
_FW = "fw.json"  # {"version", "md5"} of the bundle in an app directory
_FORGET_WIFI = "forget_wifi"  # left by the wifi_reset command (admin.py)


def run(b, log):
    """(cfg, settings, boot, safe, fw, after_ota) of this boot: the checked config, the settings commands change
    (settings.py), {"reason", "count"}, safe mode, the firmware, and whether an OTA left its files (app.trial: the
    app is on trial, chooser.py; ota.json: a job): ota_boot.py then starts the boot."""
    _lib_first()
    reason, count = b.boot()
    log("app: boot %d (%s), firmware %s on %s" % (count, reason, VERSION, b.PLATFORM))
    _forget_wifi(log)
    cfg = _load_config(log)
    if cfg is None:
        import setup

        setup.run(b, log)
    b.set_pins(cfg.get("pins"))
    after_ota = False
    for name in ("app.trial", "ota.json"):  # (no function for it: its name would stay interned)
        try:
            os.stat(name)
            after_ota = True
        except OSError:
            pass
    import settings

    s = settings.load()
    del sys.modules["settings"]
    log("app: telemetry every %d s" % s["period"])
    unreached = _count(log)
    safe = unreached > _SAFE_AFTER
    if safe:
        log("app: SAFE MODE: %d boots in a row never reached the broker" % (unreached - 1))
    return cfg, s, {"reason": reason, "count": count}, safe, _firmware(), after_ota


def _lib_first():
    """The firmware's own lib/ (umqtt.simple as built and tested) before the modules frozen into the MicroPython
    image, before anything is imported from either: a board's sys.path is ['', '.frozen', '/lib'], and the standard
    ESP32/ESP8266 images freeze another umqtt.simple. Swapped in place (no new list in the heap)."""
    p = sys.path
    if ".frozen" in p and p[-1].endswith("lib"):
        i = p.index(".frozen")
        p[i], p[-1] = p[-1], p[i]


def _forget_wifi(log):
    """After a wifi_reset command (admin.py left file `forget_wifi`): the Wi-Fi section leaves config.json, then
    the file goes. Done here, at boot, where the heap has room to parse config.json (the CA's PEM included)."""
    try:
        os.stat(_FORGET_WIFI)
    except OSError:
        return
    try:
        with open("config.json") as f:
            cfg = json.load(f)
        if cfg.pop("wifi", None) is not None:
            with open("config.json.tmp", "w") as f:
                json.dump(cfg, f)
            os.rename("config.json.tmp", "config.json")
    except (OSError, ValueError, AttributeError) as e:  # none, or not a JSON object: setup mode follows anyway
        log("app: cannot edit config.json: %s" % e)
    os.remove(_FORGET_WIFI)
    log("app: wifi forgotten")


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
    d = sys.path[0]  # the app directory (chooser.py), "" for the top of the flash
    try:
        with open(d + "/" + _FW if d else _FW) as f:
            m = json.load(f)
        return {"version": str(m.get("version", VERSION)), "md5": m.get("md5")}
    except (OSError, ValueError, AttributeError):
        return {"version": VERSION}
