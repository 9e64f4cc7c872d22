"""Commands paced per device: never more at a board than its queue holds, the rest held (`queued`) and
sent in order; `?wait=S` answers with the outcome. The device is tests/fake_device.py with a board's queue."""

import asyncio
import time

import pytest
from mpfleet.backend import keys
from mpfleet.backend.bridge import BridgeUnavailable

from .conftest import Backend
from .fake_device import FakeDevice
from .polling import eventually, online_detail

FINAL = ("done", "failed", "expired")


@pytest.fixture
async def backend(request, tmp_path):
    """The app with a command timeout a test can pick (`@pytest.mark.parametrize("backend", [seconds])`)."""
    backend = Backend(tmp_path / "var", command_timeout=getattr(request, "param", 60.0))
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def connect(api, backend):
    devices = []

    async def connect(**kwargs):
        registered = await api.register(name="board", platform="unix", board="unix")
        device = FakeDevice(registered["mqtt"], backend.client.app[keys.MQTT_PUBLIC].port, **kwargs)
        await device.connect()
        devices.append(device)
        await eventually(lambda: online_detail(api, device.uid))
        return device

    yield connect
    for device in devices:
        await device.close()


def commands_of(uid):
    return f"/v1/user/devices/{uid}/commands"


async def history(api, uid):
    """Every command of the device, oldest first (the order the backend stored them in)."""
    _, body = await api.get(commands_of(uid) + "?limit=500")
    return body["data"][::-1]


async def all_final(api, uid, count):
    commands = await history(api, uid)
    return commands if len(commands) == count and all(c["state"] in FINAL for c in commands) else None


async def test_100_commands_at_once_never_overflow_the_board_and_run_in_the_order_stored(api, connect):
    device = await connect(queue=4)
    answers = await asyncio.gather(*[
        api.post(commands_of(device.uid), json={"payload": {"cmd": "n", "i": i}}) for i in range(100)])
    assert all(status == 200 for status, _ in answers)
    assert {body["state"] for _, body in answers} <= {"sent", "queued", "accepted", "done"}
    assert any(body["state"] == "queued" for _, body in answers)  # held in the backend, not at the board

    commands = await eventually(lambda: all_final(api, device.uid, 100), timeout=30)
    assert [c["state"] for c in commands] == ["done"] * 100
    assert device.busy == [] and device.most_open == 4  # as many as its queue holds, never more
    assert device.ran == [c["id"] for c in commands]


async def test_a_board_that_does_not_say_its_queue_gets_one_command_at_a_time(api, connect):
    device = await connect(queue=4, report_queue=False)
    answers = await asyncio.gather(*[api.post(commands_of(device.uid), json={"payload": {"i": i}}) for i in range(10)])
    assert [status for status, _ in answers] == [200] * 10
    commands = await eventually(lambda: all_final(api, device.uid, 10), timeout=30)
    assert [c["state"] for c in commands] == ["done"] * 10
    assert device.most_open == 1 and device.ran == [c["id"] for c in commands]


async def test_commands_sent_one_after_another_run_in_that_order(api, connect):
    device = await connect(queue=2, work=0.05)
    for i in range(8):
        status, _ = await api.post(commands_of(device.uid), json={"payload": {"i": i}})
        assert status == 200
    await eventually(lambda: all_final(api, device.uid, 8), timeout=30)
    assert [c["payload"]["i"] for c in device.commands] == list(range(8))
    assert device.busy == []


@pytest.mark.parametrize("backend", [3.0], indirect=True)
async def test_the_timeout_counts_from_publishing(api, connect):
    # Each command takes 2 s at a board that runs one at a time: the second is published at ~2 s and done
    # at ~4 s, past 3 s from its creation but within 3 s of its publishing.
    device = await connect(queue=1, work=2.0)
    await asyncio.gather(*[api.post(commands_of(device.uid), json={"payload": {"i": i}}) for i in range(2)])
    commands = await eventually(lambda: all_final(api, device.uid, 2), timeout=10)
    assert [c["state"] for c in commands] == ["done", "done"]


