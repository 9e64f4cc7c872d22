"""Devices online, against both brokers: presence, commands tracked to their acks, revocation, telemetry.

The device is tests/fake_device.py: a Python MQTT client over TLS with the device's own credentials.
"""

import asyncio
import json
import secrets
import sqlite3
import ssl
import time

import aiomqtt
import pytest
from mpfleet.backend import bridge as bridge_module
from mpfleet.backend import keys, telemetry_batches
from mpfleet.backend.broker.limits import MAX_PACKET_BYTES
from mpfleet.backend.broker.tls import ensure_certificates
from mpfleet.backend.mqtt_client import MqttClient
from mpfleet.backend.schemas import MAX_PAYLOAD_BYTES, TELEMETRY_MAX_BYTES

from .conftest import Backend
from .fake_device import FakeDevice, silent_connect
from .mosquitto_broker import MosquittoBroker
from .mqtt_packets import CONNACK_ACCEPTED, DISCONNECT, connect_packet, open_session, publish_packet, remaining_length
from .numbered_publisher import NumberedPublisher
from .polling import detail, eventually, final_command, online_detail


async def online_device(api, online, **kwargs):
    registered = await api.register(name="sensor", platform="unix", board="unix")
    device = await online.connect(registered, **kwargs)
    await eventually(lambda: status_is(api, registered["uid"], "online"))
    return registered, device


async def status_is(api, uid, wanted):
    return (await detail(api, uid))["status"] == wanted


# --- registration and presence -----------------------------------------------------------

async def test_registration_gives_a_working_broker_login(api, online):
    registered = await api.register(name="sensor", platform="unix", board="unix")
    mqtt = registered["mqtt"]
    assert mqtt["port"] == online.tls_port == registered["port"] == registered["meta"]["mqtt_port"]
    assert mqtt["ca_cert"].startswith("-----BEGIN CERTIFICATE-----")
    device = await online.connect(registered)
    await device.close()


async def test_status_drives_presence_fields(api, online):
    registered = await api.register(name="sensor", platform="unix", board="unix")
    assert (await detail(api, registered["uid"]))["status"] == "pending"
    device = await online.connect(registered, status={
        "fw": {"version": "1.0.3", "md5": "e4b7f01d6b9f3d6fdb0d53f5e8be2d34"}, "free_mem": 21344,
        "boot": {"reason": "soft", "count": 3}, "tls_verified": True, "safe_mode": False,
    })
    data = await eventually(lambda: online_detail(api, registered["uid"]))
    assert data["is_online"] is True
    assert data["first_seen_at"] and data["last_seen_at"]
    assert data["local_ip"] == "192.168.1.57" and data["last_rssi"] == -61
    assert data["meta"]["fw"] == {"version": "1.0.3", "md5": "e4b7f01d6b9f3d6fdb0d53f5e8be2d34"}
    assert data["meta"]["boot"] == {"reason": "soft", "count": 3} and data["meta"]["tls_verified"] is True
    if online.kind == "embedded":
        assert data["public_ip"] == "127.0.0.1"
    first_seen = data["first_seen_at"]

    await device.disconnect()
    data = await eventually(lambda: _offline_detail(api, registered["uid"]))
    assert data["is_online"] is False and data["first_seen_at"] == first_seen



async def _offline_detail(api, uid):
    data = await detail(api, uid)
    return data if data["status"] == "offline" else None


async def test_the_reported_md5_selects_the_current_firmware(api, online):
    import io

    import aiohttp

    registered = await api.register(name="sensor", platform="unix", board="unix")
    form = aiohttp.FormData()
    form.add_field("name", "build")
    form.add_field("version", "2.0.0")
    form.add_field("file", io.BytesIO(b"\x01" * 100), filename="f.bin")
    _, firmware = await api.post(f"/v1/user/devices/{registered['uid']}/firmwares", data=form)
    md5 = firmware["data"]["md5"]
    device = await online.connect(registered, status={"fw": {"version": "2.0.0", "md5": md5}})
    data = await eventually(lambda: online_detail(api, registered["uid"]))
    assert data["current_firmware"]["md5"] == md5 and data["current_firmware"]["is_current"] is True
    await device.close()


