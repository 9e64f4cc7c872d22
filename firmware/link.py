"""The board's link to the broker: Wi-Fi, then one TLS MQTT session, kept up for good.

    link = Link(cfg, board, status)      # status(): the dict published retained on every connect
    link.subscribe("cmd", on_cmd)        # the subscription table, re-applied on every connect
    while True:
        link.step()                      # connects when due; never raises
        link.publish("telemetry", b"{...}")  # False when the session is down or was just lost
        link.wait(200)                   # serves incoming messages and pings for up to 200 ms

MQTT 3.1.1 is spoken here, the part of it a board needs (docs/protocol.md): CONNECT with a clean session, user
name and password and a retained QoS 1 will; SUBSCRIBE at QoS 1; PUBLISH at QoS 1 both ways (a publish returns
once the broker's PUBACK came; an incoming one is acknowledged and handed to its handler); PINGREQ. It replaced
umqtt.simple, which needed a socket shim around it (time limits, one TLS context) and took ~4 KB more heap than
this, too much on an ESP8266 (docs/firmware.md).

Every read and write of the session has a time limit (_IO_TIMEOUT_MS); the link pings after keepalive/2 of
silence and drops the session when the broker stays silent after a ping; any failure of the session (OSError,
ValueError of a TLS verification, a refused CONNECT or SUBSCRIBE, a timeout, the broker closing) ends it, and
the next attempt follows a jittered exponential backoff from 1 s up to 60 s. The TCP connect and the TLS
handshake run on the plain socket and its time limit; the board's watchdog is the backstop there.

TLS: the broker's certificate is verified against cfg["mqtt"]["ca"] and its name checked against
cfg["mqtt"]["host"], except on a port that cannot verify (board.TLS_VERIFIES false, ESP8266): there the
session is encrypted only, the link warns on every connect, and `verified` stays False.

Memory: the set-up code (the TLS context, each connect) is connect.py, loaded for one call and unloaded;
one SSLContext for good, made when the Link is made (the CA's PEM text is then dropped from the config);
`status` is published only after the subscriptions, so a command sent on seeing the board online is not
lost; a room for the TLS socket object is held between sessions (_TLS_ROOM).
"""

import gc
import sys
import time
from errno import ETIMEDOUT
from random import getrandbits

import select
from micropython import const

_KEEPALIVE = const(60)  # seconds, as the protocol says (connect.py's CONNECT says so too)
_IO_TIMEOUT_MS = const(10000)  # a read or write of the session
_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_STABLE_MS = const(60000)  # a session that lasted this long resets the backoff
# The TLS socket object (its mbedTLS session state: 544 bytes on the 64-bit unix port, measured; less on a
# 32-bit board) is one block of heap: a room for it is held from boot and between sessions, and let go just
# before the handshake, so a fragmented heap still has the block. The SSLContext (~3 KB) is made once, at
# boot; the handshake and the record buffers take (almost) nothing from this heap on the unix port.
_TLS_ROOM = const(1024)


