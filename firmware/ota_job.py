"""The OTA job's core: the `ota` command's download, verification and switch, ticked from the main loop like telemetry
(app.py), its state in ota.json so that a boot carries it on. ota.py (the built-in) starts it. Its code comes in
phases, one module each, loaded for its phase and unloaded after it, so that the heap holds only this core, the
phase's module and the HTTPS client:

    bundle:     ota_head (the bundle's head and manifest, the plan), ota_files (copy or download each file),
                ota_verify (read back: md5, sha256, size), ota_switch
    esp32-app:  ota_image (the image into the next OTA partition, read back), ota_switch

    begin(app, st)              app.ota = Job(app, st): ota.py for a command, ota_end.py / ota_own.py after a boot
    job.tick()                  in the main loop: _TICK_MS of the phase's work (its step(job, deadline) -> True when
                                the phase is done)

A board without room for the job beside the app (ota_new.py) runs it in a boot of its own (ota_run.py).

Errors: an OSError (network, TLS, a timeout, a dropped connection) or a MemoryError of a step is retried where the
download got to, after a backoff of 1 s doubling to 30 s, _TRIES times in a row without a byte of progress; any other
error (a verification, an answer that does not fit, HTTP 403/404) fails the job at once (ota_fail.py: `ota` `failed`
and the ack with the reason, the staging removed).

ota.json: the command's url, md5, sha256, size, version, kind, and id, state ("downloading", "verified",
"applying", "failed"), error, from (the running app directory, "" for the top of the flash), dir (the staging
directory) and, for an image, offset.
"""

import gc
import json
import os
import sys
import time

from micropython import const

_FILE = const("ota.json")
_TRIES = const(6)
_BACKOFF_MS = const(1000)
_BACKOFF_MAX_MS = const(30000)
_TICK_MS = const(50)
# Heap kept in one piece for each connection of the download: the TLS socket is one block of ~520 bytes (unix port,
# 64-bit), and after the phases' modules and the manifest's lines a 32 KB board had 5 KB free but no free run longer
# than 256 bytes (micropython.mem_info(1)): every connect failed. Freed for the connect, taken again at its close.
_CONNECT_ROOM = const(768)
_BUNDLE = ("ota_head", "ota_files", "ota_verify", "ota_switch")
_IMAGE = ("ota_image", "ota_switch")


def begin(app, st):
    """The job of state `st` (a new one from ota_new.py, or ota.json's after a boot) started: app.ota. The HTTPS
    client is loaded first and stays until the job is over: loaded again for each phase it took a new piece of a heap
    the phases' modules had cut up (a 32 KB board then found no 520 bytes in one piece to connect)."""
    __import__("httpget")
    app.ota = Job(app, st)


def done(app):
    """The job is over (or none runs): its modules leave the heap."""
    app.ota = None  # (not `del`: MicroPython keeps a deleted attribute's value in its slot)
    for name in _BUNDLE + _IMAGE + ("ota", "ota_job", "ota_end", "ota_fail", "httpget", "ota_partition", "chooser",
                                    "settings", "ports"):
        _unload(name)
    gc.collect()


def _unload(name):
    if name in sys.modules:
        del sys.modules[name]


def save(st):
    import chooser  # its write(): the one atomic write (FAT included); not kept in the heap between saves

    chooser.write(_FILE, json.dumps(st))
    del sys.modules["chooser"]


def report(app, st, state, progress=None, error=None):
    """Publish `state` of job `st` on the `ota` topic; False when the link could not."""
    body = {"id": st["id"], "state": state}
    if progress is not None:
        body["progress"] = progress
    if error is not None:
        body["error"] = error
    gc.collect()
    detail = progress if error is None else error
    print("ota: %s%s (free heap %d)" % (state, "" if detail is None else " %s" % detail, gc.mem_free()))
    link = app.link
    return link.up and link.publish("ota", json.dumps(body))  # (a boot of its own has no session)


def entry(line):
    """(sha256 hex as bytes, size, path) of a line of a bundle's manifest. Raises ValueError for one that is not."""
    parts = line.split()
    if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit() or parts[2][:1] == b"/" or b".." in parts[2]:
        raise ValueError("bad manifest line %r" % line[:80])
    return parts[0], int(parts[1]), parts[2].decode()


class Job:
    pace = 10  # ms: the link's turn in the main loop while a job runs (app.py)

    def __init__(self, app, st):
        self.app = app
        self.st = st
        bundle = st["kind"] == "bundle"
        self.phases = _BUNDLE if bundle else _IMAGE
        self.phase = 0
        self.buf = memoryview(bytearray(1024 if bundle else 4096))  # the one block buffer
        self.room = bytearray(_CONNECT_ROOM)
        self.get = None  # the open download (httpget.Get): open(), pause()
        self.mf = None  # bundle.head, open at a manifest line (ota_head, ota_files, ota_verify)
        self._m = None  # the phase's module
        self._tries = 0
        self._next = time.ticks_ms()
        self._done = -1  # the most bytes staged so far: progress resets the tries
        self._decile = -1

    def tick(self):
        if time.ticks_diff(self._next, time.ticks_ms()) > 0:
            return
        try:
            m = self._m
            if m is None:
                gc.collect()
                m = self._m = __import__(self.phases[self.phase])
            if m.step(self, time.ticks_add(time.ticks_ms(), _TICK_MS)):
                self._m = None
                for name in (self.phases[self.phase], "ports"):  # (the next phase imports what it needs)
                    _unload(name)
                self.phase += 1
        except (OSError, MemoryError) as e:
            self.pause()
            self._tries += 1
            if self._tries >= _TRIES:
                self.fail("download failed %d times in a row: %s" % (self._tries, e))
                return
            delay = min(_BACKOFF_MAX_MS, _BACKOFF_MS << (self._tries - 1))
            print("ota: attempt %d failed (%r); again in %d ms" % (self._tries, e, delay))
            self._next = time.ticks_add(time.ticks_ms(), delay)
        except Exception as e:
            self.fail(e)

    def save(self):
        save(self.st)

    def open(self, first, last):
        """The download of bytes first..last (last None: to the end) as job.get, connected in the room kept for it."""
        from httpget import Get

        self.room = None
        gc.collect()
        st = self.st
        self.get = Get(self.app.link._ctx, st["url"], first, last, st["size"])
        return self.get

    def pause(self):
        if self.get is not None:
            self.get.close()
            self.get = None
        if self.room is None:
            gc.collect()
            try:
                self.room = bytearray(_CONNECT_ROOM)
            except MemoryError:  # (the next connect tries without it)
                pass

    def moved(self, n):
        """The phase staged the image's first `n` bytes: progress every 10 %."""
        if n > self._done:
            self._done = n
            self._tries = 0
        decile = n * 10 // self.st["size"]
        if decile > self._decile:
            self._decile = decile
            report(self.app, self.st, "downloading", progress=min(100, decile * 10))

    def fail(self, e):
        self.pause()
        self._m = None
        for name in self.phases:
            _unload(name)
        gc.collect()
        import ota_fail

        ota_fail.fail(self, e)
        done(self.app)
