"""The OTA job on the emulated board (firmware/ota*.py, httpget.py, chooser.py) against the real broker
and backend, the bundle served by an HTTPS test server with the boards' CA (tests/firmware/ota_server.py) that can
truncate, drop mid-body, ignore Range and count the bytes it sent.

The `ota` command goes onto the board's cmd topic with the backend's broker login (the backend's own OTA route is
tested end to end elsewhere); the test reads the board's `ota` and `ack` topics. Bundles are made by `mpfleet
bundle`'s code (tools/bundle.py) from the firmware tree or a changed copy of it. A board built from .py sources
(`source_flash`) shares no file with a bundle (all .mpy): a full download; one built from .mpy (`built_flash`)
shares all but the changed files: an incremental one. Trials are shortened in settings.json.
"""

import asyncio
import hashlib
import json
import shutil

import aiomqtt
import pytest
from mpfleet.backend import keys
from mpfleet.backend.bundle_format import HEAD, read_manifest
from mpfleet.tools import bundle, firmware_build

from ..polling import eventually, online_detail
from .device_harness import Board, make_flash
from .ota_server import OtaServer

pytestmark = pytest.mark.network

TRIAL = {"ota_trial_s": 5, "ota_trial_boots": 2}
TIMEOUT = 40  # seconds for a job to reach its final ack


@pytest.fixture(scope="session")
def source_flash(umqtt_cache, tmp_path_factory):
    """The firmware built from .py sources (no file in common with a bundle, whose modules are .mpy)."""
    flash = tmp_path_factory.mktemp("source") / "flash"
    firmware_build.build(flash, cache_dir=umqtt_cache, compile=False)
    return flash


