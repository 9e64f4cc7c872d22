"""MQTT load generator for bench/mqtt_bench.py: many device sessions in one asyncio process.

Each session is what docs/protocol.md asks of a board, in raw MQTT 3.1.1 over verified TLS:
CONNECT (client id = username = uid, clean session, keepalive 60, retained will
`{"online":false}` on .../status), then a retained `{"online":true}` status (QoS 1).

    python bench/mqtt_load.py sessions SPEC.json   # hold sessions, one telemetry message (QoS 0) every period
    python bench/mqtt_load.py ackers SPEC.json     # hold sessions subscribed to .../cmd, ack each command at once

SPEC.json: {"port", "ca_file", "devices": [{"uid", "password"}], "period", "messages", "hold", "in_flight"}.
Events go to stdout as JSON lines ({"event": "connected", ...}, {"event": "held", ...},
{"event": "ready"}, {"event": "result", ...}); the process then waits for a line on stdin before
it says goodbye (an offline status, DISCONNECT) and prints its result. Every wait is bounded.
"""

import asyncio
import asyncio.sslproto
import json
import random
import ssl
import struct
import sys
import time

# asyncio (3.11) gives every TLS connection a 256 KiB read buffer: 2.5 GB for 10,000 sessions.
# A device session never needs more than a TLS record or two.
asyncio.sslproto.SSLProtocol.max_size = 32 * 1024

KEEPALIVE = 60
STDIN_TIMEOUT = 300  # never outlive the bench that started us by more than this
CONNECT_TIMEOUT = 30
ONLINE = b'{"online":true}'
OFFLINE = b'{"online":false}'
TELEMETRY = b'{"ts": null, "values": {"t": 21.5}}'

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 14


# --- MQTT 3.1.1 packets ---------------------------------------------------------------------------

def _utf8(text):
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def _packet(kind, flags, body):
    n, length = len(body), bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            return bytes([kind << 4 | flags]) + bytes(length) + body


def connect_packet(uid, password):
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02  # user, password, will retain, will QoS 1, will, clean
    variable = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", KEEPALIVE)
    payload = _utf8(uid) + _utf8(f"mpfleet/v1/{uid}/status") + _utf8(OFFLINE) + _utf8(uid) + _utf8(password)
    return _packet(CONNECT, 0, variable + payload)


def publish_packet(topic, payload, qos=0, retain=False, packet_id=0):
    head = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"")
    return _packet(PUBLISH, qos << 1 | int(retain), head + payload)


def subscribe_packet(packet_id, topic, qos=1):
    return _packet(SUBSCRIBE, 2, struct.pack("!H", packet_id) + _utf8(topic) + bytes([qos]))


async def read_packet(reader):
    """(type, flags, body) of the next packet."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, first & 0x0F, await reader.readexactly(length)


def parse_publish(flags, body):
    """(topic, packet id or None, payload) of a PUBLISH body."""
    (size,) = struct.unpack_from("!H", body)
    topic, rest = body[2:2 + size].decode(), body[2 + size:]
    if flags & 0x06:
        return topic, struct.unpack_from("!H", rest)[0], rest[2:]
    return topic, None, rest


# --- one device ------------------------------------------------------------------------------------

class Session:
    def __init__(self, device, port, context):
        self.uid, self.password = device["uid"], device["password"]
        self.port, self.context = port, context
        self.reader = self.writer = None
        self.next_id = 0
        self.last_sent = 0.0

    def topic(self, kind):
        return f"mpfleet/v1/{self.uid}/{kind}"

    def packet_id(self):
        self.next_id = self.next_id % 65535 + 1
        return self.next_id

    async def connect(self):
        """TCP + TLS + CONNECT/CONNACK, then the retained online status. Returns the seconds it took."""
        start = time.monotonic()
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context, server_hostname="127.0.0.1")
        self.send(connect_packet(self.uid, self.password))
        kind, _, body = await read_packet(self.reader)
        if kind != CONNACK or body[1] != 0:
            raise ConnectionRefusedError(f"{self.uid}: CONNACK {body!r}")
        elapsed = time.monotonic() - start
        self.send(publish_packet(self.topic("status"), ONLINE, qos=1, retain=True, packet_id=self.packet_id()))
        return elapsed

    def send(self, data):
        self.writer.write(data)
        self.last_sent = time.monotonic()

    def ping_if_idle(self):
        if time.monotonic() - self.last_sent > KEEPALIVE / 2:
            self.send(_packet(PINGREQ, 0, b""))

    async def goodbye(self):
        """What a board's clean shutdown looks like: offline status, then DISCONNECT."""
        try:
            self.send(publish_packet(self.topic("status"), OFFLINE, qos=1, retain=True, packet_id=self.packet_id()))
            self.send(_packet(DISCONNECT, 0, b""))
            await asyncio.wait_for(self.writer.drain(), 5)
            self.writer.close()
        except (OSError, TimeoutError):
            pass


