"""Data survives restarts; crashes and failed writes leave no half-written rows or orphan files."""

import asyncio
import io
import json
import os
import signal
import socket
import sqlite3
import time
import urllib.request
from importlib import resources

import aiohttp
import pytest
from mpfleet.backend.storage import Storage

from .server_process import ServerProcess


async def test_everything_survives_a_restart(backend, api, device):
    base = f"/v1/user/devices/{device['uid']}"
    await api.patch(base, json={"description": "garage"})
    await api.post(base + "/command-buttons", json={"id": "on", "label": "On", "payload": {"relay": 1}})
    data = aiohttp.FormData()
    data.add_field("name", "build")
    data.add_field("file", io.BytesIO(b"\xe9" + os.urandom(999)), filename="f.bin")
    _, fw = await api.post(base + "/firmwares", data=data)
    await api.post(base + "/firmwares/set-target", json={"md5": fw["data"]["md5"]})
    _, before = await api.get(base)

    await backend.restart()
    _, after = await api.get(base)
    # The embedded broker of the test listens on a new free port after a restart.
    ports = ("port", "meta")
    assert {k: v for k, v in after["data"].items() if k not in ports} == {
        k: v for k, v in before["data"].items() if k not in ports}
    assert before["data"]["description"] == "garage"
    assert before["data"]["target_firmware"]["md5"] == fw["data"]["md5"]
    _, buttons = await api.get(base + "/command-buttons")
    assert [b["id"] for b in buttons["data"]] == ["on"]
    assert (backend.settings.data_dir / "firmware" / f"{fw['data']['md5']}.bin").exists()


async def test_start_up_removes_unfinished_uploads_and_orphan_blobs(backend, api, device):
    data = aiohttp.FormData()
    data.add_field("name", "kept")
    data.add_field("file", io.BytesIO(os.urandom(100)), filename="f.bin")
    _, fw = await api.post(f"/v1/user/devices/{device['uid']}/firmwares", data=data)
    folder = backend.settings.data_dir / "firmware"
    (folder / "incoming" / "tmpabc.part").write_bytes(b"half an upload")
    (folder / ("0" * 32 + ".bin")).write_bytes(b"blob whose row never committed")

    await backend.restart()
    assert sorted(p.name for p in folder.glob("*.bin")) == [fw["data"]["md5"] + ".bin"]
    assert os.listdir(folder / "incoming") == []


async def test_a_write_that_fails_midway_leaves_no_row(backend, api, device, monkeypatch):
    def broken_rename(incoming, md5):
        raise OSError("disk full")

    monkeypatch.setattr(backend.storage.blobs, "adopt", broken_rename)
    data = aiohttp.FormData()
    data.add_field("name", "doomed")
    data.add_field("file", io.BytesIO(os.urandom(100)), filename="f.bin")
    response = await api.client.post(f"/v1/user/devices/{device['uid']}/firmwares", data=data,
                                      headers=api.headers())
    assert response.status == 500 and await response.json() == {"message": "Server error."}
    monkeypatch.undo()
    assert await api.get(f"/v1/user/devices/{device['uid']}/firmwares") == (200, {"data": []})
    assert os.listdir(backend.settings.data_dir / "firmware" / "incoming") == []


def test_a_server_killed_mid_upload_leaves_nothing_behind(tmp_path):
    data_dir = tmp_path / "var"
    server = ServerProcess(data_dir).start()
    token = (data_dir / "admin.token").read_text().strip()
    request = urllib.request.Request(
        server.url + "/v1/user/devices", method="POST",
        data=json.dumps({"name": "x", "platform": "unix", "board": "unix"}).encode(),
        headers={"Authorization": f"Bearer {token}"})
    uid = json.load(urllib.request.urlopen(request))["data"]["uid"]

    head = (f"POST /v1/user/devices/{uid}/firmwares HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 3000000\r\n\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nhalf\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(head + os.urandom(1_000_000))
        incoming = data_dir / "firmware" / "incoming"
        deadline = time.monotonic() + 10
        while not any(p.stat().st_size > 0 for p in incoming.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(incoming.iterdir()), "the upload never reached the disk"
        server.stop(signal.SIGKILL)

    async def reopen():
        storage = Storage(data_dir)
        await storage.open()
        await storage.close()

    asyncio.run(reopen())
    assert os.listdir(data_dir / "firmware" / "incoming") == []
    assert list((data_dir / "firmware").glob("*.bin")) == []
    conn = sqlite3.connect(data_dir / "mpfleet.db")
    assert conn.execute("SELECT count(*) FROM firmwares").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 1
    conn.close()


@pytest.mark.parametrize("reopen_times", [1, 3])
async def test_migrations_are_applied_once(tmp_path, reopen_times):
    for _ in range(reopen_times):
        storage = Storage(tmp_path)
        await storage.open()
        await storage.close()
    conn = sqlite3.connect(tmp_path / "mpfleet.db")
    migrations = [p for p in resources.files("mpfleet.backend.storage").joinpath("migrations").iterdir()
                  if p.name.endswith(".sql")]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "tokens", "devices", "command_buttons", "firmwares", "commands", "telemetry", "pending_access"} <= tables
    conn.close()
