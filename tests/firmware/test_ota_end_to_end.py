"""OTA end to end, as a maker meets it: a bundle (or an ESP32 app image) uploaded over REST, set as the target,
`POST .../ota`, and an emulated board (the real MicroPython unix port, tools/launcher.py) that downloads it from the
backend's own device listener over verified TLS, switches and comes back. Real backend, real embedded broker, real
SQLite; the job is read over REST (GET .../ota) and the board's md5 from its status.
"""

import asyncio
import io
import os

import pytest
from mpfleet.backend.bundle_format import read_manifest
from mpfleet.tools import bundle

from ..conftest import Backend
from ..polling import detail, eventually, final_command, online_detail
from ..server_process import free_port
from .device_harness import Board, make_flash
from .test_ota import tree, versioned
from .test_ota_partition import app_image

pytestmark = pytest.mark.network

FINAL = ("updated", "failed", "rolled_back", "expired")
JOB_TIMEOUT = 60.0


@pytest.fixture
async def ota_backend(tmp_path):
    """A backend whose boards reach it as 127.0.0.1, its device listener and broker on fixed ports (a restart keeps
    the URL an open job's board holds, and the broker port of the boards' config.json)."""
    backend = Backend(tmp_path / "var", public_host="127.0.0.1", device_http_port=free_port(),
                      mqtt_tls_port=free_port())
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def maker(ota_backend):
    return await ota_backend.api_for("maker")


@pytest.fixture(scope="session")
def bundle_v2(umqtt_cache, tmp_path_factory):
    """A bundle of version 0.2.0 that differs from the built firmware by start.py (its VERSION) only."""
    data, _ = bundle.make(version="0.2.0", source=tree(tmp_path_factory.mktemp("e2e-v2"), "fw", versioned("0.2.0")),
                          cache_dir=umqtt_cache)
    return data


@pytest.fixture(scope="session")
def bundle_big(umqtt_cache, tmp_path_factory):
    """A bundle of version 0.3.0 with 400 KB of random bytes added: a download that takes a while."""
    tmp = tmp_path_factory.mktemp("e2e-big")
    filler = tmp / "filler.bin"
    filler.write_bytes(os.urandom(400 * 1024))
    data, _ = bundle.make(version="0.3.0", source=tree(tmp, "fw", versioned("0.3.0")), add=[filler],
                          cache_dir=umqtt_cache)
    return data


async def board_online(maker, built_flash, tmp_path, name="board"):
    registration = await maker.register(name=name, platform="unix", board="unix")
    flash = make_flash(built_flash, tmp_path / name, registration, period=60)
    board = Board(flash)
    board.start()
    await eventually(lambda: online_detail(maker, registration["uid"]), timeout=20)
    return registration["uid"], board


async def start_ota(maker, uid, image, version):
    """Upload `image`, set it as the target and trigger the OTA; returns (the firmware's md5, the OTA answer)."""
    status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares",
                                    data={"file": io.BytesIO(image), "name": "build", "version": version})
    assert status == 201, body
    md5 = body["data"]["md5"]
    status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares/set-target", json={"md5": md5})
    assert status == 200, body
    status, answer = await maker.post(f"/v1/user/devices/{uid}/ota")
    assert status == 200, answer
    return md5, answer


async def job(maker, uid):
    _, body = await maker.get(f"/v1/user/devices/{uid}/ota")
    return body["data"]


async def final_job(maker, uid, timeout=JOB_TIMEOUT):
    async def final():
        current = await job(maker, uid)
        return current if current and current["state"] in FINAL else None

    return await eventually(final, timeout=timeout, interval=0.2)


async def job_in(maker, uid, state, timeout=JOB_TIMEOUT):
    async def reached():
        current = await job(maker, uid)
        return current if current and current["state"] == state else None

    return await eventually(reached, timeout=timeout, interval=0.05)


def states(history):
    """The states of a job's history, repeats (progress steps) folded."""
    seen = []
    for entry in history:
        if not seen or seen[-1] != entry["state"]:
            seen.append(entry["state"])
    return seen


async def test_a_bundle_ota_updates_the_board_downloading_only_the_changed_file(maker, built_flash, tmp_path,
                                                                                bundle_v2):
    uid, board = await board_online(maker, built_flash, tmp_path)
    try:
        before = await detail(maker, uid)
        md5, answer = await start_ota(maker, uid, bundle_v2, "0.2.0")
        assert answer["message"] == "OTA check triggered." and answer["id"]
        done = await final_job(maker, uid)
        assert done["state"] == "updated", (done, board.log())
        assert done["id"] == answer["id"]
        assert states(done["history"]) == ["sent", "downloading", "verified", "applying", "updated"]
        after = await eventually(lambda: online_detail(maker, uid), timeout=20)
        assert after["current_firmware"]["md5"] == md5 and after["current_firmware"]["is_current"]
        assert after["meta"]["fw"] == {"version": "0.2.0", "md5": md5}
        assert after["last_ota_at"] and after["last_ota_at"] != before["last_ota_at"]
        # Incremental: the manifest and start.mpy, not the whole bundle.
        manifest = read_manifest(bundle_v2)
        changed = [e for e in manifest.files if e.path == "start.mpy"][0]
        head = manifest.files[0].offset
        assert changed.size <= done["bytes_served"] < head + changed.size + 4096 < len(bundle_v2), done
        command = await eventually(lambda: final_command(maker, uid, answer["id"]))  # the ack follows the status
        assert command["state"] == "done" and command["result"] == {"version": "0.2.0", "md5": md5}
    finally:
        await board.stop()


