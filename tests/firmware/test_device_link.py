"""The device runtime on the emulated board against the real backend: online, telemetry, commands, TLS.

Each test builds nothing: the firmware is built once per session (tools/firmware_build.py, umqtt.simple
from the package index once: `network`), copied per board, and given a config.json from a registration.
Every board is the real `micropython` process (tests/firmware/device_harness.py).
"""

import asyncio
import json
import time

import aiomqtt
import pytest
from mpfleet.backend import keys

from ..polling import detail, eventually, final_command, online_detail, send_command
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network


@pytest.fixture
async def board(built_flash, registered, tmp_path):
    async with Board(make_flash(built_flash, tmp_path / "flash", registered)) as board:
        yield board


async def test_the_board_is_online_within_5_s_with_its_status(api, registered, built_flash, tmp_path):
    flash = make_flash(built_flash, tmp_path / "flash", registered)
    # What deploy/OTA leaves for the running app bundle; without it the status says the version only,
    # which the backend does not keep (it matches firmwares by md5).
    manifest = {"version": "0.1.0", "md5": "e4b7f01d6b9f3d6fdb0d53f5e8be2d34"}
    (flash / "fw.json").write_text(json.dumps(manifest))
    board = Board(flash)
    started = time.monotonic()
    board.start()
    data = await eventually(lambda: online_detail(api, registered["uid"]), timeout=5)
    print(f"online after {time.monotonic() - started:.2f} s")
    assert data["is_online"] is True and data["local_ip"] == "127.0.0.1" and data["last_rssi"] == -50
    meta = data["meta"]
    assert meta["boot"] == {"reason": "power_on", "count": 1}
    assert meta["tls_verified"] is True and meta["safe_mode"] is False
    assert meta["fw"] == manifest and meta["platform"] == "unix" and meta["board"] == "unix"
    await board.wait_for(r"link: online as \S+ \(tls verified\)")
    await board.stop()


async def test_telemetry_rows_arrive(api, registered, board):
    uid = registered["uid"]

    async def rows():
        _, body = await api.get(f"/v1/user/devices/{uid}/telemetry/latest")
        return body["data"] if {"uptime", "free_mem", "rssi", "relay"} <= set(body["data"]) else None

    latest = await eventually(rows, timeout=5)
    assert latest["relay"]["value"] == 0 and latest["rssi"]["value"] == -50  # user hook, board
    assert latest["free_mem"]["value"] > 0


async def test_a_custom_command_returns_its_handlers_result(api, registered, board):
    uid = registered["uid"]
    await eventually(lambda: online_detail(api, uid))
    command = await send_command(api, uid, {"cmd": "relay_toggle", "state": "on"})
    assert command["state"] == "done" and command["result"] == {"relay": "on"}
    accepted = (await board.wait_for(rf"cmd: {command['id']} accepted")).string
    assert board.lines.index(accepted) < board.lines.index((await board.wait_for(rf"cmd: {command['id']} done")).string)
    await board.wait_for(r"board: relay on \(emulated\)")
    command = await send_command(api, uid, {"cmd": "relay_toggle"})
    assert command["result"] == {"relay": "off"}
    command = await send_command(api, uid, {"cmd": "ping"})  # a built-in, by name
    assert command["state"] == "done" and command["result"]["uptime"] >= 0


async def test_unknown_failing_and_malformed_commands_are_failed_and_the_board_keeps_running(
        api, backend, registered, board):
    uid = registered["uid"]
    await eventually(lambda: online_detail(api, uid))
    command = await send_command(api, uid, {"cmd": "self_destruct"})
    assert command["state"] == "failed" and "unknown custom command 'self_destruct'" in command["error"]
    assert f"cmd: {command['id']} accepted" not in board.log()
    command = await send_command(api, uid, {"cmd": "relay_toggle", "state": "sideways"})  # the handler raises
    assert command["state"] == "failed" and command["error"] == "ValueError: state must be 'on' or 'off'"
    status, answer = await api.post(f"/v1/user/devices/{uid}/ota")  # no OTA yet: failed, not fatal
    if status == 200:
        assert (await eventually(lambda: final_command(api, uid, answer["id"])))["state"] == "failed"

    # Straight onto the device's cmd topic, past the REST API's checks.
    topic = f"mpfleet/v1/{uid}/cmd"
    await backend.bridge._publish(topic, b'{"id": "broken0000000000000000", "type": "reb')
    await board.wait_for(r"cmd: broken0000000000000000 failed: malformed JSON")
    # Its ack is longer in bytes than in characters: the packet's length must count bytes, or the session breaks.
    await backend.bridge._publish(topic, '{"id": "caf\u00e9\u2615000000000000000", "type": "reb'.encode())
    await board.wait_for("cmd: caf\u00e9\u2615000000000000000 failed: malformed JSON")
    await backend.bridge._publish(topic, json.dumps({"id": "x" * 22, "type": "explode", "payload": {}}).encode())
    await board.wait_for(r"cmd: x{22} failed: ValueError: unknown command type 'explode'")
    await backend.bridge._publish(topic, b'[1, 2]')
    await board.wait_for(r"cmd: no id, ignored")

    command = await send_command(api, uid, {"cmd": "set_telemetry_period", "period": 7})
    assert command["state"] == "done" and command["result"] == {"period": 7}
    assert json.loads((board.flash / "settings.json").read_text()) == {"period": 7}
    assert board.exits == [] and "session lost" not in board.log()  # one run, one session throughout