async def raw_online_device(api, online, keepalive):
    """A device on a raw socket (tests/fake_device.py:silent_connect), shown online."""
    registered = await api.register(name="sensor", platform="unix", board="unix")
    conn = await asyncio.to_thread(silent_connect, online.tls_port, registered["mqtt"]["ca_cert"],
                                   registered["uid"], registered["mqtt"]["password"], keepalive)
    # The raw client publishes no status; mark it online the way a board would.
    await online.bridge_publish(f"mpfleet/v1/{registered['uid']}/status", b'{"online":true}', retain=True)
    await eventually(lambda: status_is(api, registered["uid"], "online"))
    return registered, conn


async def test_a_dropped_connection_goes_offline_by_its_will(api, online):
    registered, conn = await raw_online_device(api, online, keepalive=60)
    conn.close()  # no DISCONNECT: the broker sees the socket die and publishes the will
    await eventually(lambda: status_is(api, registered["uid"], "offline"), timeout=2)


# How late after 1.5 x keepalive a broker notices silence. Mosquitto 2.0.11 checks coarsely:
# measured here, a silent client's will came 6 s after its last packet with keepalive 1 or 2.
KEEPALIVE_SLACK = {"embedded": 1.0, "mosquitto": 6.0}


async def test_a_silent_device_goes_offline_after_one_and_a_half_keepalives(api, online):
    registered, conn = await raw_online_device(api, online, keepalive=1)
    try:
        started = time.monotonic()
        deadline = 1.5 + KEEPALIVE_SLACK[online.kind]
        await eventually(lambda: status_is(api, registered["uid"], "offline"), timeout=deadline)
        assert time.monotonic() - started >= 1.0  # not early: the will follows silence, not the connect
    finally:
        conn.close()


async def test_a_backend_restart_rebuilds_presence(api, online, backend):
    stays, device = await online_device(api, online)
    drops, conn = await raw_online_device(api, online, keepalive=60)
    await backend.stop()
    conn.close()  # gone while the backend was down: only the broker can have seen its will
    if online.kind == "mosquitto":
        await device.publish("status", {**device.status, "rssi": -40}, retain=True)  # a fresh report meanwhile
        await asyncio.sleep(0.3)
    await backend.start()

    if online.kind == "mosquitto":  # the broker kept the retained statuses: presence is rebuilt from them
        await eventually(lambda: _has_rssi(api, stays["uid"], -40))
        await eventually(lambda: status_is(api, drops["uid"], "offline"))
        assert (await detail(api, stays["uid"]))["status"] == "online"
    else:  # the embedded broker restarted with the backend: nobody is connected any more
        assert (await detail(api, stays["uid"]))["status"] == "offline"
        assert (await detail(api, drops["uid"]))["status"] == "offline"


async def _has_rssi(api, uid, rssi):
    return (await detail(api, uid))["last_rssi"] == rssi


async def test_a_clean_disconnect_without_a_word_goes_offline(api, online):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    await device.close()  # DISCONNECT with no `{"online":false}` before it: MQTT drops the will then
    await eventually(lambda: status_is(api, uid, "offline"), timeout=2)
    assert await api.post(f"/v1/user/devices/{uid}/reboot") == (409, {"message": "Device is offline."})
    assert json.loads(await online.retained_status(uid)) == {"online": False}  # what a restart rebuilds from


async def test_a_clean_disconnect_and_an_immediate_reconnect_end_online(api, online):
    # The new session's online status can reach the broker before the offline status published for the
    # old one's clean disconnect: it must not be left offline, nor its retained status.
    registered = await api.register(name="sensor", platform="unix", board="unix")
    uid, mqtt = registered["uid"], registered["mqtt"]
    context = ssl.create_default_context(cadata=mqtt["ca_cert"])
    connect = connect_packet(uid, uid, mqtt["password"], 60, will=(f"mpfleet/v1/{uid}/status", b'{"online":false}'))
    online_status = publish_packet(f"mpfleet/v1/{uid}/status", b'{"online":true,"rssi":-50}', 1, retain=True)
    _, writer = await open_session(online.tls_port, context, uid, mqtt["password"])
    writer.write(online_status)
    await eventually(lambda: status_is(api, uid, "online"))
    for _ in range(10):  # back to back: the offline status of a round often lands after the next online one
        new_reader, new_writer = await asyncio.open_connection("127.0.0.1", online.tls_port, ssl=context)
        writer.write(DISCONNECT)  # and at once, on a connection ready for it:
        new_writer.write(connect + online_status)
        assert (await asyncio.wait_for(new_reader.readexactly(4), 5)) == CONNACK_ACCEPTED
        writer.close()
        writer = new_writer
    await asyncio.sleep(0.5)  # whatever was still on its way has come
    assert (await detail(api, uid))["status"] == "online"
    assert json.loads(await online.retained_status(uid))["online"] is True

    writer.write(DISCONNECT)
    await eventually(lambda: status_is(api, uid, "offline"), timeout=2)
    writer.close()


