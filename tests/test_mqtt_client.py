"""backend/mqtt_client.py against the real embedded broker on 127.0.0.1, logged in as the backend."""

import asyncio
import dataclasses
import socket

import pytest
from mpfleet.backend import keys
from mpfleet.backend.broker.limits import MAX_PACKET_BYTES
from mpfleet.backend.mqtt_client import MqttClient, MqttError


@pytest.fixture
def endpoint(backend):
    return backend.client.app[keys.BROKER_ENDPOINT]


class Inbox:
    def __init__(self):
        self.messages = []
        self.arrived = asyncio.Event()

    def __call__(self, topic, payload):
        self.messages.append((topic, payload))
        self.arrived.set()

    async def until(self, count, timeout=10):
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.messages


async def connect(endpoint, name, inbox=None, **options):
    return await MqttClient.connect(endpoint, name, inbox or Inbox(), **options)


async def test_messages_arrive_whole_and_in_order_at_both_qos(endpoint):
    inbox = Inbox()
    receiver = await connect(endpoint, "receiver", inbox)
    sender = await connect(endpoint, "sender")
    try:
        await receiver.subscribe([("t/q0", 0), ("t/q1", 1)])
        for number in range(300):
            await sender.publish("t/q0" if number % 2 else "t/q1", b"%d" % number, qos=number % 2)
        # Large packets sent back to back fill many reads of the socket, cut anywhere: each must come out whole.
        large = [bytes([n]) * (MAX_PACKET_BYTES - 20) for n in range(40)]
        for payload in large:
            await sender.publish("t/q0", payload, qos=0)
        messages = await inbox.until(340)
    finally:
        sender.close()
        receiver.close()
    assert [payload for _, payload in messages[:300]] == [b"%d" % number for number in range(300)]
    assert messages[0][0] == "t/q1" and messages[1][0] == "t/q0"
    assert messages[300:] == [("t/q0", payload) for payload in large]


async def test_retained_message_reaches_a_later_subscriber(endpoint):
    sender = await connect(endpoint, "sender")
    await sender.publish("t/retained", b"kept", qos=1, retain=True)
    sender.close()
    inbox = Inbox()
    receiver = await connect(endpoint, "receiver", inbox)
    try:
        await receiver.subscribe([("t/#", 1)])
        assert await inbox.until(1) == [("t/retained", b"kept")]
    finally:
        receiver.close()


async def test_wrong_password_is_refused(endpoint):
    wrong = dataclasses.replace(endpoint, password="not-the-password")
    with pytest.raises(MqttError, match="refused"):
        await connect(wrong, "intruder")


async def test_nothing_listening_is_a_clear_error(endpoint):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MqttError, match=f"cannot connect to 127.0.0.1:{port}"):
        await connect(dataclasses.replace(endpoint, port=port), "nobody")


async def test_requests_fail_once_the_broker_is_gone(backend, endpoint):
    client = await connect(endpoint, "left-behind")
    await backend.stop()
    try:
        with pytest.raises(MqttError):
            async with asyncio.timeout(10):
                await client.wait_closed()
        with pytest.raises(MqttError, match="not connected"):
            await client.publish("t/x", b"late", qos=1)
    finally:
        await backend.start()


async def test_close_ends_the_session_and_says_so(endpoint):
    client = await connect(endpoint, "polite")
    client.close()
    with pytest.raises(MqttError, match="closed by the client"):
        await client.wait_closed()
