"""A small MQTT 3.1.1 client on one asyncio connection: what the bridge needs, and fast.

    client = await MqttClient.connect(endpoint, "mpfleet-backend-1a2b", on_message, keepalive=30)
    await client.subscribe([("mpfleet/v1/+/telemetry", 0), ...])
    await client.publish("mpfleet/v1/<uid>/cmd", b"{...}", qos=1)   # returns once PUBACKed
    await client.wait_closed()                                       # raises MqttError: why it ended

Why not paho-mqtt (through aiomqtt): telemetry is the backend's volume path, and paho parses one
packet per three or four `recv` calls and several Python frames, ~36 µs of a core per message
with aiomqtt's queue on top. Here every chunk asyncio reads is cut into all the packets it holds
in one loop, and the PUBACKs they ask for go out in one write.

Incoming messages are handed to `on_message(topic: str, payload: bytes)` synchronously, in
order, from the protocol callback: the callee must not block (queue work, don't await it).
It returns None when it is done with the message, or an asyncio future that is done once the
message is safe (stored): a QoS 1 message is acknowledged only then, and PUBACKs go out in the
order the messages came, as MQTT 3.1.1 (4.6) asks. Many messages may share one future (a batch).
A future that fails ends the connection unacknowledged, so that a persistent session gets the
message again. With `with_retain`, `on_message(topic, payload, retained)`: `retained` is the PUBLISH's
RETAIN flag, which a broker sets on what it replays to a new subscription and clears on what it
forwards live (MQTT 3.1.1, 3.3.1.3). QoS 2 is not spoken: the bridge never subscribes or publishes at QoS 2, so a
broker never sends one. Any packet that breaks the protocol ends the connection.

`pause_reading()` stops reading the socket (the broker then holds what is coming: backpressure)
until `resume_reading()`.
"""

import asyncio
import collections
import socket
import struct

__all__ = ["MqttClient", "MqttError", "Refused"]

_CONNECT, _CONNACK, _PUBLISH, _PUBACK = 0x10, 0x20, 0x30, 0x40
_SUBSCRIBE, _SUBACK, _PINGREQ, _PINGRESP, _DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
_CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
_MAX_PACKET = 1 << 20  # larger incoming packets are a protocol error (devices' messages are <= 64 KiB)


class MqttError(Exception):
    """The connection could not be made, was refused, or ended."""


class Refused(MqttError):
    """The broker said no: to the login (CONNACK) or to a subscription (SUBACK)."""