async def test_a_clean_disconnect_while_the_backend_is_down_is_seen_after_its_restart(api, online, backend):
    registered, device = await online_device(api, online)
    await backend.stop()
    await device.close()
    await backend.start()
    await eventually(lambda: status_is(api, registered["uid"], "offline"), timeout=2)


# --- commands -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix, body, message, kind, payload", [
    ("/reboot", None, "Reboot command sent.", "reboot", {}),
    ("/wifi-reset", None, "Wi-Fi reset command sent.", "wifi_reset", {}),
    ("/commands", {"payload": {"cmd": "relay_toggle", "channel": 1, "state": "on"}}, "Command sent.", "custom",
     {"cmd": "relay_toggle", "channel": 1, "state": "on"}),
])
async def test_commands_are_delivered_and_tracked_to_done(api, online, suffix, body, message, kind, payload):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    status, answer = await api.post(f"/v1/user/devices/{uid}{suffix}", json=body)
    assert status == 200
    assert answer["message"] == message and answer["device_uid"] == uid and len(answer["id"]) == 22
    command = await eventually(lambda: final_command(api, uid, answer["id"]))
    assert command["state"] == "done" and command["result"] == {"ok": True}
    assert command["type"] == kind and command["payload"] == payload
    assert device.commands == [{"id": answer["id"], "type": kind, "payload": payload}]
    await device.close()



async def test_a_button_sends_its_payload(api, online):
    registered, device = await online_device(api, online)
    base = f"/v1/user/devices/{registered['uid']}/command-buttons"
    await api.post(base, json={"id": "relay_on", "label": "On", "payload": {"cmd": "relay_toggle", "state": "on"}})
    status, answer = await api.post(base + "/relay_on/send")
    assert status == 200 and answer["message"] == "Command sent."
    await eventually(lambda: final_command(api, registered["uid"], answer["id"]))
    assert device.commands[0]["payload"] == {"cmd": "relay_toggle", "state": "on"}
    await device.close()


async def test_a_failed_handler_and_a_silent_device(api, online):
    answers = iter([("failed", None, "no handler named 'fly'"), None])
    registered, device = await online_device(api, online, handler=lambda command: next(answers))
    uid = registered["uid"]
    _, failed = await api.post(f"/v1/user/devices/{uid}/commands", json={"payload": {"cmd": "fly"}})
    command = await eventually(lambda: final_command(api, uid, failed["id"]))
    assert command["state"] == "failed" and command["error"] == "no handler named 'fly'"

    _, unanswered = await api.post(f"/v1/user/devices/{uid}/commands", json={"payload": {"cmd": "wait"}})
    command = await eventually(lambda: final_command(api, uid, unanswered["id"]), timeout=online.command_timeout + 3)
    assert command["state"] == "expired"

    _, listing = await api.get(f"/v1/user/devices/{uid}/commands")
    assert [c["id"] for c in listing["data"]] == [unanswered["id"], failed["id"]]
    await device.close()


async def test_acks_cannot_move_another_devices_command_or_go_backwards(api, online):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    _, answer = await api.post(f"/v1/user/devices/{uid}/reboot")
    await eventually(lambda: final_command(api, uid, answer["id"]))
    await device.ack(answer["id"], "failed", error="too late")  # a repeated, contradicting ack
    other, intruder = await online_device(api, online)
    await intruder.ack(answer["id"], "failed", error="not mine")
    await asyncio.sleep(0.3)
    _, body = await api.get(f"/v1/user/devices/{uid}/commands/{answer['id']}")
    assert body["data"]["state"] == "done"
    assert await api.get(f"/v1/user/devices/{uid}/commands/nope") == (404, {"message": "Command not found."})
    await device.close()
    await intruder.close()


