"""The board's link to the broker: Wi-Fi, then one TLS MQTT session (umqtt.simple), kept up for good.

    link = Link(cfg, board, status)      # status(): the dict published retained on every connect
    link.subscribe("cmd", on_cmd)        # the subscription table, re-applied on every connect
    while True:
        link.step()                      # connects when due; never raises
        link.publish("telemetry", b"{...}")  # False when the session is down or was just lost
        link.wait(200)                   # serves incoming messages and pings for up to 200 ms

MQTT is micropython-lib's umqtt.simple (1.3.4 as built, or a newer one a maker installs with mip): CONNECT with a
clean session, user name and password and a retained QoS 1 will; SUBSCRIBE and PUBLISH at QoS 1. umqtt.simple
blocks and never pings, so the link is its socket: connect.py puts the link in place of umqtt.simple's `socket`
module for each connect, and from then on every read and write of the session goes through the link, on the
TLS socket underneath, with a time limit (_IO_TIMEOUT_MS). umqtt.simple itself is told ssl=False; its
protocol code is used as it is.

The link pings after keepalive/2 of silence and drops the session when the broker stays silent after a ping;
any failure of the session (OSError, ValueError of a TLS verification, umqtt.simple's MQTTException or a
failed check of a broker's answer, a timeout, the broker closing) ends it, and the next attempt follows a
jittered exponential backoff from 1 s up to 60 s. The TCP connect and the TLS handshake run on the plain
socket and its time limit; the board's watchdog is the backstop there.

TLS: the broker's certificate is verified against cfg["mqtt"]["ca"] and its name checked against
cfg["mqtt"]["host"], except on a port that cannot verify (board.TLS_VERIFIES false, ESP8266): there the
session is encrypted only, tlsctx.py warns when the context is made, every connect logs "tls UNVERIFIED", and
`verified` stays False.

After an OTA the new app is on trial (chooser.py): app.py sets `until`, and a failed attempt after it resets the
board (a trial boot used up), so that a new app that never reaches the broker goes back to the previous one.

Memory: the set-up code is loaded for one call and unloaded, one module at a time, after a gc.collect(): tlsctx.py
makes the one SSLContext for good when the Link is made (the CA's PEM text is then dropped from the config),
wifi.py joins Wi-Fi when it is down, connect.py does each connect (TCP, TLS, CONNECT), then online.py the
subscriptions and `status` (published only after them, so a command sent on seeing the board online is not lost);
the MQTT client is made once, with the Link; a room for the TLS socket object is held between sessions
(_TLS_ROOM).
"""

import gc
import sys
import time
from errno import ETIMEDOUT
from random import getrandbits

import select
from micropython import const

_IO_TIMEOUT_MS = const(10000)  # a read or write of the session
_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_STABLE_MS = const(60000)  # a session that lasted this long resets the backoff
# The TLS socket object (its mbedTLS session state: 544 bytes on the 64-bit unix port, measured; less on a
# 32-bit board) is one block of heap: a room for it is held from boot and between sessions, and let go just
# before the handshake, so a fragmented heap still has the block. It is just larger than the object (18 GC blocks
# of 32 bytes): held while connect.py loads, a room of 1 KB was 448 bytes of the connect's peak for nothing. The
# SSLContext (~3 KB) is made once, at boot; the handshake and the record buffers take (almost) nothing from this
# heap on the unix port.
_TLS_ROOM = const(576)


