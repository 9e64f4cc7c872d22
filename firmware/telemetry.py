"""Telemetry: a sample every period, published on `telemetry`, kept while offline.

    tele = Telemetry(link, sample, period_s)   # sample() -> dict of values
    tele.tick()                                # in the main loop: samples when due, publishes
    tele.flush()                               # after a reconnect: the kept samples, oldest first

While the link is down the last _KEEP samples are kept (a ring of encoded payloads, ~160 bytes each on the
unix port; the ring is made when the first sample is kept and let go once all are sent) and published after
reconnecting with their original `ts`. A sample is kept only while the heap keeps _ROOM bytes free, the oldest
dropped first: on a small heap a full ring would leave no room to reconnect (connect.py, the TLS handshake), and
the kept samples would never leave. `ts` is unix seconds when the clock is set, else null (the backend stamps it
on receipt): a board's clock is right only after NTP.
"""

import gc
import json
import time

from micropython import const

_KEEP = const(32)
_ROOM = const(3072)  # bytes of heap left free for the reconnect while samples are kept
_CLOCK_SET = const(1577836800)  # 2020-01-01: a clock before this was never set
# Ports whose time() counts from 2000 (older ESP32/ESP8266 builds) are brought to unix seconds.
_EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0


class Telemetry:
    def __init__(self, link, sample, period_s, log=print):
        self._link = link
        self._sample = sample
        self._log = log
        self.period = period_s
        self._next = time.ticks_ms()  # the first sample at once
        self._ring = None  # while samples are kept: _KEEP slots
        self._head = 0  # the oldest kept sample
        self._count = 0
        self.dropped = 0  # kept samples overwritten by newer ones

    def set_period(self, period_s):
        self.period = period_s
        self._next = time.ticks_add(time.ticks_ms(), period_s * 1000)

    def tick(self):
        now = time.ticks_ms()
        if time.ticks_diff(self._next, now) > 0:
            return
        self._next = time.ticks_add(self._next, self.period * 1000)
        if time.ticks_diff(self._next, now) <= 0:  # fell behind: no burst
            self._next = time.ticks_add(now, self.period * 1000)
        try:
            values = self._sample()
        except Exception as e:  # a sensor or user hook that fails costs one sample
            self._log("telemetry: sample failed: %s" % e)
            return
        ts = time.time() + _EPOCH
        payload = json.dumps({"ts": int(ts) if ts >= _CLOCK_SET else None, "values": values})
        if self.flush() and self._link.publish("telemetry", payload):
            return
        gc.collect()
        if self._ring is None:
            self._ring = [None] * _KEEP
        while self._count and (self._count == _KEEP or gc.mem_free() < _ROOM):  # the oldest goes
            self._ring[self._head] = None
            self._head = (self._head + 1) % _KEEP
            self._count -= 1
            self.dropped += 1
            gc.collect()
        self._ring[(self._head + self._count) % _KEEP] = payload
        self._count += 1

    def flush(self):
        """Publish the kept samples, oldest first; True when none is left."""
        while self._count:
            if not self._link.publish("telemetry", self._ring[self._head]):
                return False
            self._ring[self._head] = None
            self._head = (self._head + 1) % _KEEP
            self._count -= 1
        self._ring = None  # none kept: the ring's heap is free while online
        return True