@pytest.mark.parametrize("backend", [1.5], indirect=True)
async def test_a_held_command_that_is_never_sent_expires(api, connect):
    device = await connect(queue=1, handler=lambda command: None)  # accepts, never finishes
    for i in range(2):
        await api.post(commands_of(device.uid), json={"payload": {"i": i}})
    first, second = await eventually(lambda: all_final(api, device.uid, 2), timeout=5)
    assert (first["state"], first["error"]) == ("expired", "no acknowledgement in time")
    assert (second["state"], second["error"]) == ("expired", "not sent in time: earlier commands kept the device busy")
    assert [c["id"] for c in device.commands] == [first["id"]]


async def test_held_commands_of_a_device_that_goes_offline_expire_at_once(api, connect):
    device = await connect(queue=1, handler=lambda command: None)
    for i in range(3):
        await api.post(commands_of(device.uid), json={"payload": {"i": i}})
    await eventually(lambda: _states_are(api, device.uid, ["accepted", "queued", "queued"]))
    await device.disconnect()

    async def held_expired():
        commands = await history(api, device.uid)
        return commands if commands[1]["state"] == commands[2]["state"] == "expired" else None

    commands = await eventually(held_expired, timeout=2)  # not after the 60 s timeout
    assert commands[1]["error"] == commands[2]["error"] == "not sent: the device went offline"
    assert commands[0]["state"] == "accepted"  # at the board: its ack may still come, until the timeout
    assert len(device.commands) == 1


async def _states_are(api, uid, states):
    return [c["state"] for c in await history(api, uid)] == states


async def test_wait_answers_with_the_final_state_and_result(api, connect):
    device = await connect(queue=4, work=0.2)
    started = time.monotonic()
    status, body = await api.post(commands_of(device.uid) + "?wait=30", json={"payload": {"cmd": "x"}})
    assert time.monotonic() - started < 10  # woken by the ack, not by the end of the wait
    assert status == 200
    assert body == {"message": "Command sent.", "device_uid": device.uid, "id": body["id"],
                    "state": "done", "result": {"ok": True}, "error": None}


@pytest.mark.parametrize("suffix, message", [
    ("/reboot", "Reboot command sent."),
    ("/wifi-reset", "Wi-Fi reset command sent."),
    ("/command-buttons/relay_on/send", "Command sent."),
])
async def test_every_command_endpoint_can_wait(api, connect, suffix, message):
    answers = iter([("done", None, None), ("failed", None, "no Wi-Fi to forget")])
    device = await connect(queue=4, handler=lambda command: next(answers))
    base = f"/v1/user/devices/{device.uid}"
    await api.post(base + "/command-buttons", json={"id": "relay_on", "label": "On", "payload": {"cmd": "on"}})
    status, body = await api.post(base + suffix + "?wait=10")
    assert status == 200 and body["message"] == message and body["device_uid"] == device.uid
    assert (body["state"], body["result"], body["error"]) == ("done", None, None)
    _, body = await api.post(base + suffix + "?wait=10")
    assert (body["state"], body["error"]) == ("failed", "no Wi-Fi to forget")


async def test_a_wait_that_runs_out_answers_with_the_state_so_far(api, connect):
    device = await connect(queue=1, handler=lambda command: None)
    status, body = await api.post(commands_of(device.uid) + "?wait=1", json={"payload": {}})
    assert status == 200 and (body["state"], body["result"], body["error"]) == ("accepted", None, None)
    _, queued = await api.post(commands_of(device.uid) + "?wait=1", json={"payload": {}})
    assert queued["state"] == "queued"  # still held behind the first


async def test_without_wait_the_answer_says_sent_or_queued(api, connect):
    device = await connect(queue=1, handler=lambda command: None)
    _, first = await api.post(commands_of(device.uid), json={"payload": {}})
    _, second = await api.post(commands_of(device.uid), json={"payload": {}})
    assert first["state"] in ("sent", "accepted") and second["state"] == "queued"
    assert first["result"] is first["error"] is second["result"] is second["error"] is None


async def test_a_failed_publish_marks_the_command_failed_and_answers_503(api, connect, backend, monkeypatch):
    device = await connect(queue=4)

    async def no_broker(uid, command):
        raise BridgeUnavailable("connection lost")

    monkeypatch.setattr(backend.bridge, "send_command", no_broker)
    status, body = await api.post(commands_of(device.uid), json={"payload": {}})
    assert (status, body) == (503, {"message": "The MQTT broker cannot be reached; the command was not sent."})
    (command,) = await history(api, device.uid)
    assert (command["state"], command["error"]) == ("failed", "not published: connection lost")
