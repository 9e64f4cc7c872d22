"""The board's app: configuration, then the main loop wiring the link, commands and telemetry.

main() runs at every boot (main.py) and never returns:
- no usable config.json -> setup mode (setup.py), never a crash loop;
- a boot-loop counter (file `unreached`): a boot counts until the board reaches the broker; after
  _SAFE_AFTER consecutive boots that never did, the board starts in safe mode: connectivity (and
  OTA, once there is one) only, no user module, said in `status`;
- the loop feeds the watchdog, collects garbage at known points (after connecting, after commands,
  after samples) and survives whatever one of its steps raises;
- anything escaping (a bug) is printed, and the board resets after a pause, as a watchdog would.
"""

import gc
import json
import os
import sys
import time

from micropython import const
from ports import board

VERSION = "0.1.0"
_SAFE_AFTER = const(5)
_UNREACHED = "unreached"  # consecutive boots that never reached the broker
_MANIFEST = "manifest.json"  # {"version", "md5"} of the running app bundle, written by deploy/OTA
_WDT_MS = const(30000)
_LOOP_MS = const(200)
_PERIOD_MIN = const(5)
_PERIOD_MAX = const(86400)


def log(text):
    print(text)


def main():
    b = board()
    try:
        reason, count = b.boot()
        log("app: boot %d (%s), firmware %s on %s" % (count, reason, VERSION, b.PLATFORM))
        cfg = _load_config()
        if cfg is None:
            import setup

            setup.run(b, log)
        b.set_board(cfg["board"])
        unreached = _count(_UNREACHED, 1)
        safe = unreached > _SAFE_AFTER
        if safe:
            log("app: SAFE MODE: %d boots in a row never reached the broker" % (unreached - 1))
        App(b, cfg, {"reason": reason, "count": count}, safe).run()
    except Exception as e:
        sys.print_exception(e)
        log("app: crashed; reset in 5 s")
        time.sleep(5)
        b.reset()


def _load_config():
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
        _unload("config")


def _unload(name):
    del sys.modules[name]
    gc.collect()


def _count(name, add):
    """The number in file `name` plus `add` (0 when missing), written back; `add` None writes 0."""
    n = 0
    if add is not None:
        try:
            with open(name) as f:
                n = int(f.read()) + add
        except (OSError, ValueError):
            n = add
    try:
        with open(name + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(name + ".tmp", name)
    except OSError as e:
        log("app: cannot write %s: %s" % (name, e))
    return n


def _firmware():
    try:
        with open(_MANIFEST) as f:
            m = json.load(f)
        return {"version": str(m.get("version", VERSION)), "md5": m.get("md5")}
    except (OSError, ValueError, AttributeError):
        return {"version": VERSION}


class App:
    def __init__(self, b, cfg, boot, safe):
        from link import Link  # the largest first, and its TLS set up, while the heap is young

        self.link = Link(cfg, b, self.status, log)
        from commands import Commands
        from telemetry import Telemetry

        self.b = b
        self.cfg = cfg
        self.boot = boot
        self.safe = safe
        self.fw = _firmware()
        self._uptime_ms = 0
        self._last = time.ticks_ms()
        self._reached = False
        self.link.on_up = self._on_up
        self.cmds = Commands(self.link, log)
        self.tele = Telemetry(self.link, self.sample, cfg["telemetry"]["period"], log)
        for kind, handler in (
            ("reboot", self._reboot),
            ("wifi_reset", self._wifi_reset),
            ("ping", self._ping),
            ("set_telemetry_period", self._set_period),
            ("ota", self._ota),
        ):
            self.cmds.register(kind, handler)
        self.user = None
        if not safe:
            try:
                import user

                user.register(self.cmds, b)
                self.user = user
            except Exception as e:  # a broken user module must not take the link down
                log("app: user module failed: %s" % e)
        self.link.subscribe("cmd", self.cmds.queue)
        gc.collect()

    def uptime(self):
        return self._uptime_ms // 1000

    def status(self):
        gc.collect()
        b = self.b
        return {
            "online": True,
            "fw": self.fw,
            "ip": b.ip(),
            "rssi": b.rssi(),
            "platform": b.PLATFORM,
            "board": self.cfg["board"],
            "boot": self.boot,
            "free_mem": gc.mem_free(),
            "tls_verified": self.link.verified,
            "safe_mode": self.safe,
        }

    def sample(self):
        values = {}
        if self.user is not None:
            values.update(self.user.telemetry())
        values.update(self.b.sensors())
        values["uptime"] = self.uptime()
        values["free_mem"] = gc.mem_free()
        rssi = self.b.rssi()
        if rssi is not None:
            values["rssi"] = rssi
        return values

    def _on_up(self):
        if not self._reached:
            self._reached = True
            _count(_UNREACHED, None)
        self.tele.flush()
        gc.collect()
        log("app: free heap %d after connect" % gc.mem_free())

    # --- built-in commands: handler(cmd_id, payload) -> result

    def _reboot(self, cmd_id, payload):
        self.cmds.ack(cmd_id, "accepted")
        self.cmds.ack(cmd_id, "done")
        log("app: reboot by command")
        self.b.reset()

    def _wifi_reset(self, cmd_id, payload):
        self.cmds.ack(cmd_id, "accepted")
        _forget_wifi()
        self.b.wifi_forget()
        self.cmds.ack(cmd_id, "done")
        log("app: wifi forgotten; reboot into setup")
        self.b.reset()

    def _ping(self, cmd_id, payload):
        return {"uptime": self.uptime()}

    def _set_period(self, cmd_id, payload):
        period = payload.get("period")
        if not isinstance(period, int) or isinstance(period, bool) or not _PERIOD_MIN <= period <= _PERIOD_MAX:
            raise ValueError("period must be a whole number of seconds from %d to %d" % (_PERIOD_MIN, _PERIOD_MAX))
        import config  # the file as it is, CA included (the link dropped it from self.cfg)

        try:
            cfg = config.load()
            cfg["telemetry"]["period"] = period
            config.save(cfg)
        finally:
            _unload("config")
        self.cfg["telemetry"]["period"] = period
        self.tele.set_period(period)
        return {"period": period}

    def _ota(self, cmd_id, payload):
        raise ValueError("OTA is not supported by this firmware yet")

    # --- the loop

    def run(self):
        b = self.b
        b.watchdog(_WDT_MS)
        while True:
            try:
                b.feed()
                now = time.ticks_ms()
                self._uptime_ms += time.ticks_diff(now, self._last)
                self._last = now
                self.link.step()
                if self.cmds.pending():
                    self.cmds.run()
                    gc.collect()
                self.tele.tick()
                self.link.wait(_LOOP_MS)
            except MemoryError as e:
                gc.collect()
                log("app: loop: %r" % e)
            except Exception as e:  # the loop never dies
                log("app: loop: %s: %s" % (type(e).__name__, e))
                time.sleep_ms(_LOOP_MS)


def _forget_wifi(path="config.json"):
    """Remove the Wi-Fi section of config.json (atomically); the next boot goes to setup mode."""
    with open(path) as f:
        cfg = json.load(f)
    cfg.pop("wifi", None)
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f)
    os.rename(path + ".tmp", path)
