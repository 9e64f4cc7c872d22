"""firmware/settings.py on the unix port: settings.json (what commands change), read with its defaults at boot and
written atomically by set_telemetry_period; config.json, with the CA's PEM text, is never touched by a command.

The last test runs the command on a board whose files the real `mpfleet provision` wrote, at a 32 KB heap.
"""

import asyncio
import json
import shutil
import subprocess
import urllib.request

import pytest

from ..polling import eventually
from ..server_process import MPFLEET, ServerProcess
from .device_harness import Board
from .micropython import check, run

CA = "-----BEGIN CERTIFICATE-----\n" + "MIIBszCCAVmgAwIBAgIUQ" * 60 + "\n-----END CERTIFICATE-----\n"
LOAD = "import settings\nprint(settings.load())"

# A stand-in for app.py's App: what the command uses of it. Prints the command's result and the period set.
SET_PERIOD = """
import settings

class Tele:
    def set_period(self, p):
        print("tele", p)

class App:
    tele = Tele()

print(settings.set_telemetry_period(App(), "c1", PAYLOAD))
"""


def set_period(flash, payload, **kw):
    return run(f"PAYLOAD = {payload!r}\n" + SET_PERIOD, flash, **kw)


def test_defaults_without_a_file(flash):
    assert check(LOAD, flash) == "{'period': 60}\n"


@pytest.mark.parametrize("text", ['{"period": 4}', '{"period": 86401}', '{"period": "30"}', '{"period": true}',
                                  '{"period": 7.5}', '{"period": null}', "[30]", "{}"])
def test_a_bad_value_gives_its_default(flash, text):
    (flash / "settings.json").write_text(text)
    assert check(LOAD, flash) == "{'period': 60}\n"


@pytest.mark.parametrize("data", [b'{"period": 3', b"\xff\xfe", b""])
def test_a_damaged_file_gives_the_defaults_and_says_so(flash, data):
    (flash / "settings.json").write_bytes(data)
    assert check(LOAD, flash) == "settings: settings.json is not valid JSON; defaults used\n{'period': 60}\n"


def test_the_new_file_is_read_when_a_replace_was_cut_short(flash):
    # FAT renames over a file by removing it first: a power cut between leaves only the temporary file.
    (flash / "settings.json.tmp").write_text('{"period": 30, "ota": {"trial": 1}}')
    assert check(LOAD, flash) == "{'period': 30, 'ota': {'trial': 1}}\n"
    (flash / "settings.json").write_text('{"period": 90}')  # both there: the rename had not begun
    assert check(LOAD, flash) == "{'period': 90}\n"


def test_set_telemetry_period_writes_the_small_file_and_keeps_other_keys(flash):
    (flash / "settings.json").write_text('{"period": 60, "ota": {"trial": 1}}')
    (flash / "config.json").write_text("not even JSON: a command never reads it")
    result = set_period(flash, {"period": 86400})
    assert result.code == 0 and result.out == "tele 86400\n{'period': 86400}\n", str(result)
    assert json.loads((flash / "settings.json").read_text()) == {"period": 86400, "ota": {"trial": 1}}
    assert not (flash / "settings.json.tmp").exists()
    assert (flash / "config.json").read_text() == "not even JSON: a command never reads it"
    assert set_period(flash, {"period": 5}, heapsize="8k").out == "tele 5\n{'period': 5}\n"
    assert check(LOAD, flash) == "{'period': 5, 'ota': {'trial': 1}}\n"


@pytest.mark.parametrize("period", [4, 86401, "60", True, None, 7.5])
def test_a_bad_period_is_refused_and_the_file_left_alone(flash, period):
    (flash / "settings.json").write_text('{"period": 60}')
    result = set_period(flash, {"period": period})
    assert result.code == 1 and "ValueError: period must be a whole number of seconds from 5 to 86400" in result.out
    assert (flash / "settings.json").read_text() == '{"period": 60}'


# --- on a board provisioned by `mpfleet provision`


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("server") / "var").start()
    yield server
    server.stop()


def rest(server, method, path, body=None):
    request = urllib.request.Request(server.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.mark.network
async def test_set_telemetry_period_on_a_provisioned_board_at_32_kb(server, built_flash, tmp_path):
    flash = tmp_path / "flash"
    done = await asyncio.to_thread(
        subprocess.run, [MPFLEET, "provision", "--server", server.url, "--token", server.token, "--board", "unix",
                         "--mqtt-host", "127.0.0.1", "--period", "30", "--out", str(flash)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = (flash / "config.json").read_text()
    assert config.startswith('{\n  "') and "period" not in config  # indented, as provision writes it; CA inside
    uid = json.loads(config)["mqtt"]["uid"]
    shutil.copytree(built_flash, flash, dirs_exist_ok=True)  # the firmware, built into the provisioned directory

    async def get(path):
        return (await asyncio.to_thread(rest, server, "GET", path))["data"]

    async with Board(flash, heapsize="32k") as board:
        await board.wait_for(r"app: telemetry every 30 s")  # provision's --period, read where the board reads it
        await eventually(lambda: _online(get, uid), timeout=10)
        sent = await asyncio.to_thread(rest, server, "POST", f"/v1/user/devices/{uid}/commands",
                                       {"payload": {"cmd": "set_telemetry_period", "period": 7}})

        async def final():
            command = await get(f"/v1/user/devices/{uid}/commands/{sent['id']}")
            return command if command["state"] in ("done", "failed", "expired") else None

        command = await eventually(final, timeout=10)
    assert (command["state"], command.get("result")) == ("done", {"period": 7}), board.log()
    assert json.loads((flash / "settings.json").read_text()) == {"period": 7}
    assert (flash / "config.json").read_text() == config
    assert "MemoryError" not in board.log()


async def _online(get, uid):
    return (await get(f"/v1/user/devices/{uid}"))["status"] == "online"