def _str(data):
    """An MQTT string: its length in 2 bytes, then its bytes (text is sent as UTF-8)."""
    if isinstance(data, str):
        data = data.encode()
    return len(data).to_bytes(2, "big") + data


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
        self._pid = 0  # the last packet id used
        self.verified = bool(board.TLS_VERIFIES)
        self.up = False
        self.got = False  # a message was handed to a handler since the last look
        self.on_up = None  # called after every connect, once subscribed
        self._failures = 0
        self._next = time.ticks_ms()  # the next attempt is due at this tick
        self._since = self._rx = self._tx = 0  # ticks: the session began, data last came in, went out
        self._ping_at = None
        self._room = bytearray(_TLS_ROOM)
        try:  # now, while the heap is young: the CA's PEM text and its decoding leave no holes behind
            self._setup("context")
        except Exception:  # a broken CA: every attempt fails and says why (connect.run makes it again)
            pass

    def _setup(self, name):
        """connect.py's function `name`(self): the module is loaded for the call only."""
        import connect

        try:
            getattr(connect, name)(self)
        finally:
            del connect
            del sys.modules["connect"]

    def subscribe(self, name, handler):
        """Add topic `name` (below the device's prefix) to the table; handler(msg bytes) is called for its
        messages from inside wait(), so it should only queue work. Applied now if up, and on every connect."""
        topic = (self._prefix + name).encode()
        self._subs[topic] = handler
        if self.up:
            self._io(self._subscribe, topic)

    # --- the session

    def step(self):
        """Connect when down and the backoff has run out. Never raises."""
        if self.up or time.ticks_diff(self._next, time.ticks_ms()) > 0:
            return
        try:
            self._setup("run")
        except Exception as e:  # every failure of an attempt is a failed attempt
            self._drop("connect failed", e)
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
            self._room = bytearray(_TLS_ROOM)
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
        return self.up and self._io(self._publish, (self._prefix + name).encode(), data, retain)

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
            while self._packet(False):  # all that came: TLS may hold several packets
                pass
        now = time.ticks_ms()
        if self._ping_at is not None:
            if time.ticks_diff(self._rx, self._ping_at) >= 0:
                self._ping_at = None  # the broker answered (PINGRESP or anything)
            elif time.ticks_diff(now, self._ping_at) > _IO_TIMEOUT_MS:
                raise OSError(ETIMEDOUT, "no answer to ping")
        if self._ping_at is None and time.ticks_diff(now, self._tx) >= _KEEPALIVE * 500:
            self._ping_at = now
            self._write(b"\xc0\x00")  # PINGREQ

    # --- MQTT packets

    def _publish(self, topic, data, retain):
        self._pid = self._pid % 0xFFFF + 1
        pid = self._pid.to_bytes(2, "big")
        if isinstance(data, str):
            data = data.encode()  # the remaining length counts bytes, not characters
        self._send(0x32 | retain, _str(topic), pid, data)  # PUBLISH, QoS 1
        while self._packet() != (0x40, pid):  # PUBACK; what comes before it is served
            pass

    def _subscribe(self, topic):
        self._pid = self._pid % 0xFFFF + 1
        pid = self._pid.to_bytes(2, "big")
        self._send(0x82, pid, _str(topic), b"\x01")  # SUBSCRIBE, QoS 1
        while True:  # SUBACK: the packet id, then 0x80 for a refusal; what comes before it is served
            head, body = self._packet()
            if head == 0x90 and body[:2] == pid:
                if body[2] & 0x80:
                    raise OSError("subscription refused: %s" % topic.decode())
                return

    def _send(self, head, *parts):
        """One packet: the byte `head` (type and flags), the remaining length, then `parts` (bytes)."""
        n = 0
        for part in parts:
            n += len(part)
        pre = bytearray((head,))
        while n > 0x7F:
            pre.append(n & 0x7F | 0x80)
            n >>= 7
        pre.append(n)
        self._write(pre)
        for part in parts:
            self._write(part)

    def _packet(self, wait=True):
        """The broker's next packet as (first byte, body); None when not `wait` and none has begun.

        An incoming PUBLISH is acknowledged (QoS 1) and handed to its topic's handler here.
        """
        head = self._read(1, wait)
        if head is None:
            return None
        n = shift = 0
        while True:  # the remaining length: 7 bits a byte, least significant first
            b = self._read(1)[0]
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        head = head[0]
        body = self._read(n) if n else b""
        if head & 0xF0 == 0x30:  # PUBLISH: topic, packet id (QoS 1; 2 is never asked for), message
            i = (body[0] << 8 | body[1]) + 2
            topic = body[2:i]
            if head & 6:
                self._send(0x40, body[i : i + 2])  # PUBACK
                i += 2
            handler = self._subs.get(topic)
            if handler:
                self.got = True
                handler(body[i:])
        return head, body

    # --- the socket: non-blocking, every read and write limited to _IO_TIMEOUT_MS (OSError ETIMEDOUT)

    def _read(self, n, wait=True):
        """n bytes of the session; None when not `wait` and nothing is there."""
        got = b""
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
            elif not (got or wait):
                return None
            self._park(select.POLLIN, deadline)

    def _write(self, buf):
        mv = memoryview(buf)
        deadline = time.ticks_add(time.ticks_ms(), _IO_TIMEOUT_MS)
        while len(mv):
            sent = self._sock.write(mv)
            if sent:
                mv = mv[sent:]
            else:
                self._park(select.POLLOUT, deadline)
        self._tx = time.ticks_ms()

    def _park(self, event, deadline):
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            raise OSError(ETIMEDOUT)
        self._poll.modify(self._sock, event)
        self._poll.poll(min(left, 100))
        self._poll.modify(self._sock, select.POLLIN)
