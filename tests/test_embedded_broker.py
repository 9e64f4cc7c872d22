"""The embedded broker over real sockets on 127.0.0.1: logins, TLS, the topic ACL, wills,
keep-alive, forced disconnects, shutdown, packet sizes, and the amqtt 0.12.1 faults that
backend/broker/amqtt_fixes.py fixes (each test named after its fault fails on a stock broker).

Boards are aiomqtt clients over TLS, as the firmware's umqtt would be; a few tests speak
raw MQTT where a client library would be too polite (never pinging, never sending CONNECT).
"""

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time

import aiomqtt
import pytest
from mpfleet.backend import telemetry_batches
from mpfleet.backend.broker.amqtt_fixes import FixedBroker, _SubscriptionTable
from mpfleet.backend.broker.embedded import TLS_READ_BUFFER, EmbeddedBroker
from mpfleet.backend.broker.limits import MAX_PACKET_BYTES
from mpfleet.backend.broker.tls import ensure_certificates
from mpfleet.backend.listeners import ListenerError
from mpfleet.backend.storage import Storage
from mpfleet.backend.telemetry_batches import TelemetryBatches

from .mqtt_packets import mqtt_string, open_session, publish_packet, remaining_length, subscribe_packet
from .polling import eventually

A = "espressif32_AAAAAAAAAAAA"
B = "espressif8266_BBBBBBBBBBBB"
PASSWORDS = {A: "password-of-a", B: "password-of-b"}
ONLINE = b'{"online":true}'
OFFLINE = b'{"online":false}'
QUIET = 0.4  # seconds to wait for a message that must not come


def topic(uid, kind):
    return f"mpfleet/v1/{uid}/{kind}"


class FakeDevices:
    """verify_device backed by a dict; remembers whom it was asked about."""

    def __init__(self):
        self.passwords = dict(PASSWORDS)
        self.asked = []

    async def verify(self, uid, password):
        self.asked.append(uid)
        return self.passwords.get(uid) == password


@pytest.fixture(autouse=True)
def no_error_logs(caplog):
    """Whatever a client does, the broker logs no error (nor does asyncio on its behalf)."""
    yield
    errors = [record.getMessage() for when in ("setup", "call", "teardown")
              for record in caplog.get_records(when) if record.levelno >= logging.ERROR]
    assert not errors


@pytest.fixture
def tls_files(tmp_path):
    return ensure_certificates(tmp_path / "tls", [])


@pytest.fixture
def devices():
    return FakeDevices()


@pytest.fixture
def connected():
    return []


@pytest.fixture
async def broker(tls_files, devices, connected):
    broker = EmbeddedBroker(tls=tls_files, verify_device=devices.verify, plain_port=0,
                            tls_host="127.0.0.1", tls_port=0,
                            on_device_connected=lambda uid, ip: connected.append((uid, ip)))
    await broker.start()
    yield broker
    await broker.stop()


def tls_context(ca_file):
    return ssl.create_default_context(cafile=str(ca_file))


def device(broker, tls_files, uid, password=None, *, identifier=None):
    """An aiomqtt board over TLS with the protocol's last will."""
    return aiomqtt.Client(
        hostname="127.0.0.1", port=broker.tls_port, username=uid,
        password=PASSWORDS.get(uid, "x") if password is None else password,
        identifier=identifier or uid, tls_context=tls_context(tls_files.ca_cert),
        will=aiomqtt.Will(topic(uid, "status"), OFFLINE, qos=1, retain=True), keepalive=60,
    )


def backend(broker, identifier="mpfleet-backend-test"):
    return aiomqtt.Client(hostname="127.0.0.1", port=broker.plain_port, username=broker.backend_username,
                          password=broker.backend_password, identifier=identifier)


async def next_message(client, timeout=2.0):
    """The next message the client receives; TimeoutError if none comes in time."""
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            return message


async def messages_within(client, seconds=QUIET):
    """Every message the client receives in the next `seconds`."""
    received = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                received.append(message)
    return received


