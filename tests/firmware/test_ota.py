"""The OTA job on the emulated board (firmware/ota.py, ota_bundle.py, httpget.py, chooser.py) against the real broker
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


async def test_a_bundle_is_downloaded_verified_and_booted(api, backend, registered, source_flash, new_bundle,
                                                          ota_server, tmp_path):
    data, md5 = new_bundle
    ota_server.data = data
    uid = registered["uid"]
    flash = board_flash(source_flash, tmp_path, registered)
    async with Board(flash) as board, Watch(backend, uid) as watch:
        await eventually(lambda: online_detail(api, uid))
        await watch.command("ota-happy", ota_payload(ota_server, data))
        ack = await watch.final("ota-happy")
        assert ack == {"id": "ota-happy", "state": "done", "result": {"version": "0.2.0", "md5": md5}}, board.log()
        detail = await eventually(lambda: fw_of(api, uid, md5))
    assert detail["meta"]["fw"] == {"version": "0.2.0", "md5": md5}
    states = watch.states("ota-happy")
    assert states[-3:] == ["verified", "applying", "updated"], states
    progress = [m["progress"] for m in watch.ota if m["state"] == "downloading"]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 5, progress
    assert [a["state"] for a in watch.acks if a["id"] == "ota-happy"] == ["accepted", "done"]
    assert (flash / "app.ptr").read_text() == "a" and (flash / "a" / "fw.json").exists()
    assert not (flash / "app.trial").exists() and not (flash / "ota.json").exists()
    assert ota_server.sent == len(data)  # nothing in common with the running app: all of it, once
    assert "app: boot 2 (soft), firmware 0.2.0" in board.log()