# --- revocation ---------------------------------------------------------------------------

async def test_disabling_cuts_the_session_and_refuses_reconnects(api, online):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    started = time.monotonic()
    status, body = await api.patch(f"/v1/user/devices/{uid}", json={"enabled": False})
    assert status == 200 and body["data"]["status"] == "disabled"
    await device.wait_cut(timeout=1.5)
    assert time.monotonic() - started < 1.5
    assert await api.post(f"/v1/user/devices/{uid}/reboot") == (409, {"message": "Device is disabled."})
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authorized"):
        await online.connect(registered)
    await asyncio.sleep(0.3)  # a will arriving now must not bring it back
    assert (await detail(api, uid))["status"] == "disabled"

    status, body = await api.patch(f"/v1/user/devices/{uid}", json={"enabled": True})
    assert status == 200
    device = await online.connect(registered)
    await eventually(lambda: status_is(api, uid, "online"))
    await device.close()


async def test_deleting_cuts_the_session_within_a_second(api, online):
    registered, device = await online_device(api, online)
    started = time.monotonic()
    assert (await api.delete(f"/v1/user/devices/{registered['uid']}"))[0] == 200
    await device.wait_cut(timeout=1.5)
    assert time.monotonic() - started < 1.5
    with pytest.raises(aiomqtt.MqttError, match="[Nn]ot authorized"):
        await online.connect(registered)


async def test_a_command_to_an_offline_device_is_refused_and_not_stored(api, online):
    registered, device = await online_device(api, online)
    await device.disconnect()
    await eventually(lambda: status_is(api, registered["uid"], "offline"))
    uid = registered["uid"]
    assert await api.post(f"/v1/user/devices/{uid}/reboot") == (409, {"message": "Device is offline."})
    assert await api.get(f"/v1/user/devices/{uid}/commands") == (200, {"data": []})


# --- telemetry ----------------------------------------------------------------------------

async def test_telemetry_is_stored_and_queried(api, online):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    base_ts = 1_700_000_000  # 2023-11-14T22:13:20Z
    for i in range(5):
        await device.publish("telemetry", {"ts": base_ts + i, "values": {"temperature": 20 + i, "door": i % 2 == 0,
                                                                          "mode": "eco"}})
    await device.publish("telemetry", b"not json")
    await device.publish("telemetry", {"values": "wrong shape"})
    await device.publish("telemetry", {"ts": None, "values": {"temperature": 99.5}})

    async def rows():
        _, body = await api.get(f"/v1/user/devices/{uid}/telemetry?key=temperature&limit=1000")
        return body["data"] if len(body["data"]) == 6 else None

    samples = await eventually(rows)
    assert [s["value"] for s in samples] == [99.5, 24, 23, 22, 21, 20]  # newest first; a null ts is "now"
    _, window = await api.get(f"/v1/user/devices/{uid}/telemetry?key=temperature&from={base_ts + 1}&to={base_ts + 3}")
    assert [s["value"] for s in window["data"]] == [23, 22, 21]
    _, iso = await api.get(f"/v1/user/devices/{uid}/telemetry?key=door&from=2023-11-14T22:13:22Z&limit=2")
    assert [s["value"] for s in iso["data"]] == [1, 0]
    _, latest = await api.get(f"/v1/user/devices/{uid}/telemetry/latest")
    assert latest["data"]["temperature"]["value"] == 99.5 and latest["data"]["mode"]["value"] == "eco"
    assert online.bridge.stats["telemetry_malformed"] == 2
    status, body = await api.get(f"/v1/user/devices/{uid}/telemetry?limit=0")
    assert status == 422 and "limit" in body["errors"]
    await device.close()


async def test_a_device_cannot_reach_another_devices_topics(api, online):
    mine, device = await online_device(api, online)
    theirs, other = await online_device(api, online)
    await device._client.publish(f"mpfleet/v1/{theirs['uid']}/telemetry",
                                 '{"values": {"spoofed": 1}}', qos=1)
    await device._client.publish(f"mpfleet/v1/{theirs['uid']}/status", '{"online": false}', qos=1, retain=True)
    await asyncio.sleep(0.5)
    _, latest = await api.get(f"/v1/user/devices/{theirs['uid']}/telemetry/latest")
    assert latest == {"data": {}}
    assert (await detail(api, theirs["uid"]))["status"] == "online"
    await device.close()
    await other.close()