def tree(tmp_path, name, edit=None):
    """A copy of the firmware's sources at tmp_path/name, `edit`(dir) applied."""
    target = tmp_path / name
    shutil.copytree(firmware_build.firmware_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        edit(target)
    return target


def versioned(version):
    def edit(d):
        start = d / "start.py"
        start.write_text(start.read_text().replace('VERSION = "0.1.0"', f'VERSION = "{version}"'))
    return edit


@pytest.fixture(scope="session")
def new_bundle(umqtt_cache, tmp_path_factory):
    """(bytes, md5) of a bundle of version 0.2.0: the firmware with start.py's VERSION changed (one file differs)."""
    data, _ = bundle.make(version="0.2.0", source=tree(tmp_path_factory.mktemp("v2"), "fw", versioned("0.2.0")),
                          cache_dir=umqtt_cache)
    return data, hashlib.md5(data).hexdigest()


class Watch:
    """The board's `ota` and `ack` messages, read with the backend's broker login; publish() sends it a command."""

    def __init__(self, backend, uid):
        self.endpoint = backend.client.app[keys.BROKER_ENDPOINT]
        self.uid = uid
        self.ota = []
        self.acks = []
        self._changed = asyncio.Event()

    async def __aenter__(self):
        e = self.endpoint
        self.client = aiomqtt.Client(hostname=e.host, port=e.port, username=e.username, password=e.password,
                                     identifier=f"test-ota-{self.uid}")
        await self.client.__aenter__()
        await self.client.subscribe(f"mpfleet/v1/{self.uid}/ota", qos=1)
        await self.client.subscribe(f"mpfleet/v1/{self.uid}/ack", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        self._task.cancel()
        await self.client.__aexit__(*exc)

    async def _read(self):
        async for message in self.client.messages:
            body = json.loads(message.payload)
            (self.ota if message.topic.value.endswith("/ota") else self.acks).append(body)
            self._changed.set()

    async def command(self, cmd_id, payload):
        await self.client.publish(f"mpfleet/v1/{self.uid}/cmd", json.dumps({"id": cmd_id, "type": "ota",
                                                                              "payload": payload}), qos=1)

    async def final(self, cmd_id, timeout=TIMEOUT):
        """The command's final ack (done or failed)."""
        async def check():
            return next((a for a in self.acks if a["id"] == cmd_id and a["state"] != "accepted"), None)
        return await eventually(check, timeout=timeout, interval=0.1)

    def states(self, cmd_id):
        return [m["state"] for m in self.ota if m["id"] == cmd_id]


def ota_payload(server, data, md5=None, **extra):
    return {"url": server.url, "md5": md5 or hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), "version": "0.2.0", "kind": "bundle", **extra}


def board_flash(built, tmp_path, registered):
    flash = make_flash(built, tmp_path / "flash", registered)
    (flash / "settings.json").write_text(json.dumps({"period": 30, **TRIAL}))
    return flash


@pytest.fixture
async def ota_server(backend):
    async with OtaServer(backend.settings.data_dir / "tls") as server:
        yield server


async def fw_of(api, uid, md5):
    data = await online_detail(api, uid)
    return data if data and data["meta"]["fw"].get("md5") == md5 else None


async def updated_job(api, backend, registered, flash, cmd_id, payload, md5, *, heapsize=None, online_s=5.0):
    """Run the job of `payload` on a board; returns (its final ack, the watch, the board's log, its device detail)
    once the ack is `done` and the board is online again reporting `md5`."""
    uid = registered["uid"]
    async with Board(flash, heapsize=heapsize) as board, Watch(backend, uid) as watch:
        await eventually(lambda: online_detail(api, uid), timeout=online_s)
        await watch.command(cmd_id, payload)
        ack = await watch.final(cmd_id)
        assert ack["state"] == "done", board.log()
        detail = await eventually(lambda: fw_of(api, uid, md5))
    return ack, watch, board.log(), detail


async def test_a_bundle_is_downloaded_verified_and_booted(api, backend, registered, source_flash, new_bundle,
                                                          ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    flash = board_flash(source_flash, tmp_path, registered)
    ack, watch, log, detail = await updated_job(api, backend, registered, flash, "ota-happy",
                                                ota_payload(ota_server, data), md5)
    assert ack == {"id": "ota-happy", "state": "done", "result": {"version": "0.2.0", "md5": md5}}, log
    assert detail["meta"]["fw"] == {"version": "0.2.0", "md5": md5}
    states = watch.states("ota-happy")
    assert states[-3:] == ["verified", "applying", "updated"], states
    progress = [m["progress"] for m in watch.ota if m["state"] == "downloading"]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 5, progress
    assert [a["state"] for a in watch.acks if a["id"] == "ota-happy"] == ["accepted", "done"]
    assert (flash / "app.ptr").read_text() == "a" and (flash / "a" / "fw.json").exists()
    assert not (flash / "app.trial").exists() and not (flash / "ota.json").exists()
    assert ota_server.sent == len(data)  # nothing in common with the running app: all of it, once
    assert "app: boot 2 (soft), firmware 0.2.0" in log


async def test_an_incremental_ota_fetches_the_manifest_and_the_changed_file_only(
        api, backend, registered, built_flash, new_bundle, ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    manifest = read_manifest(data[:HEAD.size + 16384])
    running = {p.relative_to(built_flash).as_posix(): p.read_bytes() for p in built_flash.rglob("*") if p.is_file()}
    changed = [e for e in manifest.files if hashlib.sha256(running.get(e.path, b"")).hexdigest() != e.sha256]
    assert [e.path for e in changed] == ["start.mpy"]  # the bundle differs from the board's app by one file
    ack, _, log, _ = await updated_job(api, backend, registered, board_flash(built_flash, tmp_path, registered),
                                       "ota-incr", ota_payload(ota_server, data), md5)
    assert ack["result"] == {"version": "0.2.0", "md5": md5}, log
    head = HEAD.size + (manifest.files[0].offset - HEAD.size)  # the magic, the length and the manifest
    assert ota_server.sent == head + changed[0].size, ota_server.requests
    start = changed[0].offset
    assert [r for r, _ in ota_server.requests] == [
        "bytes=0-19", f"bytes=20-{head - 1}", f"bytes={start}-{start + changed[0].size - 1}"]


async def failed_job(api, backend, registered, flash, server, cmd_id, payload):
    """Run the job of `payload` on a board; returns (its final ack, the watch, the board's log) once the board, still
    on its old app, is online again after it."""
    uid = registered["uid"]
    async with Board(flash) as board, Watch(backend, uid) as watch:
        await eventually(lambda: online_detail(api, uid))
        await watch.command(cmd_id, payload)
        ack = await watch.final(cmd_id)
        data = await eventually(lambda: online_detail(api, uid))
        assert (data["meta"].get("fw") or {}).get("md5") is None  # the old app (no OTA wrote its fw.json)
    assert not (flash / "ota.json").exists() and not (flash / "app.trial").exists()
    assert ((flash / "app.ptr").read_text() if (flash / "app.ptr").exists() else "") == ""
    return ack, watch, board.log()


async def test_an_md5_mismatch_fails_before_anything_switches(api, backend, registered, source_flash, new_bundle,
                                                             ota_server, tmp_path):
    data, _ = new_bundle
    ota_server.data = data
    flash = board_flash(source_flash, tmp_path, registered)
    ack, watch, log = await failed_job(api, backend, registered, flash, ota_server, "ota-md5",
                                       ota_payload(ota_server, data, md5="0" * 32))
    assert ack["state"] == "failed" and ack["error"].startswith("md5 mismatch: the bundle's bytes give"), log
    assert watch.states("ota-md5")[-1] == "failed" and "verified" not in watch.states("ota-md5")
    assert not (flash / "a").exists()  # the staging went with the job
    assert "exit 75" not in log  # never reset


async def test_a_blob_corrupted_on_the_server_fails_on_its_md5(api, backend, registered, source_flash, new_bundle,
                                                               ota_server, tmp_path):
    data, md5 = new_bundle
    bad = bytearray(data)
    bad[-100] ^= 0xFF  # a byte of the last file flipped after the md5 was taken
    ota_server.data = bytes(bad)
    ack, _, log = await failed_job(api, backend, registered, board_flash(source_flash, tmp_path, registered),
                                   ota_server, "ota-bad", ota_payload(ota_server, data))
    assert ack["state"] == "failed" and ack["error"].startswith("md5 mismatch"), log


async def test_a_truncated_bundle_fails(api, backend, registered, source_flash, new_bundle, ota_server, tmp_path):
    data, _ = new_bundle
    ota_server.data = data
    ota_server.truncate = len(data) - 500
    ack, watch, log = await failed_job(api, backend, registered, board_flash(source_flash, tmp_path, registered),
                                       ota_server, "ota-trunc", ota_payload(ota_server, data))
    assert ack["state"] == "failed" and ack["error"] == (
        f"the server has {len(data) - 500} bytes, the command says {len(data)}"), log


async def test_a_dropped_connection_is_resumed_by_range_and_completes(
        api, backend, registered, source_flash, new_bundle, ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    ota_server.drop_after = len(data) // 2
    _, _, log, _ = await updated_job(api, backend, registered, board_flash(source_flash, tmp_path, registered),
                                     "ota-drop", ota_payload(ota_server, data), md5)
    assert "ota: attempt 1 failed" in log
    resumed = [r for r, status in ota_server.requests if status == 206][3]  # head, manifest, files, then the resume
    # Every byte sent before the drop was staged: the resume asks for the next one, and nothing is sent twice.
    assert resumed == f"bytes={len(data) // 2}-{len(data) - 1}", ota_server.requests
    assert ota_server.sent == len(data)


async def test_a_server_that_ignores_range_is_read_from_the_start_and_completes(
        api, backend, registered, source_flash, new_bundle, ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    ota_server.ignore_range = True
    _, _, log, _ = await updated_job(api, backend, registered, board_flash(source_flash, tmp_path, registered),
                                     "ota-200", ota_payload(ota_server, data), md5)
    assert {status for _, status in ota_server.requests} == {200}
    assert "the server ignored the Range" in log


def broken(what):
    def edit(d):
        if what == "crash":  # the new app's app.py raises as it is imported
            app = d / "app.py"
            app.write_text('raise RuntimeError("broken on purpose")\n' + app.read_text())
        else:  # the new app never reaches the broker: every connect fails
            connect = d / "connect.py"
            connect.write_text(connect.read_text().replace(
                "def run(link):\n", 'def run(link):\n    raise OSError("unreachable on purpose")\n'))
        start = d / "start.py"
        start.write_text(start.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.9.0"'))
    return edit


@pytest.mark.parametrize("what", ["crash", "unreached"])
async def test_a_new_app_that_fails_is_rolled_back_within_its_trial(
        api, backend, registered, built_flash, umqtt_cache, ota_server, tmp_path, what):
    data, _ = bundle.make(version="0.9.0", source=tree(tmp_path, "fw", broken(what)), cache_dir=umqtt_cache)
    ota_server.data = data
    flash = board_flash(built_flash, tmp_path, registered)
    ack, watch, log = await failed_job(api, backend, registered, flash, ota_server, "ota-bad-app",
                                       {**ota_payload(ota_server, data), "version": "0.9.0"})
    assert ack["state"] == "failed" and ack["error"].startswith("rolled back: the new app (0.9.0)"), log
    states = watch.states("ota-bad-app")
    assert states[-3:] == ["verified", "applying", "rolled_back"] and "updated" not in states, states
    assert "chooser: the app in 'a' had its trial boots; back to ''" in log
    if what == "crash":
        assert "RuntimeError: broken on purpose" in log
    else:
        assert "link: trial over: reset" in log
    assert log.count("chooser: app 'a' on trial") == TRIAL["ota_trial_boots"]


async def test_a_reboot_mid_download_resumes_and_never_reports_success_early(
        api, backend, registered, source_flash, new_bundle, ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    ota_server.pause = 0.05  # ~1.2 s for the bundle: time to pull the plug
    uid = registered["uid"]
    flash = board_flash(source_flash, tmp_path, registered)
    # An outcome an earlier job left unsent (its app went back before it reached the broker): never sent.
    (flash / "ota.out").write_text(json.dumps(["ota-old", "updated", None, {"version": "0.0.9", "md5": "0" * 32}]))
    async with Board(flash) as board, Watch(backend, uid) as watch:
        await eventually(lambda: online_detail(api, uid))
        await watch.command("ota-kill", ota_payload(ota_server, data))

        async def some_progress():
            return any(m.get("progress", 0) >= 30 for m in watch.ota)
        await eventually(some_progress, timeout=20)
        assert (flash / "ota.json").exists()
        board._proc.kill()  # a power cut mid-download
        ack = await watch.final("ota-kill")
        assert ack["state"] == "done" and ack["result"]["md5"] == md5, board.log()
        await eventually(lambda: fw_of(api, uid, md5))
    assert "--- exit -9" in board.log()
    assert not [a for a in watch.acks if a["id"] == "ota-old"] and not watch.states("ota-old")
    states = watch.states("ota-kill")
    assert states.count("updated") == 1 and states.index("verified") > states.index("downloading")
    ranges = [r for r, _ in ota_server.requests]
    assert ranges[:2] == ["bytes=0-19", f"bytes=20-{read_manifest(data[:20 + 16384]).files[0].offset - 1}"]
    assert ranges.count("bytes=0-19") == 1  # the head kept across the boot: the download resumed
    assert ota_server.sent < len(data) + 4096


async def test_a_board_without_room_for_the_job_downloads_in_a_boot_of_its_own(
        api, backend, registered, built_flash, new_bundle, ota_server, tmp_path):
    # 48 KB: ~19 KB free after connect, less than the job needs beside the app (firmware/ota.py _ROOM).
    data, md5 = new_bundle
    ota_server.data = data
    ack, watch, log, _ = await updated_job(api, backend, registered, board_flash(built_flash, tmp_path, registered),
                                           "ota-own", ota_payload(ota_server, data), md5, heapsize="48k",
                                           online_s=10)
    assert ack["result"] == {"version": "0.2.0", "md5": md5}, log
    assert "the download runs in a boot of its own" in log and "ota: the download runs in this boot" in log
    assert watch.states("ota-own") == ["downloading", "updated"]  # no session while it ran: 0 %, then the new app
    assert "MemoryError" not in log
    head = read_manifest(data[:HEAD.size + 16384]).files[0].offset
    assert ota_server.sent == head + [e for e in read_manifest(data[:head]).files if e.path == "start.mpy"][0].size
