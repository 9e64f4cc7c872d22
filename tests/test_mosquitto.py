"""MosquittoAdmin against a real Mosquitto 2 with dynamic security: accounts, confinement, revocation.

Devices connect as boards do: MQTT 3.1.1 over TLS, verifying the broker against our CA, with
their uid as client id and username and the offline status as their will. Absence of a message
is shown without sleeping: a later message that must arrive after it (same broker, same
subscriber, in order) arrives first.
"""

import asyncio
import os
import signal
import ssl
import time

import aiomqtt
import pytest
from mpfleet.backend.broker.mosquitto import BrokerAdminError, MosquittoAdmin
from mpfleet.backend.broker.tls import ensure_certificates

from .mosquitto_broker import MosquittoBroker

ALICE = "espressif32_Alice0000001"
BOB = "espressif32_Bob000000001"
OFFLINE = b'{"online":false}'


@pytest.fixture
def broker(tmp_path):
    broker = MosquittoBroker(tmp_path / "mosquitto", ensure_certificates(tmp_path / "tls", []))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def admin(broker):
    async with MosquittoAdmin(broker.url) as admin:
        yield admin


@pytest.fixture
async def backend(broker):
    """What the bridge is: the admin account on the plain listener, seeing every device topic."""
    async with aiomqtt.Client("127.0.0.1", broker.plain_port, username=broker.admin_username,
                              password=broker.admin_password, timeout=5) as client:
        await client.subscribe("mpfleet/v1/#", qos=1)
        yield client


def device(broker, uid, password, *, ca_file=None):
    context = ssl.create_default_context(cafile=ca_file or broker.tls.ca_cert)
    return aiomqtt.Client(
        "127.0.0.1", broker.tls_port, username=uid, password=password, identifier=uid, tls_context=context,
        protocol=aiomqtt.ProtocolVersion.V311, clean_session=True, timeout=5,
        will=aiomqtt.Will(f"mpfleet/v1/{uid}/status", OFFLINE, qos=1, retain=True),
    )


async def received_until(client, topic, timeout=2):
    """(topic, payload) of each message `client` receives, up to and including the first on `topic`."""
    seen = []
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            seen.append((message.topic.value, message.payload))
            if message.topic.value == topic:
                return seen


async def assert_revoked(broker, backend, alice, revoking):
    """While `revoking` (an admin call) runs: alice's session is cut within 1 s, the backend gets her offline
    will, and her password opens no session any more."""
    revoking = asyncio.create_task(revoking)
    assert await cut_within(alice, 1) < 1
    await revoking
    assert await received_until(backend, f"mpfleet/v1/{ALICE}/status") == [(f"mpfleet/v1/{ALICE}/status", OFFLINE)]
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authori[sz]ed"):
        async with device(broker, ALICE, "alice-pw"):
            pass


async def cut_within(client, seconds):
    """Seconds until the broker ends `client`'s session; fails if it takes longer than `seconds`."""
    start = time.monotonic()
    with pytest.raises(aiomqtt.MqttError):
        async with asyncio.timeout(seconds):
            async for _ in client.messages:
                pass
    return time.monotonic() - start


async def test_a_device_connects_over_verified_tls_with_its_password_only(broker, admin, backend):
    await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw") as alice:
        await alice.publish(f"mpfleet/v1/{ALICE}/status", b'{"online":true}', qos=1, retain=True)
        assert await received_until(backend, f"mpfleet/v1/{ALICE}/status") == [
            (f"mpfleet/v1/{ALICE}/status", b'{"online":true}')]
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authori[sz]ed"):
        async with device(broker, ALICE, "wrong"):
            pass
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authori[sz]ed"):
        async with device(broker, BOB, "alice-pw"):
            pass


async def test_a_device_logs_in_under_its_own_uid_only(broker, admin, backend):
    await admin.add_device(ALICE, "alice-pw")
    await admin.add_device(BOB, "bob-pw")
    async with device(broker, BOB, "bob-pw") as bob:
        intruder = aiomqtt.Client("127.0.0.1", broker.tls_port, username=ALICE, password="alice-pw", identifier=BOB,
                                  tls_context=ssl.create_default_context(cafile=broker.tls.ca_cert), timeout=5)
        with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authori[sz]ed"):
            async with intruder:  # as Bob's client id, it would have taken over his session
                pass
        await bob.publish(f"mpfleet/v1/{BOB}/telemetry", b"still here", qos=1)


