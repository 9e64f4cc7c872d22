"""The board's app: the boot (start.py), then the main loop wiring the link, commands and telemetry.

main() runs at every boot (main.py) and never returns:
- start.py does the once-per-boot work (boot count, config or setup mode, the boot-loop counter and
  safe mode) and is unloaded before the link is made: code that ran once holds no heap;
- in safe mode: connectivity and OTA only, no user module, said in `status`;
- OTA (ota.py): the `ota` command starts a job the loop ticks like telemetry, between the link's turns; its state
  is in ota.json. A boot that follows an OTA (on trial, or ota.json there) starts with ota_boot.py (the trial's
  deadline for the link, the job's outcome judged), confirms the app once the broker answered (ota_confirm.py, from
  status(), before the status on its md5 goes out), then carries ota.json's job on or reports it (ota_end.py);
- commands are rare: each is parsed and run by commands.py, a built-in then by settings.py or admin.py (`ping`
  here), each module loaded for the command and unloaded before the next one loads; only their queue, the maker's
  custom handlers and the ack stay here. The queue holds _QUEUE commands, and `status` says so (cmd_queue): the
  backend keeps at most that many open at the board. One that comes while it is full anyway is acked `failed`
  ("busy: command queue full") by the loop;
- the loop feeds the watchdog, collects garbage at known points (after connecting, after commands,
  after samples) and survives whatever one of its steps raises;
- anything escaping (a bug) is printed, and the board resets after a pause, as a watchdog would.
"""

import gc
import json
import sys
import time

from micropython import const

_WDT_MS = const(30000)
_LOOP_MS = const(200)
_QUEUE = const(4)  # commands waiting to run; `status` says so (cmd_queue): the backend sends no more at once
# Commands that found the queue full anyway: the start of each (its id) queued behind, as a bytearray, for the loop
# to ack `failed` (commands.py); no ack can be sent from the `cmd` handler, which runs inside umqtt.simple's
# check_msg.
_BUSY = const(4)
_HEAD = const(64)  # bytes of such a command kept: {"id": "<22 characters>", first, as the backend sends it
_ERROR_MAX = const(200)  # characters of an error text

log = print


def main():
    import ports

    b = ports.board()  # the port's module stays; the package's own code is needed no more
    del ports
    _unload("ports")
    try:
        import start

        cfg, settings, boot, safe, fw, after_ota = start.run(b, log)
        del start
        _unload("start")
        until = image = None
        if after_ota:  # a boot after an OTA (start.py): ota_boot.py, before the app takes the heap
            fw, until, image = __import__("ota_boot").run(b, settings, fw)
            _unload("ota_boot")
        app = App(b, cfg, settings, boot, safe, fw)
        app.link.until = until  # on trial: the broker reached by then, or a reset (link.py)
        app.after_ota = image
        app.run()
    except Exception as e:
        sys.print_exception(e)
        log("app: crashed; reset in 5 s")
        time.sleep(5)
        b.reset()


def _unload(name):
    if name in sys.modules:  # (not when its import failed)
        del sys.modules[name]
    gc.collect()


