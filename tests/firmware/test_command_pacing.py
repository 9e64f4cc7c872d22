"""Commands paced by the backend to a real emulated board: a burst far beyond the board's queue all runs, in
the order the backend stored it, and nothing is refused or expires.

The board is the real `micropython` running the built firmware (device_harness.Board) against the in-process
backend (tests/conftest.py), whose command timeout is the default 60 s.
"""

import asyncio
import re

import pytest
from mpfleet.backend import schemas

from ..polling import eventually, online_detail
from .device_harness import Board, make_flash

pytestmark = pytest.mark.network

BURST = 100


@pytest.fixture(params=["reported", "unreported"])
def queue_report(request, monkeypatch):
    """`reported`: the backend paces by the board's cmd_queue. `unreported`: the backend keeps no cmd_queue, as
    with a board whose firmware does not say it, and sends one command at a time."""
    if request.param == "unreported":
        monkeypatch.setattr(schemas, "_STATUS_META", tuple(k for k in schemas._STATUS_META if k != "cmd_queue"))
    return request.param


async def test_a_burst_of_100_commands_all_run_in_the_order_stored(api, registered, built_flash, tmp_path,
                                                                   queue_report):
    uid = registered["uid"]
    async with Board(make_flash(built_flash, tmp_path / "flash", registered)) as board:
        data = await eventually(lambda: online_detail(api, uid), timeout=10)
        assert ("cmd_queue" in data["meta"]) == (queue_report == "reported")

        answers = await asyncio.gather(*(
            api.post(f"/v1/user/devices/{uid}/commands", json={"payload": {"cmd": "ping"}}) for _ in range(BURST)))
        assert [status for status, _ in answers] == [200] * BURST

        async def all_final():
            _, body = await api.get(f"/v1/user/devices/{uid}/commands?limit=500")
            commands = body["data"][::-1]  # oldest first: the order the backend stored them in
            return commands if all(c["state"] in ("done", "failed", "expired") for c in commands) else None

        commands = await eventually(all_final, timeout=55)  # within the 60 s a command may wait to be sent
        assert len(commands) == BURST
        assert [c["state"] for c in commands] == ["done"] * BURST, {c["state"] for c in commands}
        ran = [match.group(1) for line in board.lines if (match := re.match(r"cmd: (\S+) done", line))]
        assert ran == [c["id"] for c in commands]
        assert "busy" not in board.log() and "dropped" not in board.log()