async def test_status_says_how_many_commands_the_board_queues_and_a_burst_beyond_is_acked_busy(
        api, backend, registered, board):
    # Straight onto the board's cmd topic with the backend's own login, past the backend's pacing: the board's
    # answers are read on its `ack` topic (the backend ignores acks of commands it never sent).
    uid = registered["uid"]
    await eventually(lambda: online_detail(api, uid))
    endpoint = backend.client.app[keys.BROKER_ENDPOINT]
    async with aiomqtt.Client(hostname=endpoint.host, port=endpoint.port, username=endpoint.username,
                              password=endpoint.password, identifier="test-burst") as client:
        await client.subscribe(f"mpfleet/v1/{uid}/status", qos=1)
        await client.subscribe(f"mpfleet/v1/{uid}/ack", qos=1)
        messages = aiter(client.messages)
        status = json.loads((await asyncio.wait_for(anext(messages), 5)).payload)  # retained
        assert status["online"] is True and status["cmd_queue"] == 4

        # Twice what it queues: the rest is refused (firmware/app.py keeps the ids of as many refused ones).
        ids = [f"burst{i:017d}" for i in range(2 * status["cmd_queue"])]
        await asyncio.gather(*(client.publish(f"mpfleet/v1/{uid}/cmd", json.dumps({"id": i, "type": "ping"}), qos=1)
                               for i in ids))
        acks = {i: [] for i in ids}
        while any(not states or states[-1]["state"] == "accepted" for states in acks.values()):
            ack = json.loads((await asyncio.wait_for(anext(messages), 5)).payload)
            acks[ack["id"]].append(ack)
    busy = [i for i, states in acks.items() if states[-1]["state"] == "failed"]
    assert busy, "no command found the queue full"
    for i, states in acks.items():
        if i in busy:  # refused at once: never accepted
            assert states == [{"id": i, "state": "failed", "error": "busy: command queue full"}]
        else:
            assert [a["state"] for a in states] == ["accepted", "done"]
    assert "dropped" not in board.log()
    assert (await send_command(api, uid, {"cmd": "ping"}))["state"] == "done"  # and the board goes on


async def test_reboot_comes_back_with_the_next_boot_count_and_reason_soft(api, registered, board):
    uid = registered["uid"]
    await eventually(lambda: online_detail(api, uid))
    status, answer = await api.post(f"/v1/user/devices/{uid}/reboot")
    assert status == 200
    command = await eventually(lambda: final_command(api, uid, answer["id"]))
    assert command["state"] == "done"
    await board.wait_for(r"--- exit 75")

    async def rebooted():
        data = await online_detail(api, uid)
        return data if data and data["meta"]["boot"]["count"] == 2 else None

    data = await eventually(rebooted)
    assert data["meta"]["boot"] == {"reason": "soft", "count": 2}


async def test_a_wrong_ca_is_refused_and_the_board_never_shows_online(api, built_flash, tmp_path, registered):
    other = await asyncio.to_thread(_other_ca, tmp_path / "other")
    flash = make_flash(built_flash, tmp_path / "flash", registered)
    cfg = json.loads((flash / "config.json").read_text())
    cfg["mqtt"]["ca"] = other
    (flash / "config.json").write_text(json.dumps(cfg))
    async with Board(flash) as board:
        await board.wait_for(r"link: connect failed: ValueError: .*not correctly signed by the trusted CA")
        await asyncio.sleep(1.5)
        assert (await detail(api, registered["uid"]))["status"] == "pending"
    assert "link: online" not in board.log()


def _other_ca(directory):
    """The PEM of a CA that did not sign the broker's certificate (another data dir's)."""
    from mpfleet.backend.broker.tls import ensure_certificates

    ensure_certificates(directory, ["127.0.0.1"])
    return (directory / "ca.pem").read_text()