class App:
    def __init__(self, b, cfg, settings, boot, safe, fw):
        from link import Link  # the largest first, and its TLS set up, while the heap is young

        self.link = Link(cfg, b, self.status, log)
        from telemetry import Telemetry

        self.b = b
        self.cfg = cfg
        self.boot = boot
        self.safe = safe
        self.fw = fw
        self._uptime_ms = 0
        self._last = time.ticks_ms()
        self._reached = False
        # The OTA job (ota.py) while one runs, and, in the boot after an OTA until the broker is reached (main(),
        # ota_boot.py), False or the fw.json of a running ESP32 image to be confirmed too (None on other boots).
        # Instance attributes: the 14th and 15th of an App fit its table (17 slots), a 13th class attribute grew the
        # class's (96 bytes).
        self.ota = None
        self.after_ota = None
        self.link.on_up = self._on_up
        # Commands (bytes) waiting for the loop, the starts (bytearray) of refused ones, and the desired
        # configuration's messages and steps (desired.py).
        self._queue = []
        self._custom = {}  # custom command name -> the maker's handler(payload)
        self.tele = Telemetry(self.link, self.sample, settings["period"], log)
        self.user = None
        if not safe:
            try:
                import user

                user.register(self, b)
                self.user = user
            except Exception as e:  # a broken user module must not take the link down
                log("app: user module failed: %s" % e)
        h = self._cmd  # (one handler for both: `config` messages share the queue, desired.py)
        self.link.subscribe("cmd", h)
        self.link.subscribe("config", h)
        gc.collect()

    def status(self):
        """The retained `status` (online.py publishes it once the broker answered CONNECT)."""
        if self.after_ota is not None:  # the boot after an OTA: the new app confirmed before its md5 goes out
            gc.collect()  # (a module loads into a collected heap: its pieces then fit where they can)
            __import__("ota_confirm").run(self, self.after_ota)
        _unload("ota_confirm")
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
            "cmd_queue": _QUEUE,
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
            except OSError:  # not logged here (a text costs 64 bytes of heap): start.py's write fails and says so
                pass
        if self.after_ota is not None:  # the boot after an OTA: its job carried on or reported (confirmed already)
            self.after_ota = None
            gc.collect()
            __import__("ota_end").report(self)
            _unload("ota_end")
        self.tele.flush()
        gc.collect()
        log("app: free heap %d after connect" % gc.mem_free())

    # --- commands

    def custom(self, name, handler):
        """Handle `custom` commands whose payload["cmd"] is `name`: handler(payload) -> result (user.py)."""
        self._custom[name] = handler

    def _cmd(self, msg):
        """The link's handler for `cmd` and `config`: the message kept for the loop, or, the queue full, its start
        for a `failed` ack (both bounded)."""
        q = self._queue
        n = len(q)
        if n < _QUEUE:
            q.append(bytes(msg))
        elif n < _QUEUE + _BUSY:
            q.append(bytearray(msg[:_HEAD]))
        else:
            log("cmd: queue full, dropped a command")

    def ack(self, cmd_id, state, result=None, error=None):
        """Publish the ack of command `cmd_id`: `state`, its `result` or its `error` (a text or an exception)."""
        body = {"id": cmd_id, "state": state}
        if result is not None:
            body["result"] = result
        if isinstance(error, Exception):
            text = " ".join(str(error).split())
            error = "%s: %s" % (type(error).__name__, text) if text else type(error).__name__
        if error is not None:
            error = body["error"] = error[:_ERROR_MAX]
        data = json.dumps(body)  # TypeError or ValueError: a result that is no JSON value (commands.py)
        log("cmd: %s %s%s" % (cmd_id, state, (": " + error) if error else ""))
        return self.link.publish("ack", data)

    def _commands(self):
        """Run the queued commands (or ack the refused ones): commands.py for each, then a built-in's module with
        commands.py unloaded."""
        while self._queue:
            try:
                gc.collect()  # its pieces (up to 344 bytes) into a clean heap: a message that came left garbage behind
                import commands  # first: a MemoryError here leaves the command queued for the next round

                todo = commands.run(self, self._queue.pop(0))
            finally:
                commands = None
                _unload("commands")
            if todo:
                self._builtin(*todo)

    def _builtin(self, cmd_id, kind, payload):
        """A built-in command: function `kind` of settings.py, ota.py or admin.py, the module loaded for this command
        only (the OTA job keeps what it needs of ota.py while it runs); or a step of a desired configuration, function
        `kind` of desired.py or desired_w.py (cmd_id None: it acks nothing)."""
        if kind == "ping":  # the health check: answered without loading anything, even on a full heap
            self.ack(cmd_id, "done", result={"uptime": self._uptime_ms // 1000})
            return
        # (desired, desired_w: a configuration's steps; a tuple of the names would be heap for good)
        name = "settings" if kind == "set_telemetry_period" else kind if kind == "ota" or kind[0] == "d" else "admin"
        error = result = None
        try:
            result = getattr(__import__(name), kind)(self, cmd_id, payload)
        except Exception as e:
            error = e
        _unload(name)  # (ota.py too: the job it started keeps what it needs, ota_job.py)
        if error is not None:
            self.ack(cmd_id, "failed", error=error)
        elif result is not self:  # (self: the OTA job acks once it is over)
            self.ack(cmd_id, "done", result=result)

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
                if self._queue:
                    self._commands()
                    gc.collect()
                self.tele.tick()
                if self.ota is not None:
                    self.ota.tick()
                self.link.wait(_LOOP_MS if self.ota is None else self.ota.pace)
            except MemoryError as e:
                q = self._queue
                if q and type(q[-1]) is bytearray:  # no room to answer a refused command: let it go (it expires)
                    q.pop()
                gc.collect()
                log("app: loop: %s: %s" % (type(e).__name__, e))  # (one text for both: each costs 64 bytes)
            except Exception as e:  # the loop never dies
                log("app: loop: %s: %s" % (type(e).__name__, e))
                time.sleep_ms(_LOOP_MS)
