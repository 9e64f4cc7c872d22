"""The backend's side of OTA (docs/api.md, OTA; docs/protocol.md, `ota`): jobs, the download listener, the checks.

Real parts: the app on real sockets over a real SQLite file, the embedded broker, and a device played by
tests/fake_device.py over MQTT with TLS (the board's side of a job: acks, `ota` reports, its status on the md5
it runs after a reboot) and downloads over HTTPS trusting only the CA its registration gave it.
"""

import asyncio
import hashlib
import io
import os
import socket
import sqlite3
import subprocess
import time
import urllib.request

import aiohttp
import pytest
from mpfleet.backend import bundle_format, keys
from mpfleet.backend.ota_tokens import TokenSigner
from mpfleet.backend.service import CAME_BACK_OLD

from .conftest import Backend
from .fake_device import FakeDevice
from .polling import eventually, final_command, online_detail
from .server_process import MPFLEET, ServerProcess, free_port

OLD = bundle_format.pack("1.0", [("app.mpy", b"old app " * 500)])
NEW = bundle_format.pack("2.0", [("app.mpy", os.urandom(30000)), ("lib/extra.mpy", b"x" * 700)])
OPEN = ("sent", "downloading", "verified", "applying")


def md5(data):
    return hashlib.md5(data).hexdigest()


def form(content, name):
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("name", name)
    data.add_field("file", io.BytesIO(content), filename="firmware.bin", content_type="application/octet-stream")
    return data


async def start_backend(tmp_path, **settings):
    backend = Backend(tmp_path / "var", public_host="127.0.0.1", device_http_port=free_port(), **settings)
    await backend.start()
    return backend


@pytest.fixture
async def ota_backend(tmp_path):
    backend = await start_backend(tmp_path)
    yield backend
    await backend.stop()


@pytest.fixture
async def ota_api(ota_backend):
    return await ota_backend.api_for("alice")


class Board:
    """A registered device with a target firmware, online as a FakeDevice reporting the md5 it runs."""

    def __init__(self, api, registration):
        self.api = api
        self.registration = registration
        self.uid = registration["uid"]
        self.path = f"/v1/user/devices/{self.uid}"
        self.device = None

    @classmethod
    async def online(cls, api, image=NEW, *, board="unix", platform="unix", running=OLD):
        board = cls(api, await api.register(platform=platform, board=board))
        status, uploaded = await api.post(board.path + "/firmwares", data=form(image, "new"))
        assert status == 201, uploaded
        assert (await api.post(board.path + "/firmwares/set-target", json={"md5": md5(image)}))[0] == 200
        await board.come_back(running)
        return board

    async def come_back(self, image):
        """The board (re)connects and reports running `image` (its md5), as the firmware does at boot."""
        if self.device is not None:
            await self.device.close()
        detail = (await self.api.get(self.path))[1]["data"]
        self.device = FakeDevice(self.registration["mqtt"], detail["port"],
                                 status={"fw": {"md5": md5(image), "version": "?"}},
                                 handler=lambda command: None if command["type"] == "ota" else ("done", None, None))
        await self.device.connect()
        await eventually(lambda: self._reported(md5(image)))

    async def _reported(self, fw_md5):
        detail = await online_detail(self.api, self.uid)
        return detail is not None and detail["meta"].get("fw", {}).get("md5") == fw_md5

    async def trigger(self):
        """POST .../ota; returns the `ota` command as the board received it (after it acked `accepted`)."""
        status, answer = await self.api.post(self.path + "/ota")
        assert status == 200, answer
        assert answer["message"] == "OTA check triggered." and answer["device_uid"] == self.uid

        async def received():
            return next((c for c in self.device.commands if c["id"] == answer["id"]), None)

        return await eventually(received)

    async def job(self):
        status, body = await self.api.get(self.path + "/ota")
        assert status == 200, body
        return body["data"]

    async def job_served(self, at_least):
        """The job once its bytes_served reached `at_least`, else None."""
        job = await self.job()
        return job if job["bytes_served"] >= at_least else None

    async def job_in(self, *states):
        async def check():
            job = await self.job()
            return job if job and job["state"] in states else None

        return await eventually(check)

    async def close(self):
        if self.device is not None:
            await self.device.close()