# --- sizes ---------------------------------------------------------------------------------

async def test_a_packet_over_the_limit_ends_the_session_and_nothing_of_it_arrives(api, online):
    registered = await api.register(name="sensor", platform="unix", board="unix")
    uid, mqtt = registered["uid"], registered["mqtt"]
    reader, writer = await open_session(online.tls_port, ssl.create_default_context(cadata=mqtt["ca_cert"]), uid,
                                        mqtt["password"], will=(f"mpfleet/v1/{uid}/status", b'{"online":false}'))
    await online.bridge_publish(f"mpfleet/v1/{uid}/status", b'{"online":true}', retain=True)
    await eventually(lambda: status_is(api, uid, "online"))
    telemetry = json.dumps({"ts": None, "values": {"big": "x" * 1_000_000}}).encode()
    body = len(f"mpfleet/v1/{uid}/telemetry").to_bytes(2, "big") + f"mpfleet/v1/{uid}/telemetry".encode()
    writer.write(b"\x32" + remaining_length(len(body) + 2 + len(telemetry)) + body + b"\x00\x01")
    writer.write(telemetry[:64 * 1024])  # a beginning: the broker must not wait for the rest to judge
    try:
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, no PUBACK
    except ConnectionError:  # reset or broken pipe
        pass  # as good: closed while our bytes were still arriving
    finally:
        writer.close()
    await eventually(lambda: status_is(api, uid, "offline"), timeout=2)  # its will: the session ended

    other, device = await online_device(api, online)  # a message after it arrives; the big one never did
    await device.publish("telemetry", {"ts": None, "values": {"marker": 1}})
    await eventually(lambda: _latest(api, other["uid"]))
    assert online.bridge.stats["telemetry_received"] == 1
    assert await _latest(api, uid) == {}
    await device.close()


async def test_the_largest_messages_of_the_protocol_pass(api, online):
    registered, device = await online_device(api, online)
    uid = registered["uid"]
    telemetry = {"ts": None, "values": {"t": 21.5, "pad": ""}}  # `pad` is too long to keep; `t` is stored
    telemetry["values"]["pad"] = "x" * (TELEMETRY_MAX_BYTES - len(json.dumps(telemetry, separators=(",", ":"))))
    raw = json.dumps(telemetry, separators=(",", ":")).encode()
    assert len(raw) == TELEMETRY_MAX_BYTES
    await device.publish("telemetry", raw)
    assert (await eventually(lambda: _latest(api, uid)))["t"]["value"] == 21.5

    payload = {"cmd": "echo", "pad": ""}
    payload["pad"] = "x" * (MAX_PAYLOAD_BYTES - len(json.dumps(payload, separators=(",", ":"))))
    status, answer = await api.post(f"/v1/user/devices/{uid}/commands", json={"payload": payload})
    assert status == 200, answer
    assert (await eventually(lambda: final_command(api, uid, answer["id"])))["state"] == "done"
    assert device.commands[0]["payload"] == payload
    assert MAX_PACKET_BYTES > MAX_PAYLOAD_BYTES + 200  # the command's id, type and topic fit beside it
    await device.close()


async def _latest(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}/telemetry/latest")
    return body["data"]


# --- backpressure ----------------------------------------------------------------------------

async def test_storage_that_falls_behind_stops_reading_and_loses_nothing(api, online, monkeypatch):
    monkeypatch.setattr(telemetry_batches, "MAX_BACKLOG_ROWS", 100)
    batches = online.backend.client.app[keys.TELEMETRY]
    storage, stalled = online.backend.storage.telemetry, asyncio.Event()
    add_batch = storage.add_batch

    async def slow_add_batch(rows):
        await stalled.wait()
        return await add_batch(rows)

    monkeypatch.setattr(storage, "add_batch", slow_add_batch)
    publishers = [NumberedPublisher.of(await api.register(name=f"d{i}", platform="unix", board="unix"), window=100)
                  for i in range(2)]
    stop = asyncio.Event()
    running = [asyncio.create_task(p.run(stop)) for p in publishers]
    most = 0
    for _ in range(20):  # 1 s of a disk that does not answer
        await asyncio.sleep(0.05)
        most = max(most, batches.backlog)
    sent_meanwhile = sum(p.sent for p in publishers)
    stalled.set()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*running)

    if online.kind == "embedded":  # each board's next packet waits: the bound, and a packet a board over it
        assert most <= 100 + len(publishers), most
    else:  # the bridge read no further than the chunk that filled the batches; Mosquitto holds the rest
        assert most < 2000 and sent_meanwhile > 5 * most, (most, sent_meanwhile)
    stored = await eventually(lambda: _all_stored(online.backend, publishers))
    assert all(set(p.acked) <= stored[p.uid] for p in publishers)
    assert online.bridge.stats["telemetry_dropped"] == 0