async def test_the_tls_listener_is_trusted_through_our_ca_only(broker, tmp_path):
    # A bare TLS handshake: paho 2.2 leaks the socket of a failed one, which would fail the run.
    _, writer = await asyncio.open_connection("127.0.0.1", broker.tls_port,
                                              ssl=ssl.create_default_context(cafile=broker.tls.ca_cert))
    writer.close()
    await writer.wait_closed()
    other_ca = ensure_certificates(tmp_path / "other-tls", []).ca_cert
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", broker.tls_port, ssl=ssl.create_default_context(cafile=other_ca))


async def test_a_device_may_only_subscribe_below_its_own_uid(broker, admin):
    await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw") as alice:
        for own in (f"mpfleet/v1/{ALICE}/cmd", f"mpfleet/v1/{ALICE}/#"):
            assert await alice.subscribe(own, qos=1) == [1]
        for foreign in ("#", "mpfleet/#", "mpfleet/v1/+/cmd", f"mpfleet/v1/{BOB}/#", f"mpfleet/v1/{BOB}/cmd",
                        "$SYS/#", "$CONTROL/dynamic-security/#"):
            assert await alice.subscribe(foreign, qos=1) == [0x80], foreign


async def test_devices_neither_see_nor_write_each_others_topics(broker, admin, backend):
    await admin.add_device(ALICE, "alice-pw")
    await admin.add_device(BOB, "bob-pw")
    async with device(broker, ALICE, "alice-pw") as alice, device(broker, BOB, "bob-pw") as bob:
        await alice.subscribe(f"mpfleet/v1/{ALICE}/#", qos=1)
        await alice.subscribe(f"mpfleet/v1/{BOB}/#", qos=1)  # refused (see above); must not leak either
        await bob.subscribe(f"mpfleet/v1/{BOB}/#", qos=1)

        await alice.publish(f"mpfleet/v1/{BOB}/cmd", b'{"type":"reboot"}', qos=1)  # forged: dropped
        await bob.publish(f"mpfleet/v1/{BOB}/telemetry", b"bob", qos=1)
        await alice.publish(f"mpfleet/v1/{ALICE}/telemetry", b"alice", qos=1)
        await backend.publish(f"mpfleet/v1/{ALICE}/cmd", b"marker", qos=1)

        assert await received_until(backend, f"mpfleet/v1/{ALICE}/telemetry") == [
            (f"mpfleet/v1/{BOB}/telemetry", b"bob"), (f"mpfleet/v1/{ALICE}/telemetry", b"alice")]
        assert await received_until(bob, f"mpfleet/v1/{BOB}/telemetry") == [
            (f"mpfleet/v1/{BOB}/telemetry", b"bob")]
        assert await received_until(alice, f"mpfleet/v1/{ALICE}/cmd") == [
            (f"mpfleet/v1/{ALICE}/telemetry", b"alice"), (f"mpfleet/v1/{ALICE}/cmd", b"marker")]


async def test_removing_a_device_cuts_its_session_and_publishes_its_will(broker, admin, backend):
    await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw") as alice:
        await alice.publish(f"mpfleet/v1/{ALICE}/status", b'{"online":true}', qos=1, retain=True)
        await received_until(backend, f"mpfleet/v1/{ALICE}/status")
        await assert_revoked(broker, backend, alice, admin.remove_device(ALICE))


async def test_the_offline_will_stays_retained(broker, admin):
    await admin.add_device(ALICE, "alice-pw")
    await admin.set_device_enabled(ALICE, False)
    async with aiomqtt.Client("127.0.0.1", broker.plain_port, username=broker.admin_username,
                              password=broker.admin_password, timeout=5) as late:
        await late.subscribe(f"mpfleet/v1/{ALICE}/status", qos=1)
        async with asyncio.timeout(2):
            message = await anext(late.messages)
    assert (message.payload, message.retain) == (OFFLINE, True)


async def test_disabling_cuts_the_session_and_refuses_until_enabled(broker, admin, backend):
    await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw") as alice:
        await assert_revoked(broker, backend, alice, admin.set_device_enabled(ALICE, False))
    await admin.set_device_enabled(ALICE, True)
    await admin.set_device_enabled(ALICE, True)
    async with device(broker, ALICE, "alice-pw") as alice:
        await alice.publish(f"mpfleet/v1/{ALICE}/telemetry", b"back", qos=1)
    assert (await received_until(backend, f"mpfleet/v1/{ALICE}/telemetry"))[-1][1] == b"back"