async def drain_incoming(session, on_publish=None):
    """Read everything the broker sends; PUBLISH goes to `on_publish(session, flags, body)`."""
    try:
        while True:
            kind, flags, body = await read_packet(session.reader)
            if kind == PUBLISH and on_publish is not None:
                on_publish(session, flags, body)
    except (asyncio.IncompleteReadError, OSError):
        pass


# --- the fleet -------------------------------------------------------------------------------------

def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


async def connect_all(spec, after_connect=None):
    """Connect every device, `in_flight` handshakes at a time. Returns (sessions, latencies, failures)."""
    context = ssl.create_default_context(cafile=spec["ca_file"])
    limit = asyncio.Semaphore(spec.get("in_flight", 100))
    sessions, latencies, failures = [], [], []

    async def one(device):
        async with limit:
            session = Session(device, spec["port"], context)
            try:
                latencies.append(await asyncio.wait_for(session.connect(), CONNECT_TIMEOUT))
                if after_connect:
                    await after_connect(session)
                sessions.append(session)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                failures.append(f"{device['uid']}: {error!r}")

    await asyncio.gather(*(one(device) for device in spec["devices"]))
    return sessions, latencies, failures


async def wait_for_stdin_line():
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), STDIN_TIMEOUT)
    except TimeoutError:
        pass


async def telemetry_loop(session, start, spec, counter):
    """`messages` telemetry messages, `period` apart, from a random phase; pings if idle."""
    offset = random.uniform(0, spec["period"])
    for k in range(spec["messages"]):
        await asyncio.sleep(max(0.0, start + offset + k * spec["period"] - time.monotonic()))
        session.send(publish_packet(session.topic("telemetry"), TELEMETRY))
        counter[0] += 1


async def keepalive_loop(sessions, stop):
    while not stop.is_set():
        for session in sessions:
            session.ping_if_idle()
        try:
            await asyncio.wait_for(stop.wait(), 5)
        except TimeoutError:
            pass


async def run_sessions(spec):
    started = time.monotonic()
    sessions, latencies, failures = await connect_all(spec)
    connect_seconds = time.monotonic() - started
    readers = [asyncio.create_task(drain_incoming(s)) for s in sessions]
    emit("connected", sessions=len(sessions), failures=len(failures), first_failures=failures[:3],
         seconds=connect_seconds, p50=percentile(latencies, 50), p99=percentile(latencies, 99),
         max=max(latencies, default=None))
    sent, hold_start = [0], time.monotonic()
    await asyncio.gather(*(telemetry_loop(s, hold_start, spec, sent) for s in sessions))
    await asyncio.sleep(max(0.0, hold_start + spec["hold"] - time.monotonic()))
    lost = sum(reader.done() for reader in readers)  # connections the broker closed meanwhile
    emit("held", sent=sent[0], seconds=time.monotonic() - hold_start, closed_by_broker=lost)
    await hold_until_told(sessions, readers)
    emit("result", sent=sent[0])


async def hold_until_told(sessions, readers):
    """Keep the sessions alive (pings) until the parent writes a line, then say goodbye and stop reading."""
    stop = asyncio.Event()
    pinger = asyncio.create_task(keepalive_loop(sessions, stop))
    await wait_for_stdin_line()
    stop.set()
    await pinger
    await asyncio.gather(*(s.goodbye() for s in sessions))
    for reader in readers:
        reader.cancel()


async def run_ackers(spec):
    """Sessions that ack every command `accepted`, then `done`, as soon as it arrives."""
    received = {}  # command id -> (received at, done sent at), wall clock

    def on_command(session, flags, body):
        now = time.time()
        _, packet_id, payload = parse_publish(flags, body)
        if packet_id is not None:
            session.send(_packet(PUBACK, 0, struct.pack("!H", packet_id)))
        command_id = json.loads(payload)["id"]
        for state in ("accepted", "done"):
            ack = json.dumps({"id": command_id, "state": state}).encode()
            session.send(publish_packet(session.topic("ack"), ack, qos=1, packet_id=session.packet_id()))
        received[command_id] = (now, time.time())

    async def subscribe(session):
        session.send(subscribe_packet(session.packet_id(), session.topic("cmd")))
        while True:  # the PUBACK of the status may come first
            kind, _, _ = await asyncio.wait_for(read_packet(session.reader), CONNECT_TIMEOUT)
            if kind == SUBACK:
                return

    started = time.monotonic()
    sessions, latencies, failures = await connect_all(spec, after_connect=subscribe)
    readers = [asyncio.create_task(drain_incoming(s, on_command)) for s in sessions]
    emit("ready", sessions=len(sessions), failures=len(failures), first_failures=failures[:3],
         seconds=time.monotonic() - started)
    await hold_until_told(sessions, readers)
    emit("result", commands=received)


def main():
    mode, spec_path = sys.argv[1], sys.argv[2]
    spec = json.loads(open(spec_path).read())
    asyncio.run({"sessions": run_sessions, "ackers": run_ackers}[mode](spec))


if __name__ == "__main__":
    main()
