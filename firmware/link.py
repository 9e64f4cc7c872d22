"""The board's link to the broker: Wi-Fi, then one TLS MQTT session (umqtt.simple), kept up for good.

    link = Link(cfg, board, status)      # status(): the dict published retained on every connect
    link.subscribe("cmd", on_cmd)        # the subscription table, re-applied on every connect
    while True:
        link.step()                      # connects when due; never raises
        link.publish("telemetry", b"{...}")  # False when the session is down or was just lost
        link.wait(200)                   # serves incoming messages and pings for up to 200 ms

umqtt.simple blocks and never pings. Here every read and write of the session has a time limit
(_IO_TIMEOUT_MS), the link pings after keepalive/2 of silence and drops the session when the broker
stays silent after a ping, and any failure of the session (OSError, ValueError of a TLS verification,
MQTTException, a timeout, a short read) ends it: the next attempt follows a jittered exponential backoff
from 1 s up to 60 s. The TLS handshake runs in _Sock.connect, over the plain socket and its time limit;
the board's watchdog is the backstop there.

TLS: the broker's certificate is verified against cfg["mqtt"]["ca"] and its name checked against
cfg["mqtt"]["host"], except on a port that cannot verify (board.TLS_VERIFIES false, ESP8266): there the
session is encrypted only, the link warns on every connect, and `verified` stays False.

Memory: one SSLContext for good, made by tlsctx.py when the Link is made (the CA's PEM text is then
dropped from the config, and tlsctx.py from the heap); `status` is published only after the subscriptions,
so a command sent on seeing the board online is not lost; a room for the TLS socket object is held between
sessions (_TLS_ROOM).
"""

import gc
import json
import socket
import sys
import time
from errno import ETIMEDOUT
from random import getrandbits

import select
from micropython import const
from umqtt import simple

KEEPALIVE = const(60)  # seconds, as the protocol says
_IO_TIMEOUT_MS = const(10000)  # a read or write of the session, a TCP connect
_WIFI_TIMEOUT_MS = const(20000)
_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_STABLE_MS = const(60000)  # a session that lasted this long resets the backoff
_PREFIX = "mpfleet/v1/"
_WILL = b'{"online":false}'
# The TLS socket object (its mbedTLS session state: 544 bytes on the 64-bit unix port, measured; less on a
# 32-bit board) is one block of heap: a room for it is held from boot and between sessions, and let go just
# before the handshake, so a fragmented heap still has the block. The SSLContext (~3 KB) is made once, at
# boot; the handshake and the record buffers take (almost) nothing from this heap on the unix port.
_TLS_ROOM = const(1024)


class _Net:
    """Stands in for umqtt.simple's `socket` module (the class itself, no instance): its sockets are _Sock,
    TLS and time limits included.

    The only seam umqtt.simple (1.3.4 and later) offers to bound its TCP connect and CONNACK read, and
    to wrap the socket in TLS with the link's one SSLContext (umqtt.simple 1.3.4 would make a new one
    per connect through ussl.wrap_socket): umqtt.simple itself is told ssl=False.
    """

    getaddrinfo = socket.getaddrinfo
    ctx = None  # the link's SSLContext, made once per boot (tlsctx.py)
    host = None  # the broker's name, checked against its certificate
    room = None  # heap kept for the TLS socket object (_TLS_ROOM)

    def socket(*args):
        s = socket.socket(*args)
        s.settimeout(_IO_TIMEOUT_MS / 1000)
        return _Sock(s)


simple.socket = _Net