async def test_a_partition_ota_boots_the_new_slot_and_reports_its_md5(maker, built_flash, tmp_path):
    uid, board = await board_online(maker, built_flash, tmp_path)
    image = app_image(os.urandom(200 * 1024), version=b"1.5.0")
    try:
        md5, _ = await start_ota(maker, uid, image, "1.5.0")
        done = await final_job(maker, uid)
        assert done["state"] == "updated", (done, board.log())
        assert states(done["history"]) == ["sent", "downloading", "verified", "applying", "updated"]
        after = await eventually(lambda: online_detail(maker, uid), timeout=20)
        assert after["meta"]["fw"]["md5"] == md5 and after["current_firmware"]["md5"] == md5
        assert done["bytes_served"] == len(image)
    finally:
        await board.stop()


async def test_a_blob_corrupted_on_disk_fails_on_md5_and_the_board_stays_on_its_firmware(maker, ota_backend,
                                                                                        built_flash, tmp_path,
                                                                                        bundle_big):
    uid, board = await board_online(maker, built_flash, tmp_path)
    try:
        status, body = await maker.post(f"/v1/user/devices/{uid}/firmwares",
                                        data={"file": io.BytesIO(bundle_big), "name": "build", "version": "0.3.0"})
        md5 = body["data"]["md5"]
        blob = ota_backend.settings.data_dir / "firmware" / f"{md5}.bin"
        data = bytearray(blob.read_bytes())
        filler = [e for e in read_manifest(bundle_big).files if e.path == "filler.bin"][0]
        data[filler.offset + 1000] ^= 0xFF  # in a file the board must download (it has none like it); size unchanged
        blob.write_bytes(bytes(data))
        await maker.post(f"/v1/user/devices/{uid}/firmwares/set-target", json={"md5": md5})
        status, _ = await maker.post(f"/v1/user/devices/{uid}/ota")
        assert status == 200
        done = await final_job(maker, uid)
        assert done["state"] == "failed" and ("md5" in done["error"] or "sha256" in done["error"]), done
        after = await eventually(lambda: online_detail(maker, uid), timeout=20)
        assert (after["meta"].get("fw") or {}).get("md5") != md5
        assert not after["current_firmware"] or after["current_firmware"]["md5"] != md5
    finally:
        await board.stop()


async def test_a_backend_restart_mid_download_loses_nothing(maker, ota_backend, built_flash, tmp_path, bundle_big):
    uid, board = await board_online(maker, built_flash, tmp_path)
    try:
        md5, _ = await start_ota(maker, uid, bundle_big, "0.3.0")
        await job_in(maker, uid, "downloading")
        await ota_backend.restart()
        done = await final_job(maker, uid)
        assert done["state"] == "updated", (done, board.log())
        assert (await eventually(lambda: online_detail(maker, uid), timeout=20))["meta"]["fw"]["md5"] == md5
    finally:
        await board.stop()


async def test_a_board_killed_mid_download_resumes_and_is_updated_only_on_the_new_md5(maker, built_flash, tmp_path,
                                                                                      bundle_big):
    uid, board = await board_online(maker, built_flash, tmp_path)
    try:
        md5, _ = await start_ota(maker, uid, bundle_big, "0.3.0")
        await job_in(maker, uid, "downloading")
        mark = board.mark()
        board._proc.kill()  # a power cut: the harness starts it again, as a board powers up
        await board.wait_for("--- exit", timeout=5, start=mark)
        done = await final_job(maker, uid)
        assert done["state"] == "updated", (done, board.log())
        assert (await eventually(lambda: online_detail(maker, uid), timeout=20))["meta"]["fw"]["md5"] == md5
        assert "downloading" in states(done["history"])
    finally:
        await board.stop()


async def test_a_new_app_that_crashes_at_boot_is_rolled_back_and_the_board_comes_back(maker, built_flash, tmp_path,
                                                                                      umqtt_cache):
    def broken(d):
        versioned("0.9.0")(d)
        app = d / "app.py"
        app.write_text(app.read_text() + "\nraise RuntimeError('broken build')\n")

    data, _ = bundle.make(version="0.9.0", source=tree(tmp_path, "broken", broken), cache_dir=umqtt_cache)
    uid, board = await board_online(maker, built_flash, tmp_path)
    try:
        before = (await detail(maker, uid))["meta"].get("fw")  # none: a report without an md5 is not kept
        md5, _ = await start_ota(maker, uid, data, "0.9.0")
        done = await final_job(maker, uid, timeout=90)
        assert done["state"] == "rolled_back", (done, board.log())
        assert done["error"]
        after = await eventually(lambda: online_detail(maker, uid), timeout=20)
        assert after["meta"].get("fw") == before
        assert await asyncio.wait_for(board.wait_for("chooser: .*back to", timeout=1), 2)
    finally:
        await board.stop()


async def test_an_image_larger_than_the_boards_ota_slot_fails_and_the_board_stays_on_its_firmware(maker, built_flash,
                                                                                                   tmp_path):
    uid, board = await board_online(maker, built_flash, tmp_path)
    (board.flash / ".board").mkdir(exist_ok=True)
    (board.flash / ".board" / "ota_size").write_text(str(64 * 1024))  # the unix board's slots: 64 KB
    image = app_image(os.urandom(100 * 1024), version=b"1.6.0")
    try:
        md5, _ = await start_ota(maker, uid, image, "1.6.0")
        done = await final_job(maker, uid)
        assert done["state"] == "failed" and "larger than the OTA slot" in done["error"], done
        assert done["bytes_served"] == 0  # refused before a byte was downloaded
        after = await eventually(lambda: online_detail(maker, uid), timeout=20)
        assert (after["meta"].get("fw") or {}).get("md5") != md5
    finally:
        await board.stop()
