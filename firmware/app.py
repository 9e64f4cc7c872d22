"""The board's app: the boot (start.py), then the main loop wiring the link, commands and telemetry.

main() runs at every boot (main.py) and never returns:
- start.py does the once-per-boot work (boot count, config or setup mode, the boot-loop counter and
  safe mode) and is unloaded before the link is made: code that ran once holds no heap;
- in safe mode: connectivity (and OTA, once there is one) only, no user module, said in `status`;
- the built-in commands live in admin.py, loaded for one command and unloaded after: they are rare;
- the loop feeds the watchdog, collects garbage at known points (after connecting, after commands,
  after samples) and survives whatever one of its steps raises;
- anything escaping (a bug) is printed, and the board resets after a pause, as a watchdog would.
"""

import gc
import sys
import time

from micropython import const
from ports import board

_WDT_MS = const(30000)
_LOOP_MS = const(200)
# The built-in command types, handled by admin.py; they answer as `custom` commands by name too.
_BUILTIN = ("reboot", "wifi_reset", "ping", "set_telemetry_period", "ota")

log = print


def main():
    b = board()
    try:
        import start

        cfg, boot, safe, fw = start.run(b, log)
        del start
        _unload("start")
        App(b, cfg, boot, safe, fw).run()
    except Exception as e:
        sys.print_exception(e)
        log("app: crashed; reset in 5 s")
        time.sleep(5)
        b.reset()


def _unload(name):
    del sys.modules[name]
    gc.collect()


class App:
    def __init__(self, b, cfg, boot, safe, fw):
        from link import Link  # the largest first, and its TLS set up, while the heap is young

        self.link = Link(cfg, b, self.status, log)
        from commands import Commands
        from telemetry import Telemetry

        self.b = b
        self.cfg = cfg
        self.boot = boot
        self.safe = safe
        self.fw = fw
        self._uptime_ms = 0
        self._last = time.ticks_ms()
        self._reached = False
        self.link.on_up = self._on_up
        self.cmds = Commands(self.link, _BUILTIN, self._builtin, log)
        self.tele = Telemetry(self.link, self.sample, cfg["telemetry"]["period"], log)
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
        values["uptime"] = self._uptime_ms // 1000
        values["free_mem"] = gc.mem_free()
        rssi = self.b.rssi()
        if rssi is not None:
            values["rssi"] = rssi
        return values

    def _on_up(self):
        if not self._reached:
            self._reached = True
            try:  # the boot-loop counter (start.py) starts again; a torn write counts as 0 there too
                with open("unreached", "w") as f:
                    f.write("0")
            except OSError as e:
                log("app: cannot write unreached: %s" % e)
        self.tele.flush()
        gc.collect()
        log("app: free heap %d after connect" % gc.mem_free())

    def _builtin(self, cmd_id, kind, payload):
        """A built-in command: admin.py's function `kind`, its module loaded for this command only."""
        if kind == "ping":  # the health check: answered without loading anything, even on a full heap
            return {"uptime": self._uptime_ms // 1000}
        gc.collect()  # the command's garbage gone first: the module's code wants pieces of ~300 bytes
        import admin

        try:
            return getattr(admin, kind)(self, cmd_id, payload)
        finally:
            del admin
            _unload("admin")

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
                if self.cmds.run():
                    gc.collect()
                self.tele.tick()
                self.link.wait(_LOOP_MS)
            except MemoryError as e:
                gc.collect()
                log("app: loop: %r" % e)
            except Exception as e:  # the loop never dies
                log("app: loop: %s: %s" % (type(e).__name__, e))
                time.sleep_ms(_LOOP_MS)
