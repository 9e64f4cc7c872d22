"""An OTA campaign end to end: three emulated boards (the real MicroPython unix port running the firmware, as
test_ota_end_to_end.py starts them), a real bundle uploaded to each over REST, and a campaign in waves of one that
takes each through an ordinary OTA job, one after the other. Real backend, embedded broker and SQLite."""

import io
from datetime import datetime

import pytest

from ..polling import eventually, online_detail
from .test_ota_end_to_end import board_online, bundle_v2, maker, ota_backend  # noqa: F401: fixtures

pytestmark = pytest.mark.network

CAMPAIGN_TIMEOUT = 240.0  # three OTAs one after the other, on a busy machine


async def test_a_campaign_in_waves_of_one_updates_three_boards_in_turn(maker, built_flash, tmp_path, bundle_v2):
    boards = []
    try:
        for n in range(3):
            uid, board = await board_online(maker, built_flash, tmp_path, name=f"board{n}")
            boards.append((uid, board))
            status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares",
                                            data={"file": io.BytesIO(bundle_v2), "name": "build", "version": "0.2.0"})
            assert status == 201, body
        md5 = body["data"]["md5"]
        status, answer = await maker.post("/v1/user/campaigns", json={
            "name": "0.2.0 to the bench", "md5": md5, "target": {"uids": [uid for uid, _ in boards]}, "wave_size": 1})
        assert status == 201, answer
        path = f"/v1/user/campaigns/{answer['data']['id']}"

        async def over():
            campaign = (await maker.get(path))[1]["data"]
            return campaign if campaign["state"] not in ("running", "paused") else None

        campaign = await eventually(over, timeout=CAMPAIGN_TIMEOUT, interval=0.5)
        logs = [board.log() for _, board in boards]
        assert campaign["state"] == "completed" and campaign["counts"] == {"updated": 3}, (campaign, logs)
        waves = campaign["waves"]
        for before, after in zip(waves, waves[1:]):  # each wave started once the one before had ended
            assert datetime.fromisoformat(before["final_at"]) <= datetime.fromisoformat(after["started_at"])
        members = (await maker.get(path + "/devices"))[1]["data"]
        assert [(m["uid"], m["wave"], m["state"]) for m in members] == [
            (uid, n + 1, "updated") for n, (uid, _) in enumerate(boards)]
        for member in members:
            job = (await maker.get(f"/v1/user/devices/{member['uid']}/ota"))[1]["data"]
            assert job["id"] == member["job_id"] and job["state"] == "updated"
            after = await eventually(lambda: online_detail(maker, member["uid"]), timeout=20)
            assert after["meta"]["fw"] == {"version": "0.2.0", "md5": md5}
    finally:
        for _, board in boards:
            await board.stop()