async def test_a_full_inbox_acknowledges_nothing_it_did_not_take(api, online, monkeypatch):
    if online.kind == "embedded":
        pytest.skip("the embedded broker keeps nothing for a bridge that comes back (clean session)")
    monkeypatch.setattr(bridge_module, "_MAX_INBOX", 3)
    registered, device = await online_device(api, online)
    events, stalled = online.bridge.events, asyncio.Event()
    device_status = events.device_status

    async def slow_device_status(uid, report):
        await stalled.wait()
        await device_status(uid, report)

    monkeypatch.setattr(events, "device_status", slow_device_status)
    for rssi in range(-80, -60):  # Mosquitto takes them all; the bridge only three at a time
        await device.publish("status", {**device.status, "rssi": rssi}, retain=True)
    await asyncio.sleep(0.3)
    stalled.set()
    await eventually(lambda: _has_rssi(api, registered["uid"], -61), timeout=15)  # the session came back for them
    assert online.bridge.stats["status_dropped"] > 0
    await device.close()


async def _all_stored(backend, publishers):
    """{uid: numbers stored} once every number acknowledged is stored, else None (for eventually())."""
    with sqlite3.connect(f"file:{backend.settings.data_dir / 'mpfleet.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT devices.uid, telemetry.value FROM telemetry JOIN devices"
                          " ON devices.id = telemetry.device_id WHERE telemetry.key = 'n'").fetchall()
    stored = {p.uid: set() for p in publishers}
    for uid, number in rows:
        stored[uid].add(int(number))
    return stored if all(set(p.acked) <= stored[p.uid] for p in publishers) else None


# --- fixtures: the same tests against both brokers -------------------------------------------

class Online:
    """What the tests need of the running backend's broker side."""

    def __init__(self, backend, kind):
        self.backend = backend
        self.kind = kind
        self.devices = []

    @property
    def tls_port(self):
        return self.backend.client.app[keys.MQTT_PUBLIC].port

    @property
    def bridge(self):
        return self.backend.bridge

    @property
    def command_timeout(self):
        return self.backend.settings.command_timeout

    async def connect(self, registered, **kwargs):
        device = FakeDevice(registered["mqtt"], self.tls_port, **kwargs)
        await device.connect()
        self.devices.append(device)
        return device

    async def bridge_publish(self, name, payload, retain=False):
        await self.bridge._publish(name, payload, retain=retain)

    async def retained_status(self, uid):
        """The retained status of `uid` the broker holds, as a new subscriber gets it."""
        received = asyncio.get_running_loop().create_future()

        def on_message(topic, payload):
            if not received.done():
                received.set_result(payload)

        client = await MqttClient.connect(self.backend.client.app[keys.BROKER_ENDPOINT],
                                          f"test-{secrets.token_hex(4)}", on_message)
        try:
            await client.subscribe([(f"mpfleet/v1/{uid}/status", 1)])
            return await asyncio.wait_for(received, 2)
        finally:
            client.close()

    async def close(self):
        for device in self.devices:
            await device.close()


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    work = tmp_path_factory.mktemp("mosquitto")
    broker = MosquittoBroker(work, ensure_certificates(work / "tls", []))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["embedded", "mosquitto"])
async def backend(request, tmp_path):
    overrides = {"command_timeout": 1.5}
    if request.param == "mosquitto":
        broker = request.getfixturevalue("mosquitto")
        overrides.update(broker.backend_settings())
    backend = Backend(tmp_path / "var", **overrides)
    backend.kind = request.param
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def online(backend):
    online = Online(backend, backend.kind)
    yield online
    await online.close()