async def test_adding_again_replaces_the_password_and_ends_old_sessions(broker, admin):
    await admin.add_device(ALICE, "first")
    async with device(broker, ALICE, "first") as alice:
        adding = asyncio.create_task(admin.add_device(ALICE, "second"))
        await cut_within(alice, 1)
        await adding
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authori[sz]ed"):
        async with device(broker, ALICE, "first"):
            pass
    async with device(broker, ALICE, "second") as alice:
        assert await alice.subscribe(f"mpfleet/v1/{ALICE}/cmd", qos=1) == [1]


async def test_removing_an_unknown_device_is_not_an_error(admin):
    await admin.remove_device(ALICE)
    await admin.add_device(ALICE, "pw")
    await admin.remove_device(ALICE)
    await admin.remove_device(ALICE)


async def test_a_refused_command_raises_broker_admin_error(admin):
    with pytest.raises(BrokerAdminError, match="enableClient: Client not found"):
        await admin.set_device_enabled("espressif32_Unknown00000", True)


@pytest.mark.parametrize("uid", ["", "a/b", "espressif32_+", "#", "x\0y"])
async def test_a_uid_that_would_widen_an_acl_is_refused(admin, uid):
    with pytest.raises(ValueError):
        await admin.add_device(uid, "pw")


async def test_start_makes_a_permissive_broker_deny_by_default(broker, backend):
    await backend.subscribe("$CONTROL/dynamic-security/v1/response", qos=1)
    await backend.publish("$CONTROL/dynamic-security/v1", qos=1, payload=(
        b'{"commands":[{"command":"setDefaultACLAccess","acls":[{"acltype":"publishClientSend","allow":true},'
        b'{"acltype":"subscribe","allow":true}]}]}'))
    assert (await received_until(backend, "$CONTROL/dynamic-security/v1/response"))[-1][1] == (
        b'{"responses":[{"command":"setDefaultACLAccess"}]}')
    async with MosquittoAdmin(broker.url) as admin:
        await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw") as alice:
        assert await alice.subscribe("#", qos=1) == [0x80]


async def test_a_broker_that_does_not_answer_times_out(broker):
    async with MosquittoAdmin(broker.url, timeout=0.3) as admin:
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(BrokerAdminError, match="did not answer deleteClient, deleteRole within 0.3 s"):
                await admin.remove_device(ALICE)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)


async def test_the_admin_reconnects_after_a_broker_restart(broker, admin):
    await admin.add_device(ALICE, "alice-pw")
    broker.stop()
    broker.start()  # same ports, same accounts
    await admin.set_device_enabled(ALICE, False)  # found the old connection dead, retried on a new one
    await admin.set_device_enabled(ALICE, True)
    async with device(broker, ALICE, "alice-pw"):
        pass


async def test_an_account_that_may_not_administer_is_told_so(broker, admin):
    # An operator's account without the admin's roles (a device's could not log in as anything but itself).
    await admin._request([{"command": "createClient", "username": "viewer", "password": "viewer-pw"}])
    with pytest.raises(BrokerAdminError, match="refused \\$CONTROL/dynamic-security/v1/response"):
        async with MosquittoAdmin(f"mqtt://viewer:viewer-pw@127.0.0.1:{broker.plain_port}"):
            pass


async def test_the_admin_may_use_the_tls_listener(broker):
    url = f"mqtts://{broker.admin_username}:{broker.admin_password}@127.0.0.1:{broker.tls_port}"
    async with MosquittoAdmin(url, ca_file=broker.tls.ca_cert) as admin:
        await admin.add_device(ALICE, "alice-pw")
    async with device(broker, ALICE, "alice-pw"):
        pass


async def test_wrong_admin_credentials_raise_broker_admin_error(broker):
    with pytest.raises(BrokerAdminError, match="Cannot connect to Mosquitto at 127.0.0.1:.*[Nn]ot authori[sz]ed"):
        async with MosquittoAdmin(f"mqtt://{broker.admin_username}:wrong@127.0.0.1:{broker.plain_port}"):
            pass


async def test_a_stopped_admin_refuses_calls(admin):
    await admin.stop()
    with pytest.raises(BrokerAdminError, match="stopped"):
        await admin.remove_device(ALICE)


def test_a_broker_url_must_be_mqtt_or_mqtts():
    with pytest.raises(ValueError):
        MosquittoAdmin("http://user:pw@localhost:1883")