class _Sock:
    """Between umqtt.simple and the TLS socket once connected: non-blocking underneath, every read
    and write limited to _IO_TIMEOUT_MS (OSError ETIMEDOUT), and the time data last came in (`rx`)
    and went out (`tx`). umqtt.simple's setblocking(False) means "return None when nothing is there".
    """

    def __init__(self, sock):
        self._s = sock
        self._poll = None
        self._wait = True
        self.rx = self.tx = time.ticks_ms()
        self.reads = 0  # packets' bytes read so far, to tell "something came" from "nothing"

    def connect(self, addr):
        """TCP connect, then the TLS handshake (both bounded by the plain socket's time limit)."""
        self._s.connect(addr)
        _Net.room = None
        gc.collect()  # the TLS socket object wants one block of heap: the room just let go
        self._s = _Net.ctx.wrap_socket(self._s, server_hostname=_Net.host)
        self._s.setblocking(False)
        self._poll = select.poll()
        self._poll.register(self._s, select.POLLIN)

    def setblocking(self, flag):
        self._wait = flag

    def readable(self, ms):
        return bool(self._poll.poll(ms))

    def _park(self, event, deadline):
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            raise OSError(ETIMEDOUT)
        self._poll.modify(self._s, event)
        self._poll.poll(min(left, 100))
        self._poll.modify(self._s, select.POLLIN)

    def read(self, n):
        got = b""
        deadline = time.ticks_add(time.ticks_ms(), _IO_TIMEOUT_MS)
        while True:
            chunk = self._s.read(n - len(got))
            if chunk is not None:
                if not chunk:
                    return got  # the broker closed: umqtt.simple fails on the short read
                got += chunk
                if len(got) >= n:
                    self.rx = time.ticks_ms()
                    self.reads += 1
                    return got
            elif not got and not self._wait:
                return None
            self._park(select.POLLIN, deadline)

    def write(self, buf, n=None):
        if isinstance(buf, str):
            buf = buf.encode()
        mv = memoryview(buf)
        if n is not None:
            mv = mv[:n]
        done = 0
        deadline = time.ticks_add(time.ticks_ms(), _IO_TIMEOUT_MS)
        while done < len(mv):
            sent = self._s.write(mv[done:])
            if sent:
                done += sent
            else:
                self._park(select.POLLOUT, deadline)
        self.tx = time.ticks_ms()
        return done

    def close(self):
        self._s.close()


