"""Power cuts during OTA: the emulated board's process is SIGKILLed at POINTS moments of each method's OTA (a bundle,
and an ESP32 app image into the unix board's file-backed partitions): TIMED of them spread evenly over the time one
OTA takes from the board taking the job to the new app online, and one the moment the board logs each of STEPS — the
download (with the staging of a bundle's files), the verification, the switch and the first boot.

After each cut the board starts again (as a board powers up) and must boot a working app, old or new: it comes
online and answers a `ping`; and the job must reach a final state that agrees with what the board runs (`updated`
only on the new md5, anything else on the old one). Each cut starts a new OTA, to whichever image the board is not
running, so every cut interrupts a real update. The count of cuts by phase is printed.
"""

import asyncio
import io
import os
import re
import time

import pytest
from mpfleet.tools import bundle

from ..polling import eventually, online_detail
from .device_harness import Board
from .test_ota import tree, versioned
from .test_ota_end_to_end import FINAL, board_online, job, maker, ota_backend  # noqa: F401 (fixtures)
from .test_ota_partition import app_image

pytestmark = pytest.mark.network

TIMED = 18  # cuts per method at moments spread over one OTA's time
# Cuts per method the moment the board logs one of these steps (from the download's middle to the confirmation),
# so that the short steps between the download and the first boot are cut too.
STEPS = ("ota: downloading 50", "ota: verified", "ota: applying", "ota: switched", "app: boot",
         "ota: on trial", "link: connecting", "the broker reached on trial")
POINTS = TIMED + len(STEPS)  # per method: 52 in all
PHASES = ("download", "verification", "switch", "first boot")


def phase_of(lines):
    """The phase a board was in, from its log since the OTA was triggered."""
    if any(line.startswith("--- exit") for line in lines):
        return "first boot"
    if any("ota: applying" in line or "ota: switched" in line for line in lines):
        return "switch"
    if any("ota: verified" in line for line in lines):
        return "verification"
    return "download"


async def upload(maker, uid, image, version):
    status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares",
                                    data={"file": io.BytesIO(image), "name": version, "version": version})
    assert status == 201, body
    return body["data"]["md5"]


async def running_md5(maker, uid):
    data = await eventually(lambda: online_detail(maker, uid), timeout=30)
    return (data["meta"].get("fw") or {}).get("md5")


async def trigger(maker, uid, md5):
    status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares/set-target", json={"md5": md5})
    assert status == 200, body
    status, answer = await maker.post(f"/v1/user/devices/{uid}/ota")
    assert status == 200, answer
    return answer["id"]


async def job_done(maker, uid, job_id, timeout=90):
    async def final():
        current = await job(maker, uid)
        return current if current and current["id"] == job_id and current["state"] in FINAL else None

    return await eventually(final, timeout=timeout, interval=0.1)


async def answers_ping(maker, uid):
    """True when a `ping` is answered `done` within 10 s."""
    status, answer = await maker.post(f"/v1/user/devices/{uid}/commands?wait=10", json={"payload": {"cmd": "ping"}})
    assert status == 200, answer
    return answer["state"] == "done"


async def cut_many(maker, uid, board, images):
    """POINTS power cuts of OTAs between the two `images` ((bytes, version) each). Returns {phase: count}."""
    md5s = [await upload(maker, uid, data, version) for data, version in images]
    # One OTA without a cut: how long one takes, from the board taking the job to the new app online.
    mark = board.mark()
    first = await trigger(maker, uid, md5s[0])
    await board.wait_for(f"cmd: {first} accepted", timeout=10, start=mark)
    started = time.monotonic()
    assert (await job_done(maker, uid, first))["state"] == "updated", board.log()
    await running_md5(maker, uid)
    span = time.monotonic() - started
    counts = dict.fromkeys(PHASES, 0)
    for point in range(POINTS):
        current = await running_md5(maker, uid)
        target = md5s[1] if current == md5s[0] else md5s[0]
        mark = board.mark()
        job_id = await trigger(maker, uid, target)
        await board.wait_for(f"cmd: {job_id} accepted", timeout=10, start=mark)
        if point < TIMED:
            await asyncio.sleep(span * (point + 0.5) / TIMED)
        else:
            await board.wait_for(re.escape(STEPS[point - TIMED]), timeout=60, start=mark)
        counts[phase_of(board.lines[mark:])] += 1
        cut = board.mark()
        process = board._proc
        if process is not None and process.returncode is None:
            process.kill()  # the power cut: the harness starts the board again, as a board powers up
        # Back online after the cut, or after the reset the cut came just after (a command sent before the backend
        # sees the old session gone is lost with it, as with any command to a board that loses power: it expires).
        await board.wait_for("link: online", timeout=60, start=cut)
        try:
            done = await job_done(maker, uid, job_id)
        except AssertionError:
            raise AssertionError(f"cut {point} ({phase_of(board.lines[mark:])}): job {await job(maker, uid)}\n"
                                 + "\n".join(board.lines[mark:])) from None
        now = await running_md5(maker, uid)
        assert (done["state"] == "updated") == (now == target), (point, done, now, target,
                                                                 "\n".join(board.lines[mark:]))
        if not await answers_ping(maker, uid):
            _, commands = await maker.get(f"/v1/user/devices/{uid}/commands")
            raise AssertionError(f"cut {point}: no answer to a ping\n{commands['data'][:4]}\n"
                                 + "\n".join(board.lines[mark:]))
    return counts


async def test_power_cuts_during_bundle_and_partition_otas_always_leave_a_working_board(
        maker, built_flash, tmp_path, umqtt_cache, capsys):
    bundles = []
    for version in ("0.4.0", "0.5.0"):
        filler = tmp_path / f"filler-{version}"
        filler.write_bytes(os.urandom(64 * 1024))
        data, _ = bundle.make(version=version, source=tree(tmp_path, f"fw-{version}", versioned(version)),
                              add=[filler], cache_dir=umqtt_cache)
        bundles.append((data, version))
    images = [(app_image(os.urandom(300 * 1024), version=v.encode()), v) for v in ("2.0.0", "2.1.0")]
    uid_a, board_a = await board_online(maker, built_flash, tmp_path, "bundle-board")
    uid_b, board_b = await board_online(maker, built_flash, tmp_path, "partition-board")
    try:
        by_bundle, by_partition = await asyncio.gather(cut_many(maker, uid_a, board_a, bundles),
                                                       cut_many(maker, uid_b, board_b, images))
    finally:
        await board_a.stop()
        await board_b.stop()
    with capsys.disabled():
        print(f"\npower cuts: {2 * POINTS} (bundle {by_bundle}; partition {by_partition}); after each the board "
              "booted a working app and the job reached a final state")
    for counts in (by_bundle, by_partition):
        assert sum(counts.values()) == POINTS
        assert counts["download"] and counts["first boot"], counts
