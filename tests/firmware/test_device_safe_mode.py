"""The boot-loop counter on the emulated board against the real backend: five boots in a row that never
reach the broker, and the next boot starts in safe mode (no user module, `safe_mode: true` in `status`);
a boot that reaches the broker resets the counter.
"""

import json
import socket

import pytest

from ..polling import eventually, final_command, online_detail, send_command
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network

SAFE_AFTER = 5


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


async def boot_unreached(flash):
    """One boot whose every attempt fails: the process is stopped after its first failed connect."""
    async with Board(flash) as board:
        await board.wait_for(r"link: connect failed: OSError")
    assert "link: online" not in board.log()
    return board


async def test_five_boots_that_never_reach_the_broker_make_the_next_one_safe(
        api, registered, built_flash, tmp_path):
    uid = registered["uid"]
    flash = make_flash(built_flash, tmp_path / "flash", registered)
    good = json.loads((flash / "config.json").read_text())
    bad = json.loads(json.dumps(good))
    bad["mqtt"]["port"] = closed_port()
    (flash / "config.json").write_text(json.dumps(bad))
    for boot in range(1, SAFE_AFTER + 1):
        board = await boot_unreached(flash)
        assert "SAFE MODE" not in board.log(), f"boot {boot}"
        assert (flash / "unreached").read_text() == str(boot)

    (flash / "config.json").write_text(json.dumps(good))
    async with Board(flash) as board:
        await board.wait_for(r"app: SAFE MODE: 5 boots in a row never reached the broker")
        data = await eventually(lambda: online_detail(api, uid))
        assert data["meta"]["safe_mode"] is True and data["meta"]["boot"]["count"] == SAFE_AFTER + 1
        await board.wait_for(r"app: free heap \d+ after connect")  # after the counter was reset
        assert (flash / "unreached").read_text() == "0"  # reached: the counter starts again
        command = await send_command(api, uid, {"cmd": "relay_toggle"})  # no user module in safe mode
        assert command["state"] == "failed" and "unknown custom command 'relay_toggle'" in command["error"]
        command = await send_command(api, uid, {"cmd": "ping"})  # the built-ins still answer
        assert command["state"] == "done"

        mark = board.mark()
        status, answer = await api.post(f"/v1/user/devices/{uid}/reboot")
        assert status == 200
        assert (await eventually(lambda: final_command(api, uid, answer["id"])))["state"] == "done"
        await board.wait_for(r"link: online as", start=mark)

        async def normal():
            data = await online_detail(api, uid)
            return data if data and data["meta"]["boot"]["count"] == SAFE_AFTER + 2 else None

        data = await eventually(normal)
        assert data["meta"]["safe_mode"] is False
        assert "SAFE MODE" not in "\n".join(board.lines[mark:])
        command = await send_command(api, uid, {"cmd": "relay_toggle", "state": "on"})
        assert command["state"] == "done" and command["result"] == {"relay": "on"}


async def test_a_boot_that_reaches_the_broker_resets_the_counter(api, registered, built_flash, tmp_path):
    flash = make_flash(built_flash, tmp_path / "flash", registered)
    (flash / "unreached").write_text(str(SAFE_AFTER - 1))  # four failed boots behind it
    async with Board(flash) as board:
        data = await eventually(lambda: online_detail(api, registered["uid"]))
        await board.wait_for(r"app: free heap \d+ after connect")
        assert data["meta"]["safe_mode"] is False
        assert (flash / "unreached").read_text() == "0"
    assert "SAFE MODE" not in board.log()