@pytest.fixture
async def board(ota_api):
    board = await Board.online(ota_api)
    yield board
    await board.close()


async def until_progress(board, progress):
    async def check():
        job = await board.job()
        return job if job["progress"] == progress else None

    return await eventually(check)


async def test_the_happy_path_goes_through_every_state_in_order_and_ends_on_the_new_md5(board, ota_backend):
    command = await board.trigger()
    payload = command["payload"]
    ota_port = ota_backend.client.app[keys.OTA_PUBLIC].port
    assert command["type"] == "ota" and set(payload) == {"url", "md5", "sha256", "size", "version", "kind"}
    assert payload["url"].startswith(f"https://127.0.0.1:{ota_port}/v1/device/ota/")
    assert len(payload["url"].rsplit("/", 1)[1]) <= 120
    assert (payload["md5"], payload["sha256"], payload["size"], payload["kind"]) == (
        md5(NEW), hashlib.sha256(NEW).hexdigest(), len(NEW), "bundle")
    job = await board.job()
    assert (job["id"], job["state"], job["firmware"]["md5"]) == (command["id"], "sent", md5(NEW))
    assert job["bytes_served"] == 0 and job["history"][0]["state"] == "sent"

    status, headers, body = await board.device.download(payload["url"])
    assert status == 200 and body == NEW
    assert headers["ETag"] == f'"{md5(NEW)}"' and int(headers["Content-Length"]) == len(NEW)
    assert headers["Content-Type"] == "application/octet-stream" and headers["Accept-Ranges"] == "bytes"
    for progress in (10, 50, 100):
        await board.device.report_ota(command["id"], "downloading", progress=progress)
    await until_progress(board, 100)
    await board.device.report_ota(command["id"], "verified")
    await board.job_in("verified")
    await board.device.report_ota(command["id"], "applying")
    await board.job_in("applying")
    before = (await board.api.get(board.path))[1]["data"]
    assert before["last_ota_at"] is None and before["current_firmware"] is None

    await board.come_back(NEW)  # the new app reached the broker: its status names the new md5
    await board.device.report_ota(command["id"], "updated")
    await board.device.ack(command["id"], "done", result={"version": "2.0", "md5": md5(NEW)})
    job = await board.job_in("updated")
    assert [entry["state"] for entry in job["history"]] == ["sent", "downloading", "verified", "applying", "updated"]
    assert job["error"] is None and job["bytes_served"] == len(NEW) and job["firmware"]["is_current"] is True
    detail = (await board.api.get(board.path))[1]["data"]
    assert detail["current_firmware"]["md5"] == md5(NEW) and detail["current_firmware"]["is_current"] is True
    assert detail["last_ota_at"] is not None and detail["last_ota_at"] == job["updated_at"]
    done = await eventually(lambda: final_command(board.api, board.uid, command["id"]))
    assert done["state"] == "done" and (await board.job())["state"] == "updated"  # the ack changes nothing more


async def test_a_device_that_comes_back_on_its_old_md5_after_applying_is_rolled_back(board):
    command = await board.trigger()
    await board.device.report_ota(command["id"], "verified")
    await board.device.report_ota(command["id"], "applying")
    await board.job_in("applying")
    await board.come_back(OLD)  # the bootloader / main.py went back to the previous app
    job = await board.job_in("rolled_back")
    assert job["error"] == CAME_BACK_OLD
    # The old app then says why; its reason replaces the backend's guess.
    await board.device.report_ota(command["id"], "rolled_back", error="new app never reached the broker")
    await board.device.ack(command["id"], "failed", error="rolled back: new app never reached the broker")

    async def explained():
        job = await board.job()
        return job if job["error"] == "new app never reached the broker" else None

    job = await eventually(explained)
    assert job["state"] == "rolled_back" and job["history"][-1]["error"] == "new app never reached the broker"
    detail = (await board.api.get(board.path))[1]["data"]
    assert detail["last_ota_at"] is None and detail["current_firmware"] is None  # OLD was never uploaded