async def message_on(client, wanted_topic, timeout=2.0):
    """The first message on `wanted_topic`, skipping others."""
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            if message.topic.matches(wanted_topic):
                return message


async def until_disconnected(client, timeout=2.0):
    """Wait until the broker drops the client's connection."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(aiomqtt.MqttError):
            async for _ in client.messages:
                pass


# --- logins and TLS -----------------------------------------------------------------------


async def test_device_connects_over_tls_and_backend_sees_its_topics(broker, tls_files, connected):
    async with backend(broker) as server, device(broker, tls_files, A) as board:
        await server.subscribe("mpfleet/v1/#", qos=1)
        await board.publish(topic(A, "status"), ONLINE, qos=1, retain=True)
        await board.publish(topic(A, "telemetry"), b'{"ts":null,"values":{"t":21.5}}', qos=1)

        first, second = await next_message(server), await next_message(server)

    assert (str(first.topic), first.payload) == (topic(A, "status"), ONLINE)
    assert (str(second.topic), json.loads(second.payload)["values"]) == (topic(A, "telemetry"), {"t": 21.5})
    assert connected == [(A, "127.0.0.1")]  # the backend account is not a device


async def test_backend_account_works_on_the_tls_listener_too(broker, tls_files):
    client = aiomqtt.Client(hostname="127.0.0.1", port=broker.tls_port, username=broker.backend_username,
                            password=broker.backend_password, tls_context=tls_context(tls_files.ca_cert))
    async with client:
        await client.subscribe(topic(B, "cmd"))


async def test_tls_connections_get_the_small_read_buffer(broker, tls_files):
    # asyncio's default is 256 KiB per connection (embedded.py, _small_tls_read_buffers).
    async with device(broker, tls_files, A):
        [connection] = broker._broker._writers
        ssl_protocol = connection._transport._ssl_protocol  # asyncio's, on the broker's side

    assert len(ssl_protocol._ssl_buffer) == TLS_READ_BUFFER


@pytest.mark.parametrize("username, password, identifier, asks_app", [
    (A, "wrong", A, True),
    ("espressif32_UNKNOWNUNKNO", "password-of-a", "espressif32_UNKNOWNUNKNO", True),
    (A, "password-of-a", B, False),  # right password, someone else's client id
    (A, "", A, False),
    ("mpfleet/v1/#", "x", "mpfleet/v1/#", False),
    ("mpfleet-backend", "guess", "mpfleet-backend", False),
])
async def test_bad_logins_are_refused(broker, tls_files, devices, username, password, identifier, asks_app):
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authori"):
        async with device(broker, tls_files, username, password, identifier=identifier):
            pass

    assert devices.asked == ([username] if asks_app else [])


async def test_disabled_device_is_refused(broker, tls_files, devices):
    del devices.passwords[A]

    with pytest.raises(aiomqtt.MqttCodeError, match="Not authori"):
        async with device(broker, tls_files, A):
            pass


async def test_a_broker_certificate_from_another_ca_is_refused(broker, tls_files, tmp_path):
    other = ensure_certificates(tmp_path / "other-tls", [])
    # Raw TLS rather than aiomqtt: paho leaks its socket when the handshake fails, and the
    # ResourceWarning would fail this test instead.
    with pytest.raises(ssl.SSLCertVerificationError):
        await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=60, ca_file=other.ca_cert)


# --- topic ACL ------------------------------------------------------------------------------


async def test_device_cannot_subscribe_outside_its_topics(broker, tls_files):
    async with device(broker, tls_files, A) as board:
        own = await board.subscribe(topic(A, "#"), qos=1)
        refused = [await board.subscribe(f, qos=1)
                   for f in (topic(B, "#"), topic(B, "cmd"), "#", "mpfleet/v1/+/status", "mpfleet/#", "+/v1/+/cmd")]

    assert not own[0].is_failure
    assert all(codes[0].is_failure for codes in refused)


async def test_device_cannot_publish_outside_its_topics(broker, tls_files):
    async with backend(broker) as server, device(broker, tls_files, A) as a, device(broker, tls_files, B) as b:
        await server.subscribe("#", qos=1)
        await b.subscribe(topic(B, "#"), qos=1)
        await a.publish(topic(B, "cmd"), b'{"id":"x","type":"reboot","payload":{}}', qos=1)
        await a.publish(topic(B, "status"), OFFLINE, qos=1, retain=True)
        await a.publish(f"mpfleet/v1/{A}", b"{}", qos=1)  # the prefix is "<uid>/", not "<uid>"
        await a.publish("elsewhere", b"{}", qos=0)
        await a.publish(topic(A, "telemetry"), b"{}", qos=1)  # the one allowed

        seen_by_backend = await messages_within(server)
        seen_by_b = await messages_within(b, 0.1)

    assert [str(m.topic) for m in seen_by_backend] == [topic(A, "telemetry")]
    assert seen_by_b == []


async def test_device_receives_commands_for_itself_only(broker, tls_files):
    async with backend(broker) as server, device(broker, tls_files, A) as a, device(broker, tls_files, B) as b:
        await a.subscribe(topic(A, "cmd"), qos=1)
        await b.subscribe(topic(B, "cmd"), qos=1)
        await server.publish(topic(A, "cmd"), b'{"id":"1"}', qos=1)

        got = await next_message(a)
        seen_by_b = await messages_within(b)

    assert str(got.topic) == topic(A, "cmd")
    assert seen_by_b == []


async def test_fault_d_retained_status_of_a_is_not_sent_to_b(broker, tls_files):
    async with backend(broker) as server:
        await server.subscribe("mpfleet/v1/#", qos=1)  # amqtt replayed retained messages for this filter
        async with device(broker, tls_files, A) as a:
            await a.publish(topic(A, "status"), ONLINE, qos=1, retain=True)
            await message_on(server, topic(A, "status"))
            async with device(broker, tls_files, B) as b:
                await b.subscribe(topic(B, "#"), qos=1)
                seen_by_b = await messages_within(b)
            # A still gets its own retained status when it subscribes.
            await a.subscribe(topic(A, "status"), qos=1)
            own = await next_message(a)

    assert seen_by_b == []
    assert (own.payload, own.retain) == (ONLINE, True)


# --- sessions -------------------------------------------------------------------------------


async def test_fault_b_failed_login_with_a_live_id_leaves_the_session_alone(broker, tls_files):
    async with backend(broker) as server, device(broker, tls_files, A) as a:
        await a.subscribe(topic(A, "cmd"), qos=1)

        with pytest.raises(aiomqtt.MqttCodeError, match="Not authori"):
            async with device(broker, tls_files, A, "wrong"):
                pass
        await server.publish(topic(A, "cmd"), b'{"id":"2"}', qos=1)

        got = await next_message(a)

    assert got.payload == b'{"id":"2"}'


async def test_fault_c_take_over_closes_the_first_connection(broker, tls_files):
    async with backend(broker) as server:
        await server.subscribe(topic(A, "status"), qos=1)
        first = device(broker, tls_files, A)
        await first.__aenter__()
        try:
            await first.publish(topic(A, "status"), ONLINE, qos=1, retain=True)
            async with device(broker, tls_files, A) as second:
                await until_disconnected(first, timeout=1.0)  # closed by the broker, not by us
                await second.publish(topic(A, "status"), ONLINE, qos=1, retain=True)
                await asyncio.sleep(0.2)
                async with backend(broker, "mpfleet-backend-late") as late:
                    await late.subscribe(topic(A, "status"), qos=1)
                    retained = await next_message(late)
        finally:
            await first.__aexit__(None, None, None)

        statuses = [m.payload for m in await messages_within(server, 0.1)]

    assert (retained.payload, retained.retain) == (ONLINE, True)
    # first online, the first connection's will at take-over, the second's online, then
    # the second's clean DISCONNECT (its offline status in place of the will): nothing after it.
    assert statuses == [ONLINE, OFFLINE, ONLINE, OFFLINE]


async def test_disconnect_cuts_the_session_and_publishes_its_will(broker, tls_files):
    async with backend(broker) as server, device(broker, tls_files, A) as board:
        await server.subscribe(topic(A, "status"), qos=1)
        await board.publish(topic(A, "status"), ONLINE, qos=1, retain=True)
        assert (await next_message(server)).payload == ONLINE
        started = time.monotonic()

        assert await broker.disconnect(A) is True
        await until_disconnected(board, timeout=1.0)
        will = await next_message(server, timeout=1.0)
        elapsed = time.monotonic() - started

        async with backend(broker, "mpfleet-backend-late") as late:
            await late.subscribe(topic(A, "status"), qos=1)
            retained = await next_message(late)

    assert will.payload == OFFLINE
    assert elapsed < 1.0
    assert (retained.payload, retained.retain) == (OFFLINE, True)
    assert await broker.disconnect(A) is False
    assert await broker.disconnect("espressif32_NOSUCHDEVICE") is False


async def test_fault_a_silent_client_is_dropped_after_one_and_a_half_keepalives(broker, tls_files):
    async with backend(broker) as server:
        await server.subscribe(topic(A, "status"), qos=1)
        reader, writer = await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=1,
                                           will=(topic(A, "status"), OFFLINE), ca_file=tls_files.ca_cert)
        started = time.monotonic()
        try:
            will = await next_message(server, timeout=3.0)
            elapsed = time.monotonic() - started
            closed = await asyncio.wait_for(reader.read(), 1.0)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    assert will.payload == OFFLINE
    assert 1.3 < elapsed < 2.2, elapsed
    assert closed == b""  # the broker closed the socket


async def test_fault_e_messages_acked_before_a_disconnect_are_all_routed(broker, tls_files, devices):
    # Each board pipelines a QoS 1 burst, reads every PUBACK, then leaves at once: half with
    # DISCONNECT, half by closing the socket (their offline status, or their will, must come
    # after their messages).
    # amqtt routed a client's accepted messages one by one and dropped the rest on leaving.
    boards = [f"espressif32_E{n:011d}" for n in range(6)]
    devices.passwords.update({uid: f"password-of-{uid}" for uid in boards})
    burst = 400
    async with backend(broker) as server:
        await server.subscribe("mpfleet/v1/#", qos=1)
        await asyncio.gather(*(publish_burst_and_leave(broker, tls_files, uid, burst, clean=n % 2 == 0)
                               for n, uid in enumerate(boards)))
        received = await messages_until(server, (burst + 1) * len(boards))

    for uid in boards:
        from_board = [m.payload for m in received if str(m.topic).startswith(f"mpfleet/v1/{uid}/")]
        assert from_board == [b"%d" % i for i in range(burst)] + [OFFLINE], (uid, len(from_board))


async def publish_burst_and_leave(broker, tls_files, uid, count, *, clean):
    """Publish `count` QoS 1 messages without waiting, wait for every PUBACK, then leave:
    with DISCONNECT when `clean`, else by closing the socket (the will is published)."""
    reader, writer = await raw_connect(broker.tls_port, uid, f"password-of-{uid}", keepalive=60,
                                       will=(topic(uid, "status"), OFFLINE), ca_file=tls_files.ca_cert)
    try:
        writer.write(b"".join(publish_packet(topic(uid, "telemetry"), b"%d" % i, i + 1) for i in range(count)))
        await writer.drain()
        acks = await asyncio.wait_for(reader.readexactly(4 * count), 10.0)
        assert sorted(acks[i:i + 4] for i in range(0, len(acks), 4)) == \
            sorted(b"\x40\x02" + (i + 1).to_bytes(2, "big") for i in range(count))
        if clean:
            writer.write(b"\xe0\x00")  # DISCONNECT
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def messages_until(client, count, quiet=1.0):
    """Messages received until `count` have come, or none for `quiet` seconds."""
    received = []
    with contextlib.suppress(TimeoutError):
        while len(received) < count:
            received.append(await next_message(client, timeout=quiet))
    return received


async def test_fault_g_subscribing_while_messages_are_routed_loses_none(broker, tls_files):
    # amqtt walked the live subscription table while awaiting the ACL: a filter added meanwhile ended
    # the walk, and the subscribers after that point never got the message.
    count = 200
    async with backend(broker) as first, backend(broker, "mpfleet-backend-second") as second, \
            device(broker, tls_files, B) as subscriber:
        await first.subscribe("mpfleet/v1/#", qos=1)
        await second.subscribe(topic(A, "telemetry"), qos=1)  # after `first` in the table
        reader, writer = await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=60, ca_file=tls_files.ca_cert)
        try:
            writer.write(b"".join(publish_packet(topic(A, "telemetry"), b"%d" % i, i + 1) for i in range(count)))
            await asyncio.gather(*(subscriber.subscribe(topic(B, f"f{i}"), qos=1) for i in range(count)))
            received = await messages_until(second, count)
        finally:
            writer.close()

    assert [m.payload for m in received] == [b"%d" % i for i in range(count)]


# --- packet sizes ---------------------------------------------------------------------------


async def test_fault_f_a_publish_over_the_limit_is_refused_from_its_header(broker, tls_files):
    # Only the fixed header is sent: a broker that waits for the body before judging never answers.
    async with backend(broker) as server:
        await server.subscribe("mpfleet/v1/#", qos=1)
        reader, writer = await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=60,
                                           will=(topic(A, "status"), OFFLINE), ca_file=tls_files.ca_cert)
        try:
            writer.write(b"\x32" + remaining_length(1_000_000))
            closed = await asyncio.wait_for(reader.read(), 2.0)
        finally:
            writer.close()
        seen = await messages_within(server)

    assert closed == b""
    assert [(str(m.topic), m.payload) for m in seen] == [(topic(A, "status"), OFFLINE)]  # its will, nothing else


async def test_fault_f_a_connect_over_the_limit_is_refused_before_any_login(broker, tls_files, devices):
    context = tls_context(tls_files.ca_cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.tls_port, ssl=context)
    try:
        writer.write(b"\x10" + remaining_length(MAX_PACKET_BYTES))  # with its type byte: one over
        closed = await asyncio.wait_for(reader.read(), 2.0)
    finally:
        writer.close()

    assert closed == b""
    assert devices.asked == []


async def test_a_packet_of_exactly_the_limit_is_routed(broker, tls_files):
    name = topic(A, "telemetry")
    payload = b"x" * (MAX_PACKET_BYTES - 1 - len(mqtt_string(name)) - 2)  # - type byte, topic, packet id
    packet = publish_packet(name, payload, 1)
    assert len(packet) == MAX_PACKET_BYTES + 2  # the two bytes of the remaining length are not counted
    async with backend(broker) as server:
        await server.subscribe(name, qos=1)
        reader, writer = await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=60, ca_file=tls_files.ca_cert)
        try:
            writer.write(packet)
            assert await asyncio.wait_for(reader.readexactly(4), 2.0) == b"\x40\x02\x00\x01"  # PUBACK
            received = await next_message(server)
        finally:
            writer.close()

    assert received.payload == payload


# --- telemetry: acknowledged once committed --------------------------------------------------


@pytest.fixture
async def storing_broker(tls_files, devices, tmp_path):
    """(broker, batches, storage, boards): a broker whose boards' telemetry goes to `batches` on a real
    database, where two boards are registered (their password: PASSWORDS[A])."""
    storage = Storage(tmp_path / "data")
    await storage.open()
    user, _ = await storage.users.create("alice")
    boards = [await storage.devices.create(user.id, name=name, description=None, platform_key="unix",
                                           board_key="unix", password=PASSWORDS[A]) for name in ("d1", "d2")]
    devices.passwords.update({board.uid: PASSWORDS[A] for board in boards})
    batches = TelemetryBatches(storage)
    writing = asyncio.create_task(batches.run())
    broker = EmbeddedBroker(tls=tls_files, verify_device=devices.verify, plain_port=0,
                            tls_host="127.0.0.1", tls_port=0, telemetry=batches)
    await broker.start()
    try:
        yield broker, batches, storage, boards
    finally:
        await broker.stop()
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
        await storage.close()


async def test_a_board_lost_before_its_puback_leaves_its_batch_and_its_next_session_acknowledged(
        storing_broker, tls_files, monkeypatch):
    # Seen with the emulated board SIGKILLed while it waited for the PUBACK of its telemetry: the
    # broker's task for that PUBLISH, cancelled with the connection while it awaited the batch's
    # commit, cancelled the batch's future, which every message of the batch shares: the other
    # boards' messages of the batch were never acknowledged, the writer died on setting the result,
    # and no telemetry was acknowledged again (every later session of the board timed out).
    broker, batches, storage, (lost, other) = storing_broker
    monkeypatch.setattr(telemetry_batches, "WRITE_GAP_SECONDS", 0.5)  # the batch is still open when the board goes

    async def both_taken():
        return batches.backlog == 2

    lost_reader, lost_writer = await board_session(broker, tls_files, lost)
    other_reader, other_writer = await board_session(broker, tls_files, other)
    try:
        lost_writer.write(publish_packet(topic(lost.uid, "telemetry"), b'{"values":{"n":1}}', 1))
        assert await asyncio.wait_for(lost_reader.readexactly(4), 2.0) == PUBACK_1  # written at once
        other_writer.write(publish_packet(topic(other.uid, "telemetry"), b'{"values":{"n":10}}', 1))
        lost_writer.write(publish_packet(topic(lost.uid, "telemetry"), b'{"values":{"n":2}}', 2))
        await eventually(both_taken)  # in the batch that waits for the gap after the first write
        lost_writer.transport.abort()  # the power cut: no DISCONNECT, no TLS close
        other_puback = await asyncio.wait_for(other_reader.readexactly(4), 3.0)

        reader, writer = await board_session(broker, tls_files, lost)
        try:
            writer.write(publish_packet(topic(lost.uid, "telemetry"), b'{"values":{"n":3}}', 1))  # numbered anew
            again = await asyncio.wait_for(reader.readexactly(4), 3.0)
        finally:
            writer.close()
    finally:
        other_writer.close()

    assert (other_puback, again) == (PUBACK_1, PUBACK_1)
    assert sorted(s.value for s in await storage.telemetry.history(lost, key="n", limit=10)) == [1, 2, 3]
    assert [s.value for s in await storage.telemetry.history(other, key="n", limit=10)] == [10]


PUBACK_1 = b"\x40\x02\x00\x01"


async def board_session(broker, tls_files, board):
    return await raw_connect(broker.tls_port, board.uid, PASSWORDS[A], keepalive=60, ca_file=tls_files.ca_cert)


# --- lifetime -------------------------------------------------------------------------------


async def test_stop_with_clients_connected_is_prompt_and_clean(tls_files, devices):
    # Raw clients: they never retry, never ack, and leave no task of their own behind.
    tasks_before = asyncio.all_tasks()
    broker = EmbeddedBroker(tls=tls_files, verify_device=devices.verify, plain_port=0,
                            tls_host="127.0.0.1", tls_port=0)
    await broker.start()
    subscriber = await raw_connect(broker.plain_port, "mpfleet-backend-raw", broker.backend_password,
                                   username=broker.backend_username, keepalive=60)
    subscriber[1].write(subscribe_packet("mpfleet/v1/#", qos=1))  # and never acks what it gets
    publisher = await raw_connect(broker.tls_port, A, PASSWORDS[A], keepalive=60, ca_file=tls_files.ca_cert,
                                  will=(topic(A, "status"), OFFLINE))
    silent = await raw_connect(broker.tls_port, B, PASSWORDS[B], keepalive=60, ca_file=tls_files.ca_cert)
    mute = await asyncio.open_connection("127.0.0.1", broker.plain_port)  # never sends CONNECT
    streaming = asyncio.create_task(publish_until_dropped(publisher[1]))
    received = asyncio.create_task(read_until_eof(subscriber[0]))
    await asyncio.sleep(0.3)

    started = time.monotonic()
    await broker.stop()
    elapsed = time.monotonic() - started

    published = await asyncio.wait_for(streaming, 1.0)
    assert await asyncio.wait_for(received, 1.0) > 1000  # messages flowed until the end
    for reader, writer in (silent, mute):
        assert await asyncio.wait_for(reader.read(), 1.0) == b""  # closed by the broker
    for _, writer in (subscriber, publisher, silent, mute):
        writer.close()
    await asyncio.sleep(0)
    left = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert elapsed < 2.0
    assert published > 100
    assert not left, left


async def test_start_again_after_stop(broker, tls_files):
    await broker.stop()
    await broker.start()

    async with device(broker, tls_files, A) as board:
        await board.publish(topic(A, "status"), ONLINE, qos=1)


async def test_start_fails_cleanly_when_a_port_is_taken(tls_files, devices):
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken_port = taken.sockets[0].getsockname()[1]
    with socket.socket() as probe:  # a free port for the plain listener, bound before the TLS one fails
        probe.bind(("127.0.0.1", 0))
        plain_port = probe.getsockname()[1]
    broker = EmbeddedBroker(tls=tls_files, verify_device=devices.verify, plain_port=plain_port,
                            tls_host="127.0.0.1", tls_port=taken_port)
    try:
        with pytest.raises(ListenerError) as refused:
            await broker.start()
        assert str(refused.value) == f"cannot listen on 127.0.0.1:{taken_port} (MQTT over TLS): Address already in use"
        await broker.stop()  # harmless after a failed start
        # The plain listener was closed again: its port can be bound.
        again = await asyncio.start_server(lambda r, w: None, "127.0.0.1", plain_port)
        again.close()
        await again.wait_closed()
    finally:
        taken.close()
        await taken.wait_closed()


async def publish_until_dropped(writer):
    """Publish QoS 1 telemetry as fast as the broker takes it; return how many were sent."""
    sent = 0
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(publish_packet(topic(A, "telemetry"), b'{"ts":null,"values":{"n":1}}', sent % 65535 + 1))
            await writer.drain()
            await asyncio.sleep(0)  # drain() does not yield until the buffer fills: let the broker run
            sent += 1
    return sent


async def read_until_eof(reader):
    received = 0
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += len(chunk)
    return received


# --- raw MQTT 3.1.1 -------------------------------------------------------------------------


async def raw_connect(port, client_id, password, *, keepalive, will=None, ca_file=None, username=None):
    """Connect (over TLS when given a CA), send CONNECT, check the CONNACK; then stay silent."""
    context = tls_context(ca_file) if ca_file else None
    return await open_session(port, context, client_id, password, keepalive=keepalive, will=will, username=username)


def test_fault_h_the_subscription_table_finds_a_topics_filters_without_matching_every_one():
    """A message is matched against the wildcard filters only, and looked up for its own topic (amqtt_fixes H)."""
    class Matcher:  # amqtt's _matches, counted
        calls = 0

        def _matches(self, topic, a_filter):
            Matcher.calls += 1
            return FixedBroker._matches(None, topic, a_filter)

    table = _SubscriptionTable()
    for n in range(100):
        table[f"mpfleet/v1/dev{n}/cmd"] = []
    table["mpfleet/v1/+/status"] = []
    table["mpfleet/#"] = []
    assert sorted(table.matching(Matcher(), "mpfleet/v1/dev7/cmd")) == ["mpfleet/#", "mpfleet/v1/dev7/cmd"]
    assert Matcher.calls == 2  # the two wildcard filters, not the 102
    assert sorted(table.matching(Matcher(), "mpfleet/v1/dev7/status")) == ["mpfleet/#", "mpfleet/v1/+/status"]
    del table["mpfleet/#"]
    assert table.matching(Matcher(), "mpfleet/v1/dev7/cmd") == ["mpfleet/v1/dev7/cmd"]
    table.clear()
    assert table.matching(Matcher(), "mpfleet/v1/dev7/status") == [] and not table.wildcards