class Link:
    def __init__(self, cfg, board, status, log=print):
        self._cfg = cfg
        self._board = board
        self._status = status
        self._log = log
        self.uid = cfg["mqtt"]["uid"]
        self._prefix = _PREFIX + self.uid + "/"
        self._subs = {}  # full topic (bytes) -> (qos, handler(msg bytes))
        self._client = None
        self._sock = None
        self.verified = bool(board.TLS_VERIFIES)
        self.up = False
        self.got = False  # a message was handed to a handler since the last look
        self.on_up = None  # called after every connect, once subscribed
        self._failures = 0
        self._next = time.ticks_ms()  # the next attempt is due at this tick
        self._since = 0
        self._ping_at = None
        _Net.room = bytearray(_TLS_ROOM)
        try:  # now, while the heap is young: the CA's PEM text and its decoding leave no holes behind
            self._tls()
        except Exception:  # a broken CA: every attempt fails and says why (_connect)
            pass

    def _tls(self):
        """The one SSLContext of the link (tlsctx.py, unloaded after: it is made once per boot)."""
        import tlsctx

        try:
            _Net.ctx = tlsctx.context(self._cfg["mqtt"], self.verified)
            _Net.host = self._cfg["mqtt"]["host"]
        finally:
            del sys.modules["tlsctx"]

    def topic(self, suffix):
        return (self._prefix + suffix).encode()

    def subscribe(self, suffix, handler, qos=1):
        """Add `suffix` (below the device's prefix) to the table; handler(msg bytes) is called for its
        messages from inside wait(), so it should only queue work. Applied now if up, and on every connect."""
        topic = self.topic(suffix)
        self._subs[topic] = (qos, handler)
        if self.up:
            self._io(self._client.subscribe, topic, qos)

    # --- the session

    def step(self):
        """Connect when down and the backoff has run out. Never raises."""
        if self.up or time.ticks_diff(self._next, time.ticks_ms()) > 0:
            return
        try:
            self._connect()
        except Exception as e:  # every failure of an attempt is a failed attempt
            self._drop("connect failed", e)

    def _connect(self):
        board = self._board
        if not board.wifi_connected():
            wifi = self._cfg["wifi"]
            self._log("link: joining wifi %r" % wifi["ssid"])
            ip = board.wifi_connect(wifi["ssid"], wifi["password"], _WIFI_TIMEOUT_MS)
            self._log("link: wifi up, ip %s" % ip)
            board.sync_time()
        if _Net.ctx is None:
            self._tls()
        gc.collect()
        mqtt = self._cfg["mqtt"]
        if not self.verified:
            self._log("link: WARNING: this port cannot verify the broker's certificate; TLS unverified")
        self._log("link: connecting to %s:%d" % (mqtt["host"], mqtt["port"]))
        client = simple.MQTTClient(self.uid, mqtt["host"], mqtt["port"], self.uid, mqtt["password"], KEEPALIVE)
        client.set_last_will(self.topic("status"), _WILL, retain=True, qos=1)
        client.set_callback(self._on_message)
        self._client = client
        try:
            client.connect(True)  # _Net: TCP, then TLS (_Sock.connect), then MQTT CONNECT
        except Exception:
            if client.sock is not None:
                client.sock.close()
            raise
        self._sock = client.sock
        # Subscribed before `status` says online: the backend sends a command as soon as it sees the board
        # online, and a command published before the subscription would be lost.
        for topic, (qos, _) in self._subs.items():
            client.subscribe(topic, qos)
        client.publish(self.topic("status"), json.dumps(self._status()), True, 1)
        self.up = True
        self._since = time.ticks_ms()
        self._ping_at = None
        self._log("link: online as %s (tls %s)" % (self.uid, "verified" if self.verified else "UNVERIFIED"))
        if self.on_up:
            self.on_up()

    def _drop(self, why, error):
        """End the session (if any) and schedule the next attempt."""
        lasted = time.ticks_diff(time.ticks_ms(), self._since) if self.up else 0
        self.up = False
        if self._sock is not None:
            try:
                self._sock.close()
            except Exception:
                pass
        self._sock = self._client = None
        gc.collect()
        if _Net.room is None:
            _Net.room = bytearray(_TLS_ROOM)
        if lasted >= _STABLE_MS:
            self._failures = 0
        delay = min(_BACKOFF_MAX_MS, _BACKOFF_MIN_MS << min(self._failures, 6))
        delay = delay // 2 + getrandbits(16) % (delay // 2 + 1)  # jitter: a fleet does not come back at once
        self._failures += 1
        self._next = time.ticks_add(time.ticks_ms(), delay)
        text = " ".join(str(error).split())  # mbedTLS texts come with line breaks
        self._log("link: %s: %s: %s; next attempt in %d ms" % (why, type(error).__name__, text, delay))

    def _io(self, fn, *args):
        """fn(*args) on the session; False (and the session dropped) when it failed."""
        try:
            fn(*args)
            return True
        except Exception as e:
            self._drop("session lost", e)
            return False

    def publish(self, suffix, payload, retain=False, qos=1):
        """Publish `payload` (bytes or str) below the device's prefix; False when down or failed."""
        if not self.up:
            return False
        return self._io(self._client.publish, self.topic(suffix), payload, retain, qos)

    def _on_message(self, topic, msg):
        entry = self._subs.get(bytes(topic))
        if entry:
            self.got = True
            entry[1](msg)

    def wait(self, ms):
        """Serve the session for up to `ms`: incoming messages to their handlers, pings when due.

        Returns early once a message was handed over (self.got). Sleeps when down. Never raises.
        """
        deadline = time.ticks_add(time.ticks_ms(), ms)
        self.got = False
        while not self.got:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return
            if not self.up:
                time.sleep_ms(left)
                return
            if self._sock.readable(min(left, 1000)):
                for _ in range(8):  # several packets may be buffered by TLS
                    before = self._sock.reads
                    if not self._io(self._client.check_msg) or self._sock.reads == before:
                        break
            if self.up:
                self._keepalive()

    def _keepalive(self):
        now = time.ticks_ms()
        sock = self._sock
        if self._ping_at is not None:
            if time.ticks_diff(sock.rx, self._ping_at) >= 0:
                self._ping_at = None  # the broker answered (PINGRESP or anything)
            elif time.ticks_diff(now, self._ping_at) > _IO_TIMEOUT_MS:
                self._drop("session lost", OSError(ETIMEDOUT, "no answer to ping"))
                return
        if self._ping_at is None and time.ticks_diff(now, sock.tx) >= KEEPALIVE * 500:
            self._ping_at = now
            self._io(self._client.ping)