async def test_updated_and_done_without_the_new_md5_in_status_never_make_a_job_updated(board):
    command = await board.trigger()
    for state in ("verified", "applying", "updated"):
        await board.device.report_ota(command["id"], state)
    await board.job_in("applying")  # `updated` alone does not end it
    await board.device.ack(command["id"], "done", result={"version": "2.0", "md5": md5(NEW)})
    job = await board.job_in("failed")
    assert job["error"].startswith("the device acknowledged the OTA as done, but its status reports md5 ")
    assert "updated" not in [entry["state"] for entry in job["history"]]
    assert (await board.api.get(board.path))[1]["data"]["last_ota_at"] is None


async def test_a_reboot_mid_download_keeps_the_job_open_and_it_can_still_finish(board):
    command = await board.trigger()
    url = command["payload"]["url"]
    await board.device.report_ota(command["id"], "downloading", progress=30)
    await until_progress(board, 30)
    await board.come_back(OLD)  # a reset in the middle: back on the old app, which resumes the job
    job = await board.job()
    assert job["state"] == "downloading" and job["progress"] == 30
    status, headers, body = await board.device.download(url, headers={"Range": "bytes=1000-"})
    assert status == 206 and body == NEW[1000:]
    await board.device.report_ota(command["id"], "downloading", progress=0)  # it started again from 0
    await until_progress(board, 0)
    await board.device.report_ota(command["id"], "verified")
    await board.device.report_ota(command["id"], "applying")
    await board.job_in("applying")
    await board.come_back(NEW)
    job = await board.job_in("updated")
    assert [entry["state"] for entry in job["history"]] == [
        "sent", "downloading", "downloading", "verified", "applying", "updated"]
    assert [entry.get("progress") for entry in job["history"][1:3]] == [30, 0]  # the restart is on record


async def test_a_board_back_before_it_started_the_job_gets_the_same_command_again(board):
    command = await board.trigger()  # received (and acked `accepted`), then the power went before it kept the job
    await board.come_back(OLD)
    async def again():
        return [c for c in board.device.commands if c["id"] == command["id"]]

    assert await eventually(again) == [command]  # the new session's copy: the same id and payload
    assert (await board.job())["state"] == "sent"
    await board.device.report_ota(command["id"], "downloading", progress=10)
    assert (await board.job_in("downloading"))["progress"] == 10


async def test_a_failed_report_fails_the_job_with_the_devices_reason_and_frees_the_device(board):
    command = await board.trigger()
    assert await board.api.post(board.path + "/ota") == (409, {"message": "An OTA is already in progress for this"
                                                                         " device."})
    await board.device.report_ota(command["id"], "failed", error="md5 mismatch: got 0123, expected 4567")
    job = await board.job_in("failed")
    assert job["error"] == "md5 mismatch: got 0123, expected 4567"
    await board.device.ack(command["id"], "failed", error="md5 mismatch")  # the final ack follows (protocol.md)
    await board.device.report_ota(command["id"], "verified")  # late or repeated: a job over stays over
    await eventually(lambda: final_command(board.api, board.uid, command["id"]))
    assert (await board.job())["error"] == "md5 mismatch: got 0123, expected 4567"  # the first reason stays
    again = await board.trigger()  # the device has no open job now
    assert again["id"] != command["id"] and (await board.job())["state"] == "sent"
    status, body = await board.api.get(board.path + "/ota?all=true")
    assert status == 200 and [j["id"] for j in body["data"]] == [again["id"], command["id"]]
    assert [j["state"] for j in body["data"]] == ["sent", "failed"]


async def test_a_job_whose_command_expires_is_expired_and_its_link_dies(tmp_path):
    backend = await start_backend(tmp_path, command_timeouts={"ota": 1.0})
    api = await backend.api_for("alice")
    board = await Board.online(api)
    try:
        command = await board.trigger()
        status, answer = await api.post(board.path + "/commands", json={"payload": {"cmd": "x"}})  # 60 s
        assert status == 200 and answer["state"] == "queued"  # behind the OTA: one at a time at this board
        job = await board.job_in("expired")
        assert job["error"] == "no acknowledgement in time" and job["history"][-1]["state"] == "expired"
        status, _, body = await board.device.download(command["payload"]["url"])
        assert status == 403 and NEW[:100] not in body  # the job is over (and the token expired by now too)
        # The custom command has its own timeout, the default: it was published when the OTA expired, and done.
        done = await eventually(lambda: final_command(api, board.uid, answer["id"]))
        assert done["state"] == "done"
    finally:
        await board.close()
        await backend.stop()