def _string(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def _packet(first_byte, body):
    """One packet: fixed header (type and flags, remaining length) + body."""
    size, length = len(body), bytearray()
    while True:
        digit, size = size & 0x7F, size >> 7
        length.append(digit | 0x80 if size else digit)
        if not size:
            return bytes([first_byte]) + bytes(length) + body


class _Protocol(asyncio.Protocol):
    """Cuts the byte stream into packets and hands each to its client."""

    def __init__(self, client):
        self.client = client
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A QoS 1 publish is one small write; with Nagle it would wait for the delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        end, position = len(buffer), 0
        client = self.client
        try:
            while end - position >= 2:
                # Remaining length: up to four 7-bit digits, least significant first.
                length, shift, index = 0, 0, position + 1
                while True:
                    if index >= end:
                        return  # the length itself is not complete yet
                    digit = buffer[index]
                    index += 1
                    length |= (digit & 0x7F) << shift
                    if not digit & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise MqttError("malformed remaining length")
                if length > _MAX_PACKET:
                    raise MqttError(f"a packet of {length} bytes is over the limit")
                if index + length > end:
                    return
                client._received(buffer[position], bytes(buffer[index:index + length]))
                position = index + length
        except MqttError as error:
            client._fail(error)
        finally:
            del buffer[:position]
            client._flush()

    def connection_lost(self, exc):
        self.client._fail(MqttError(f"connection lost: {exc}" if exc else "connection closed by the broker"))


class MqttClient:
    def __init__(self, on_message, keepalive, with_retain=False):
        self._on_message = on_message
        self._with_retain = with_retain
        self._keepalive = keepalive
        self._protocol = None
        self._outgoing = []  # packets to write at the end of the current chunk (PUBACKs)
        self._unacked = collections.deque()  # (PUBACK, future or None) of QoS 1 messages not acknowledged yet
        self._watched = None  # the last future a release callback was added to
        self._waiting = {}  # packet id -> future of its PUBACK / SUBACK
        self._next_id = 0
        self._connack = None
        self._closed = None
        self._heard = False  # anything came in since the last ping
        self._paused = False
        self._pinger = None
        self.session_present = False  # the CONNACK's flag: the broker kept our persistent session

    @classmethod
    async def connect(cls, endpoint, client_id, on_message, *, keepalive=30, timeout=10, clean_session=True,
                      with_retain=False):
        """Open a session to `endpoint` (a BrokerEndpoint); with `clean_session` false the broker keeps it
        (subscriptions, messages not acknowledged yet, messages queued meanwhile) while we are away;
        `with_retain`: see the module docstring. Raises MqttError."""
        self = cls(on_message, keepalive, with_retain)
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._closed = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                _, self._protocol = await loop.create_connection(
                    lambda: _Protocol(self), endpoint.host, endpoint.port, ssl=endpoint.tls_context)
                self._write(self._connect_packet(client_id, endpoint.username, endpoint.password, clean_session))
                await self._connack
        except (OSError, TimeoutError) as error:
            self.close()
            raise MqttError(f"cannot connect to {endpoint.host}:{endpoint.port}: {error}") from None
        except MqttError:
            self.close()
            raise
        self._pinger = asyncio.create_task(self._ping_loop())
        return self

    def _connect_packet(self, client_id, username, password, clean_session):
        flags = 0x02 if clean_session else 0
        payload = _string(client_id)
        if username is not None:
            flags |= 0x80
            payload += _string(username)
            if password is not None:
                flags |= 0x40
                payload += _string(password)
        header = _string("MQTT") + struct.pack("!BBH", 4, flags, self._keepalive)
        return _packet(_CONNECT, header + payload)

    # --- requests ------------------------------------------------------------------------

    async def subscribe(self, filters, timeout=10):
        """Subscribe [(filter, qos)] in one packet; raises MqttError when the broker refuses one."""
        packet_id = self._new_id()
        body = struct.pack("!H", packet_id) + b"".join(_string(name) + bytes([qos]) for name, qos in filters)
        granted = await self._request(packet_id, _packet(_SUBSCRIBE, body), timeout)
        refused = [name for (name, _), code in zip(filters, granted, strict=False) if code == 0x80]
        if refused:
            raise Refused(f"subscription refused: {', '.join(refused)}")

    async def publish(self, topic, payload, qos=0, retain=False, timeout=5):
        """Publish; at QoS 1 return once the broker has acknowledged it. Raises MqttError."""
        first = _PUBLISH | qos << 1 | int(retain)
        if qos == 0:
            self._write(_packet(first, _string(topic) + payload))
            return
        packet_id = self._new_id()
        await self._request(packet_id, _packet(first, _string(topic) + struct.pack("!H", packet_id) + payload),
                            timeout)

    async def _request(self, packet_id, packet, timeout):
        future = asyncio.get_running_loop().create_future()
        self._waiting[packet_id] = future
        try:
            self._write(packet)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise MqttError("no answer from the broker") from None
        finally:
            self._waiting.pop(packet_id, None)

    def _new_id(self):
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._waiting:
                return self._next_id
        raise MqttError("too many requests in flight")

    def _write(self, packet):
        if self._closed.done():
            raise MqttError("not connected")
        self._protocol.transport.write(packet)

    # --- backpressure ----------------------------------------------------------------------

    def pause_reading(self):
        if not self._paused and not self._closed.done():
            self._paused = True
            self._protocol.transport.pause_reading()

    def resume_reading(self):
        if self._paused and not self._closed.done():
            self._paused = False
            self._heard = True  # what the broker said meanwhile is still unread: no silence to judge
            self._protocol.transport.resume_reading()

    # --- the session's end -----------------------------------------------------------------

    async def wait_closed(self):
        """Wait until the connection ends, then raise MqttError saying why."""
        await asyncio.shield(self._closed)

    def close(self):
        """Say DISCONNECT (so the broker drops no will) and close; wait_closed() then raises."""
        if self._pinger is not None:
            self._pinger.cancel()
        if self._protocol is not None and not self._closed.done():
            transport = self._protocol.transport
            transport.write(_packet(_DISCONNECT, b""))
            transport.close()
        self._fail(MqttError("closed by the client"))

    def _fail(self, error):
        """The connection is over: fail whatever waits on it, once."""
        if self._closed.done():
            return
        self._closed.set_exception(error)
        self._closed.exception()  # retrieved here: nobody need wait for the end to avoid asyncio's warning
        for future in (self._connack, *self._waiting.values()):
            if future is not None and not future.done():
                future.set_exception(error)
        if self._connack is not None and self._connack.done() and not self._connack.cancelled():
            self._connack.exception()  # retrieved: a connect that failed before the CONNACK never awaits it
        if self._protocol is not None:
            self._protocol.transport.abort()

    async def _ping_loop(self):
        """PINGREQ every keepalive/2 s; a broker silent for a whole interval after a ping ends the session."""
        interval = self._keepalive / 2
        self._heard = True  # the CONNACK
        while not self._closed.done():
            await asyncio.sleep(interval)
            if not self._heard and not self._paused:
                self._fail(MqttError(f"the broker was silent for {interval:.0f} s after a ping"))
                return
            self._heard = False
            self._protocol.transport.write(_packet(_PINGREQ, b""))

    # --- incoming packets --------------------------------------------------------------------

    def _received(self, first_byte, body):
        self._heard = True
        kind = first_byte & 0xF0
        if kind == _PUBLISH:
            self._publish_received(first_byte, body)
        elif kind in (_PUBACK, _SUBACK):
            future = self._waiting.get(int.from_bytes(body[:2]))
            if future is not None and not future.done():
                future.set_result(body[2:])
        elif kind == _CONNACK:
            if len(body) != 2:
                raise MqttError("malformed CONNACK")
            if body[1]:
                raise Refused("refused: " + _CONNACK_REASONS.get(body[1], f"code {body[1]}"))
            self.session_present = bool(body[0] & 1)
            if not self._connack.done():
                self._connack.set_result(None)
        elif kind != _PINGRESP:
            raise MqttError(f"unexpected packet type {kind >> 4}")

    def _publish_received(self, first_byte, body):
        qos = first_byte >> 1 & 3
        topic_end = 2 + int.from_bytes(body[:2])
        # A broker should refuse a topic that is not UTF-8; if one does not, the name is mangled, not fatal.
        topic = body[2:topic_end].decode(errors="replace")
        flag = (first_byte & 1,) if self._with_retain else ()
        if qos == 0:
            self._on_message(topic, body[topic_end:], *flag)
            return
        if qos != 1:
            raise MqttError("QoS 2 is not spoken here")
        puback = b"\x40\x02" + body[topic_end:topic_end + 2]
        done = self._on_message(topic, body[topic_end + 2:], *flag)
        if done is None and not self._unacked:
            self._outgoing.append(puback)  # the common case when nothing waits: acked with its chunk
            return
        self._unacked.append((puback, done))
        if done is not None and done is not self._watched:
            self._watched = done
            done.add_done_callback(self._release)

    def _release(self, _future=None):
        """PUBACK, in order, every message at the head of the queue that is done with."""
        unacked, pubacks = self._unacked, []
        while unacked:
            puback, done = unacked[0]
            if done is not None:
                if not done.done():
                    break
                if done.cancelled() or done.exception() is not None:
                    reason = "cancelled" if done.cancelled() else done.exception()
                    self._fail(MqttError(f"a message could not be handled ({reason}); it stays unacknowledged"))
                    return
            pubacks.append(puback)
            unacked.popleft()
        if pubacks and not self._closed.done():
            self._protocol.transport.write(b"".join(pubacks))

    def _flush(self):
        if self._outgoing and not self._closed.done():
            self._protocol.transport.write(b"".join(self._outgoing))
        self._outgoing.clear()
