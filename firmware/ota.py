"""The OTA job: the `ota` command's download, verification and switch, ticked from the main loop like telemetry
(app.py), its state in ota.json so that a boot carries it on. Loaded for the `ota` command (app.py) and kept by the job while it runs (done() unloads it).

    ota.ota(app, cmd_id, payload)           # app.py's built-in: app.ota = start(...)
    job = ota.start(app, cmd_id, payload)   # a new job (the command, acked `accepted` already), or with cmd_id None
                                            # the one ota.json holds after a boot: a download resumes (a Job), an
                                            # apply is judged and reported (None: nothing left to run)
    job.tick()                              # in the main loop: a slice of work (_TICK_MS), then back to the loop

The command's payload (docs/protocol.md): url (https), md5, sha256 (hex), size, version, kind ("bundle": an app
bundle staged into the other app directory, ota_bundle.py; "esp32-app": an ESP32 image written to the next OTA
partition, ota_image.py). The method's step() does the work and says when the image is staged and verified (read
back from flash: size, md5, sha256); then the switch: `verified`, `applying`, app.trial and the method's switch,
reset. The new app reports `updated` and acks `done` {"version", "md5"} once it reached the broker (start() after
its boot finds ota.json `applying` and its own md5 the job's); an old app that finds it on another md5 was rolled
back: `rolled_back` and the ack `failed`.

Errors: an OSError of a step (network, TLS, a timeout, a dropped connection) is retried from where the download
got to, after a backoff (1 s doubling to 30 s), _TRIES times in a row without a byte of progress; anything else
(a verification, a bad answer, HTTP 403/404, no room) fails the job at once. A failed job is reported (`ota`
`failed` and the ack, with the reason) and its staging removed; when the link is down then, ota.json keeps the
failure for the next connect.

ota.json: the command's fields plus id, state ("downloading", "verified", "applying", "failed"), error, from (the
running app directory, "" for the top of the flash), dir (the staging directory) and, for an image, offset.
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
_ERROR_MAX = const(200)
_KINDS = ("bundle", "esp32-app")


def ota(app, cmd_id, payload):
    """The built-in command (app.py's _builtin; cmd_id None: ota.json's job after a boot): the job started or carried
    on (app.ota), or ended. Returns app: the job acks by itself once it is over. Raises ValueError for a command it
    refuses (acked `failed` by app.py)."""
    if cmd_id is not None and app.ota is not None:
        raise ValueError("an OTA is already in progress")
    app.ota = start(app, cmd_id, payload)
    if app.ota is None:
        done(app)
    return app


def done(app):
    """The job is over (or none runs): its modules leave the heap."""
    app.ota = None  # (not `del`: MicroPython keeps a deleted attribute's value in its slot)
    for name in ("ota", "ota_bundle", "ota_image", "httpget", "ota_partition", "ports", "chooser", "ota_boot",
                 "settings"):
        if name in sys.modules:
            del sys.modules[name]
    gc.collect()


def start(app, cmd_id, payload):
    if cmd_id is not None:
        return Job(app, _check(payload, cmd_id, app), True).running()
    try:
        with open(_FILE) as f:
            st = json.load(f)
        state = st["state"]
    except (OSError, ValueError, KeyError, TypeError) as e:  # torn or foreign: nothing to carry on
        print("ota: %s unreadable (%s): removed" % (_FILE, e))
        _remove(_FILE)
        return None
    if state == "downloading":
        return Job(app, st, False).running()
    fw = app.fw
    if state == "applying" and fw.get("md5") == st.get("md5"):
        if st.get("kind") == "esp32-app":  # the image confirmed; fw.json says what runs from now on (start.py)
            import ota_partition

            ota_partition.confirm(app.b)
            d = st["from"]
            with open(d + "/fw.json" if d else "fw.json", "w") as f:
                json.dump(fw, f)
        _finish(app, st, "updated", None, {"version": fw.get("version"), "md5": fw["md5"]})
        return None
    if state == "applying":
        error = "rolled back: the new app (%s) did not reach the broker within its trial; running %s again" % (
            st.get("version") or st.get("md5"), fw.get("version"))
        _finish(app, st, "rolled_back", error)
    elif state == "verified":
        _finish(app, st, "failed", "the board restarted before it switched to the new app")
    else:
        _finish(app, st, "failed", st.get("error") or "failed")
    return None


def _check(p, cmd_id, app):
    """The job's state from the command's payload `p`. Raises ValueError saying what is wrong."""
    url, md5, sha, size, kind = p.get("url"), p.get("md5"), p.get("sha256"), p.get("size"), p.get("kind")
    if not (isinstance(url, str) and url[:8] == "https://" and len(url) <= 400):
        raise ValueError("url must be an https:// address")
    if not (isinstance(md5, str) and len(md5) == 32):
        raise ValueError("md5 must be 32 hex digits")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise ValueError("sha256 must be 64 hex digits")
    if not (isinstance(size, int) and size > 0):
        raise ValueError("size must be a positive number of bytes")
    if kind not in _KINDS:
        raise ValueError("kind must be one of %s" % (_KINDS,))
    if kind == "esp32-app" and app.b.ota_partition() is None:
        raise ValueError("this board has no OTA partitions: send an app bundle")
    here = sys.path[0] if sys.path[0] in ("a", "b") else ""
    st = {"id": cmd_id, "url": url, "md5": md5.lower(), "sha256": sha and sha.lower(), "size": size,
          "version": p.get("version"), "kind": kind, "state": "downloading", "from": here,
          "dir": "b" if here == "a" else "a"}
    save(st)
    return st


def save(st):
    with open(_FILE + ".tmp", "w") as f:
        json.dump(st, f)
    os.rename(_FILE + ".tmp", _FILE)  # littlefs: atomic; a torn ota.json is dropped by start() (no .tmp fallback)


def _remove(name):
    try:
        os.remove(name)
    except OSError:
        pass


def report(app, st, state, progress=None, error=None):
    """Publish `state` of job `st` on the `ota` topic; False when the link could not."""
    body = {"id": st["id"], "state": state}
    if progress is not None:
        body["progress"] = progress
    if error is not None:
        body["error"] = error
    gc.collect()
    print("ota: %s%s (free heap %d)" % (state, "" if progress is None else " %d %%" % progress,
                                       gc.mem_free()) if error is None else "ota: %s: %s" % (state, error))
    return app.link.publish("ota", json.dumps(body))


def _finish(app, st, state, error, result=None):
    """The job's end: `state` on the `ota` topic and the command's final ack; ota.json goes once both are out (else it
    stays, marked failed unless it is an apply, for the next connect)."""
    if report(app, st, state, error=error) and app.ack(st["id"], "done" if error is None else "failed", result, error):
        _remove(_FILE)
    elif st["state"] == "downloading":
        st["state"] = "failed"
        st["error"] = error
        save(st)


class Job:
    pace = 10  # ms: the link's turn in the main loop while a job runs (app.py)

    def __init__(self, app, st, fresh):
        self.app = app
        self.st = st
        self._tries = 0
        self._next = time.ticks_ms()
        self._done = -1  # the most bytes staged so far: progress resets the tries
        self._decile = -1
        if st["kind"] == "bundle":
            from ota_bundle import Stage as method
        else:
            from ota_image import Image as method
        self.method = None
        try:
            self.method = method(self, fresh)
        except Exception as e:  # no room, no partition: the job cannot run
            self.fail(e)

    def running(self):
        """This job, or None when it ended already."""
        return self if self.method is not None else None

    def tick(self):
        if time.ticks_diff(self._next, time.ticks_ms()) > 0:
            return
        try:
            if self.method.step(time.ticks_add(time.ticks_ms(), _TICK_MS)):
                self._switch()
        except OSError as e:
            self.method.pause()
            self._tries += 1
            if self._tries >= _TRIES:
                self.fail("download failed %d times in a row: %s" % (self._tries, _text(e)))
                return
            delay = min(_BACKOFF_MAX_MS, _BACKOFF_MS << (self._tries - 1))
            print("ota: attempt %d failed (%s); again in %d ms" % (self._tries, _text(e), delay))
            self._next = time.ticks_add(time.ticks_ms(), delay)
        except Exception as e:
            self.fail(e)

    def save(self):
        save(self.st)

    def moved(self, n):
        """The method staged the bundle's first `n` bytes: progress every 10 %."""
        if n > self._done:
            self._done = n
            self._tries = 0
        decile = n * 10 // self.st["size"]
        if decile > self._decile:
            self._decile = decile
            report(self.app, self.st, "downloading", progress=min(100, decile * 10))

    def fail(self, e):
        m = self.method
        self.method = None
        if m is not None:
            m.pause()
            m.discard()
        _finish(self.app, self.st, "failed", _text(e))
        done(self.app)

    def _switch(self):
        """Staged and verified: the switch, then the reset into the new app (which reports)."""
        st = self.st
        app = self.app
        st["state"] = "verified"
        save(st)
        report(app, st, "verified")
        self.method.apply()  # what the new app is, where it is (fw.json; the slot's record)
        st["state"] = "applying"
        save(st)
        report(app, st, "applying")
        import chooser
        import ota_boot
        import settings

        boots = ota_boot.trial(settings.load())[1]
        # app.trial before the switch: a power cut between leaves the old app on a harmless trial of itself.
        chooser.write("app.trial", "%s %d" % (st["from"], boots))
        self.method.switch()
        print("ota: switched; reset into the new app")
        gc.collect()
        app.b.reset()


def _text(e):
    """The error text of `e` (a text, or an exception: our ValueErrors say it all, others are named)."""
    if isinstance(e, str):
        return e[:_ERROR_MAX]
    t = " ".join(str(e).split())
    if type(e) is ValueError and t:
        return t[:_ERROR_MAX]
    return ("%s: %s" % (type(e).__name__, t) if t else type(e).__name__)[:_ERROR_MAX]