async def test_a_backend_restart_mid_job_loses_nothing_and_the_devices_report_finishes_it(tmp_path):
    backend = await start_backend(tmp_path)
    api = await backend.api_for("alice")
    board = await Board.online(api)
    try:
        command = await board.trigger()
        url = command["payload"]["url"]
        status, _, body = await board.device.download(url, headers={"Range": "bytes=0-9999"})
        assert status == 206 and body == NEW[:10000]
        await board.device.report_ota(command["id"], "downloading", progress=40)
        await until_progress(board, 40)
        await board.device.close()
        await backend.restart()  # the app torn down and started again on the same data dir (and ports)
        await board.come_back(OLD)  # the board reconnects to the new broker, its job file intact
        status, _, body = await board.device.download(url, headers={"Range": "bytes=10000-"})
        assert status == 206 and body == NEW[10000:]  # the same link resumes, from where it stopped
        await board.device.report_ota(command["id"], "verified")
        await board.device.report_ota(command["id"], "applying")
        await board.job_in("applying")
        await board.come_back(NEW)
        job = await board.job_in("updated")
        assert job["bytes_served"] == len(NEW)  # both halves counted, across the restart
        assert [entry["state"] for entry in job["history"]] == ["sent", "downloading", "verified", "applying",
                                                                "updated"]
    finally:
        await board.close()
        await backend.stop()