class Link:
    def __init__(self, cfg, board, status, log=print):
        self._cfg = cfg
        self._board = board
        self._status = status
        self._log = log
        self.uid = cfg["mqtt"]["uid"]
        self._prefix = "mpfleet/v1/%s/" % self.uid
        self._subs = {}  # full topic (bytes) -> handler(msg bytes)
        self._sock = None  # the TLS socket of the session
        self._poll = select.poll()
        self._ctx = None
        self._wait = True  # umqtt.simple's setblocking(): False, a read returns None when nothing has come
        self._idle = False  # a read found nothing (since the last look)
        self.verified = bool(board.TLS_VERIFIES)
        self.up = False
        self.got = False  # a message was handed to a handler since the last look
        self.on_up = None  # called after every connect, once subscribed
        self._failures = 0
        self._next = time.ticks_ms()  # the next attempt is due at this tick
        self._since = self._rx = self._tx = 0  # ticks: the session began, data last came in, went out
        self._ping_at = None
        self.until = None  # on trial after an OTA: the ticks_ms by which the broker must be reached (app.py)
        self._room = bytearray(_TLS_ROOM)
        try:  # now, while the heap is young: the CA's PEM text and its decoding leave no holes behind
            self._setup("tlsctx")
        except Exception:  # a broken CA: every attempt fails and says why (connect.py tries it again)
            pass
        # umqtt.simple now too, after the context: the context wants one block of ~3 KB, umqtt.simple ~5 KB in small
        # pieces. Its client is made once, here, and serves every session (its connect() starts each afresh, with
        # the keepalive connect.py gives it): made at each connect, its pieces (an attribute table of 272 bytes among
        # them) were what a 32 KB board's fragmented heap could not find. Bytes throughout: umqtt.simple counts the
        # length of a string with len().
        from umqtt.simple import MQTTClient

        mqtt = cfg["mqtt"]
        uid = self.uid.encode()
        c = self._client = MQTTClient(uid, mqtt["host"], mqtt["port"], uid, mqtt["password"].encode())
        c.set_last_will((self._prefix + "status").encode(), b'{"online":false}', True, 1)
        c.set_callback(self._on_message)

    def _setup(self, name):
        """run(self) of the link's module `name` (tlsctx, wifi, connect, online), loaded for the call only."""
        gc.collect()
        try:
            __import__(name).run(self)
        finally:
            if name in sys.modules:  # (not when its import failed)
                del sys.modules[name]

    def subscribe(self, name, handler):
        """Add topic `name` (below the device's prefix) to the table; handler(msg bytes) is called for its
        messages from inside wait(), so it should only queue work. Applied now if up, and on every connect."""
        topic = (self._prefix + name).encode()
        self._subs[topic] = handler
        if self.up:
            self._io(self._client.subscribe, topic, 1)

    # --- the session

    def step(self):
        """Connect when down and the backoff has run out. Never raises."""
        if self.up or time.ticks_diff(self._next, time.ticks_ms()) > 0:
            return
        try:
            if not self._board.wifi_connected():
                self._setup("wifi")
            self._setup("connect")
            self._setup("online")
        except Exception as e:  # every failure of an attempt is a failed attempt
            self._drop("connect failed", e)
            u = self.until
            if u is not None and time.ticks_diff(time.ticks_ms(), u) > 0:  # a trial boot (chooser.py) is over
                self._log("link: trial over: reset")
                self._board.reset()
            return
        if self.on_up:
            self.on_up()

    def _drop(self, reason, e):
        """End the session (if any) and schedule the next attempt."""
        lasted = time.ticks_diff(time.ticks_ms(), self._since) if self.up else 0
        self.up = False
        s = self._sock
        if s is not None:
            self._sock = None
            self._poll.unregister(s)
            try:
                s.close()
            except Exception:
                pass
        gc.collect()
        if self._room is None:
            try:
                self._room = bytearray(_TLS_ROOM)
            except MemoryError:  # no such block now: the next handshake takes its chances
                pass
        if lasted >= _STABLE_MS:
            self._failures = 0
        delay = min(_BACKOFF_MAX_MS, _BACKOFF_MIN_MS << min(self._failures, 6))
        delay = delay // 2 + getrandbits(16) % (delay // 2 + 1)  # jitter: a fleet does not come back at once
        self._failures += 1
        self._next = time.ticks_add(time.ticks_ms(), delay)
        text = " ".join(str(e).split())  # mbedTLS texts come with line breaks
        self._log("link: %s: %s: %s; next attempt in %d ms" % (reason, type(e).__name__, text, delay))

    def _io(self, f, *args):
        """f(*args) on the session; False (and the session dropped) when it failed."""
        try:
            f(*args)
            return True
        except Exception as e:
            self._drop("session lost", e)
            return False

    def publish(self, name, data, retain=False):
        """Publish `data` (bytes or str) on topic `name` below the device's prefix, at QoS 1; False when down
        or failed."""
        if isinstance(data, str):  # umqtt.simple's remaining length is len(data): bytes, not characters
            data = memoryview(data)  # (a view of its bytes: no copy in the heap)
        return self.up and self._io(self._client.publish, (self._prefix + name).encode(), data, retain, 1)

    def wait(self, timeout):
        """Serve the session for up to `timeout` ms: incoming messages to their handlers, pings when due.

        Returns early once a message was handed over (self.got). Sleeps when down. Never raises.
        """
        deadline = time.ticks_add(time.ticks_ms(), timeout)
        self.got = False
        while not self.got:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return
            if not self.up:
                time.sleep_ms(left)
                return
            self._io(self._serve, min(left, 1000))

    def _serve(self, timeout):
        if self._poll.poll(timeout):
            self._idle = False
            while not self._idle:  # all that came: TLS may hold several packets
                self._client.check_msg()
        now = time.ticks_ms()
        if self._ping_at is not None:
            if time.ticks_diff(self._rx, self._ping_at) >= 0:
                self._ping_at = None  # the broker answered (PINGRESP or anything)
            elif time.ticks_diff(now, self._ping_at) > _IO_TIMEOUT_MS:
                raise OSError(ETIMEDOUT, "no answer to ping")
        # The keepalive of the session (connect.py: the protocol's 60 s), half of it in ms.
        if self._ping_at is None and time.ticks_diff(now, self._tx) >= self._client.keepalive * 500:
            self._ping_at = now
            self._client.ping()

    def _on_message(self, topic, msg):
        """umqtt.simple's callback: an incoming message to its topic's handler."""
        handler = self._subs.get(topic)
        if handler:
            self.got = True
            handler(msg)

    # --- umqtt.simple's socket (connect.py): the TLS socket, non-blocking underneath, every read and write
    # limited to _IO_TIMEOUT_MS (OSError ETIMEDOUT)

    def setblocking(self, flag):
        """umqtt.simple's check_msg: False, a read returns None when nothing has come; True, it waits."""
        self._wait = flag

    def settimeout(self, timeout):
        """A newer umqtt.simple's connect and check_msg: waiting again, within the link's own limit."""
        self._wait = True

    def read(self, n):
        """n bytes of the session; None when not waiting and nothing has come."""
        got = b""
        if not n:  # (an empty message: the TLS socket's read(0) gives b"", which is no closed connection)
            return got
        deadline = time.ticks_add(time.ticks_ms(), _IO_TIMEOUT_MS)
        while True:
            chunk = self._sock.read(n - len(got))
            if chunk is not None:
                if not chunk:
                    raise OSError("the broker closed the connection")
                got += chunk
                if len(got) >= n:
                    self._rx = time.ticks_ms()
                    return got
            elif not (got or self._wait):
                self._idle = True
                return None
            self._park(select.POLLIN, deadline)

    def write(self, buf, n=None):
        """buf (its first n bytes if given), whole; returns its length."""
        mv = memoryview(buf)
        if n is not None:
            mv = mv[:n]
        n = len(mv)
        deadline = time.ticks_add(time.ticks_ms(), _IO_TIMEOUT_MS)
        while len(mv):
            sent = self._sock.write(mv)
            if sent:
                mv = mv[sent:]
            else:
                self._park(select.POLLOUT, deadline)
        self._tx = time.ticks_ms()
        return n

    def _park(self, event, deadline):
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            raise OSError(ETIMEDOUT)
        self._poll.modify(self._sock, event)
        self._poll.poll(min(left, 100))
        self._poll.modify(self._sock, select.POLLIN)