async def test_range_requests_are_206_with_content_range_and_past_the_end_416(board):
    command = await board.trigger()
    url, size = command["payload"]["url"], len(NEW)
    status, headers, body = await board.device.download(url, headers={"Range": "bytes=100-"})
    assert status == 206 and body == NEW[100:] and headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert headers["ETag"] == f'"{md5(NEW)}"' and int(headers["Content-Length"]) == size - 100
    manifest_head = bundle_format.HEAD.size + 200
    status, headers, body = await board.device.download(url, headers={"Range": f"bytes=0-{manifest_head - 1}"})
    assert status == 206 and bundle_format.read_manifest(body).version == "2.0"  # the board reads it first
    status, headers, body = await board.device.download(url, headers={"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and body == b""
    # Each download is counted once its last byte went out, a moment after the client has it all.
    served = (size - 100) + manifest_head
    job = await eventually(lambda: board.job_served(served))
    assert job["bytes_served"] == served


async def test_a_bad_forged_expired_or_foreign_token_is_403_and_a_gone_job_404_with_no_bytes(board, ota_backend,
                                                                                               ota_api):
    command = await board.trigger()
    url = command["payload"]["url"]
    base, token = url.rsplit("/", 1)
    uid, firmware_id, job_id, expires, mac = token.split(".")
    other = await Board.online(ota_api)
    try:
        other_command = await other.trigger()
        other_token = other_command["payload"]["url"].rsplit("/", 1)[1]
        signer = TokenSigner.for_data_dir(ota_backend.settings.data_dir)
        refused = {
            "not a token": "nonsense",
            "another mac": f"{uid}.{firmware_id}.{job_id}.{expires}.{'A' * 22}",
            "a later expiry": f"{uid}.{firmware_id}.{job_id}.{int(expires) + 1}.{mac}",
            "the other device's job": f"{uid}.{firmware_id}.{other_command['id']}.{expires}.{mac}",
            "the other device's uid": f"{other.uid}.{firmware_id}.{job_id}.{expires}.{mac}",
            "expired": signer.make(uid, int(firmware_id), job_id, time.time() - 1),
            "another key": TokenSigner(b"k" * 32).make(uid, int(firmware_id), job_id, int(expires)),
        }
        for what, bad in refused.items():
            status, headers, body = await board.device.download(f"{base}/{bad}")
            assert status == 403, what
            assert headers["Content-Type"].startswith("application/json") and NEW[:64] not in body, what
        status, _, body = await board.device.download(f"{base}/{refused['expired']}")
        assert b"expired" in body
        # The other device's own link works, for its own job only.
        status, _, body = await other.device.download(f"{base}/{other_token}")
        assert status == 200 and body == NEW
        # A valid token of a disabled device: 403; of a device that is gone: 404. No bytes.
        assert (await ota_api.patch(other.path, json={"enabled": False}))[0] == 200
        status, _, body = await board.device.download(f"{base}/{other_token}")
        assert status == 403 and b"disabled" in body and NEW[:64] not in body
        assert (await ota_api.delete(other.path))[0] == 200
        status, _, body = await board.device.download(f"{base}/{other_token}")
        assert status == 404 and NEW[:64] not in body
        # Nothing but the one route on the device listener; no device route on the user API.
        status, _, _ = await board.device.download(f"{base.rsplit('/', 1)[0]}/")
        assert status == 404
        assert (await ota_backend.client.get(f"/v1/device/ota/{token}")).status == 404
        job = await board.job()
        assert job["bytes_served"] == 0  # none of those sent a byte of the image
    finally:
        await other.close()


async def test_an_esp32_app_image_for_an_esp8266_board_or_a_raw_image_is_422_and_sends_nothing(ota_api):
    esp32_app = b"\xe9\x06\x02\x20" + os.urandom(3000)
    esp8266 = await Board.online(ota_api, esp32_app, platform="espressif8266", board="d1_mini")
    raw = await Board.online(ota_api, b"\x00raw" + os.urandom(100), platform="espressif8266", board="d1_mini")
    unix = await Board.online(ota_api, esp32_app)  # the emulated board has the partition stand-in
    try:
        status, body = await ota_api.post(esp8266.path + "/ota")
        assert status == 422
        assert body["message"] == ("The target firmware cannot be applied over the air: an esp32-app image needs OTA"
                                   " partitions, which board d1_mini (WeMos D1 mini) does not have; assign an app"
                                   " bundle (mpfleet bundle) instead.")
        status, body = await ota_api.post(raw.path + "/ota")
        assert status == 422 and "a raw image is stored and served as is" in body["message"]
        for refused in (esp8266, raw):
            assert (await ota_api.get(refused.path + "/commands"))[1]["data"] == []
            assert await refused.job() is None and refused.device.commands == []
        command = await unix.trigger()
        assert command["payload"]["kind"] == "esp32-app"
    finally:
        for board in (esp8266, raw, unix):
            await board.close()


async def test_the_jobs_of_another_user_are_404_and_all_must_be_a_boolean(board, ota_backend):
    intruder = await ota_backend.api_for("mallory")
    assert (await intruder.get(board.path + "/ota"))[0] == 404
    assert (await intruder.post(board.path + "/ota"))[0] == 404
    assert await board.api.get(board.path + "/ota") == (200, {"data": None})
    assert await board.api.get(board.path + "/ota?all=true") == (200, {"data": []})
    status, body = await board.api.get(board.path + "/ota?all=yes")
    assert status == 422 and body["errors"] == {"all": ["The all parameter must be true or false."]}


async def test_a_firmware_uploaded_before_sha256_was_kept_gets_it_at_its_first_ota(board, ota_backend):
    async with ota_backend.storage.db.transaction() as tx:
        await tx.execute("UPDATE firmwares SET sha256 = NULL")
    assert (await board.api.get(board.path + "/firmwares"))[1]["data"][0]["sha256"] is None
    command = await board.trigger()
    assert command["payload"]["sha256"] == hashlib.sha256(NEW).hexdigest()
    assert (await board.api.get(board.path + "/firmwares"))[1]["data"][0]["sha256"] == hashlib.sha256(NEW).hexdigest()


async def test_the_registration_answer_names_the_device_listener(ota_backend, ota_api):
    registration = await ota_api.register(platform="unix", board="unix")
    assert registration["ota"] == {"host": "127.0.0.1", "port": ota_backend.client.app[keys.OTA_PUBLIC].port}
    assert registration["ota"]["port"] == ota_backend.settings.device_http_port


def served_upload(server, uid, content):
    """A firmware upload to a served backend (multipart by hand: urllib has no form encoder)."""
    boundary = "mpfleet-test-boundary"
    body = b"".join([
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nnew\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n'.encode(),
        content, f"\r\n--{boundary}--\r\n".encode()])
    request = urllib.request.Request(f"{server.url}/v1/user/devices/{uid}/firmwares", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {server.token}",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


async def test_a_served_backend_restarted_mid_job_serves_the_same_link_and_the_report_finishes_it(tmp_path):
    device_port = free_port()
    server = ServerProcess(tmp_path / "var", args=(
        "--mqtt-port", "0", "--mqtt-tls-port", "0", "--public-host", "127.0.0.1", "--device-port", str(device_port),
        "--command-timeout", "30", "--command-timeout", "ota=600"))
    await asyncio.to_thread(server.start)
    device = None
    try:
        registration = server.register("served")
        uid = registration["uid"]
        assert registration["ota"] == {"host": "127.0.0.1", "port": device_port}
        served_upload(server, uid, NEW)
        assert server.call("POST", f"/v1/user/devices/{uid}/firmwares/set-target", {"md5": md5(NEW)})[0] == 200

        async def connect(image):
            detail = server.call("GET", f"/v1/user/devices/{uid}")[1]["data"]
            board = FakeDevice(registration["mqtt"], detail["port"], status={"fw": {"md5": md5(image)}},
                               handler=lambda command: None)
            await board.connect()
            await eventually(lambda: _served_state(server, uid, "status", "online"))
            return board

        device = await connect(OLD)
        status, answer = server.call("POST", f"/v1/user/devices/{uid}/ota")
        assert status == 200, answer
        command = await eventually(lambda: _received(device, answer["id"]))
        url = command["payload"]["url"]
        assert url.startswith(f"https://127.0.0.1:{device_port}/v1/device/ota/")
        status, custom = server.call("POST", f"/v1/user/devices/{uid}/commands", {"payload": {"cmd": "x"}})
        assert status == 200 and custom["state"] == "queued"  # behind the OTA
        with sqlite3.connect(server.data_dir / "mpfleet.db") as db:  # each type's deadline, from --command-timeout
            deadlines = dict(db.execute("SELECT type, expires_at - ? FROM commands", (time.time(),)).fetchall())
        assert 590 < deadlines["ota"] <= 600 and 20 < deadlines["custom"] <= 30, deadlines
        assert (await device.download(url, headers={"Range": "bytes=0-4095"}))[2] == NEW[:4096]
        await device.report_ota(answer["id"], "downloading", progress=10)
        await eventually(lambda: _served_job(server, uid, "downloading"))

        await device.close()
        log = await asyncio.to_thread(server.stop)
        assert f"OTA downloads for boards: https://127.0.0.1:{device_port}/v1/device/ota/" in log
        await asyncio.to_thread(server.start)  # the same data dir and device port; a new broker port
        device = await connect(OLD)
        status, _, body = await device.download(url, headers={"Range": "bytes=4096-"})
        assert status == 206 and body == NEW[4096:]
        await device.report_ota(answer["id"], "verified")
        await device.report_ota(answer["id"], "applying")
        await eventually(lambda: _served_job(server, uid, "applying"))
        await device.close()
        device = await connect(NEW)
        job = await eventually(lambda: _served_job(server, uid, "updated"))
        assert job["bytes_served"] == len(NEW) and job["firmware"]["is_current"] is True
    finally:
        if device is not None:
            await device.close()
        log = await asyncio.to_thread(server.stop)
    assert "Traceback" not in log and " ERROR " not in log, log


async def _served_state(server, uid, field, value):
    return server.call("GET", f"/v1/user/devices/{uid}")[1]["data"][field] == value


async def _served_job(server, uid, state):
    job = server.call("GET", f"/v1/user/devices/{uid}/ota")[1]["data"]
    return job if job and job["state"] == state else None


async def _received(device, command_id):
    return next((c for c in device.commands if c["id"] == command_id), None)


@pytest.mark.parametrize("value", ["0", "ota=", "ota=-5", "o ta=5", "soon"])
def test_serve_refuses_a_command_timeout_that_is_not_one(value, tmp_path):
    done = subprocess.run([MPFLEET, "serve", "--data", str(tmp_path / "var"), "--command-timeout", value],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--command-timeout" in done.stderr and "TYPE=SECONDS" in done.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was made


async def start_on(mosquitto, tmp_path):
    """A backend on `mosquitto`, whose CA boards get; its device listener has a certificate that CA signed."""
    tls = mosquitto.tls
    return await start_backend(tmp_path, **mosquitto.backend_settings(), device_cert_file=str(tls.server_cert),
                               device_key_file=str(tls.server_key))


async def test_on_mosquitto_a_restart_after_verifying_replays_the_old_status_and_the_job_stays_open(
        tmp_path, mosquitto):
    """Boards get Mosquitto's CA; the listener is given a certificate it signed (--device-cert). The backend
    restarts after `verified` while the board, still on its old app, stays connected to Mosquitto: the bridge
    subscribes again and gets the board's retained status, on the old md5, which is no sign that the board
    came back on it."""
    backend = await start_on(mosquitto, tmp_path)
    api = await backend.api_for("alice")
    board = await Board.online(api)
    try:
        command = await board.trigger()
        assert (await board.device.download(command["payload"]["url"]))[2] == NEW  # verified with Mosquitto's CA
        await board.device.report_ota(command["id"], "verified")
        await board.job_in("verified")
        await backend.restart()
        await asyncio.sleep(1)  # the bridge has subscribed again: the retained status arrived by now
        job = await board.job()
        assert job["state"] == "verified", job
        await board.device.report_ota(command["id"], "applying")
        await board.job_in("applying")
        await board.come_back(NEW)
        job = await board.job_in("updated")
        assert [entry["state"] for entry in job["history"]][-2:] == ["applying", "updated"]
    finally:
        await board.close()
        await backend.stop()


async def test_on_mosquitto_the_reports_a_device_sent_while_the_backend_was_down_end_its_job(tmp_path, mosquitto):
    """Mosquitto keeps them for the bridge's persistent session and hands them over as it starts again: they
    must reach the OTA flow, not only storage."""
    backend = await start_on(mosquitto, tmp_path)
    api = await backend.api_for("alice")
    board = await Board.online(api)
    try:
        command = await board.trigger()
        await board.device.report_ota(command["id"], "downloading", progress=20)
        await until_progress(board, 20)
        await backend.stop()
        await board.device.report_ota(command["id"], "failed", error="download: too many retries")
        await board.device.ack(command["id"], "failed", error="download: too many retries")
        await backend.start()
        job = await board.job_in("failed")
        assert job["error"] == "download: too many retries"
        assert (await eventually(lambda: final_command(api, board.uid, command["id"])))["state"] == "failed"
    finally:
        await board.close()
        await backend.stop()


async def test_on_mosquitto_without_a_device_certificate_boards_refuse_the_listener_and_serve_says_so(
        tmp_path, mosquitto, caplog):
    backend = await start_backend(tmp_path, **mosquitto.backend_settings())
    api = await backend.api_for("alice")
    board = await Board.online(api)
    try:
        assert "is not signed by the CA boards get as mqtt.ca: boards will refuse their downloads" in caplog.text
        command = await board.trigger()
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # verification on: DATA/tls is not its CA's
            await board.device.download(command["payload"]["url"])
        assert (await board.job())["bytes_served"] == 0
    finally:
        await board.close()
        await backend.stop()


def test_a_device_port_that_is_taken_or_a_certificate_that_does_not_load_ends_serve_with_one_line(tmp_path):
    base = [MPFLEET, "serve", "--data", str(tmp_path / "var"), "--host", "127.0.0.1", "--mqtt-port", "0",
            "--mqtt-tls-port", "0"]
    with socket.create_server(("127.0.0.1", 0)) as holder:
        held = holder.getsockname()[1]
        taken = subprocess.run([*base, "--http-port", str(free_port()), "--device-port", str(held)],
                               capture_output=True, text=True, timeout=30)
    assert taken.returncode == 1 and "Traceback" not in taken.stderr
    assert taken.stderr.splitlines()[-1] == f"mpfleet: cannot listen on 127.0.0.1:{held} (device HTTPS): Address" \
                                            " already in use"
    (tmp_path / "not.pem").write_text("not a certificate\n")
    bad = subprocess.run([*base, "--http-port", str(free_port()), "--device-port", "0",
                          "--device-cert", str(tmp_path / "not.pem")], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].startswith(f"mpfleet: device HTTPS: cannot load the certificate {tmp_path}")
    assert "mpfleet backend: http://" not in taken.stdout + bad.stdout
