"""The REST client as a user runs it: the installed `mpfleet` in a subprocess, with a HOME and XDG_CONFIG_HOME of its
own, against a real `mpfleet serve` (embedded broker) and a board emulated by `mpfleet emulate` (the MicroPython
unix port running the firmware). One server and one board for the module; the tests run in file order and leave
the board online.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from mpfleet.backend.bundle_format import read_manifest
from mpfleet.tools import cli, firmware_build

from . import esp_images
from .polling import wait_until
from .server_process import MPFLEET, ServerProcess

pytestmark = pytest.mark.network  # the firmware build fetches umqtt.simple, the ESP32 image test its images, once

RAW = b"RAW!"  # the start of a raw test image: not the ESP image magic 0xE9, which the server inspects


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("client") / "var"
    server = ServerProcess(data, args=["--mqtt-port", "0", "--mqtt-tls-port", "0", "--public-host", "127.0.0.1"])
    server.start()
    yield server
    server.stop()


EMULATORS = {}  # uid -> the `mpfleet emulate` process of board(), for a test that pauses it


@pytest.fixture(scope="module")
def board(server, tmp_path_factory):
    """The uid of a board provisioned and emulated through the command line, online."""
    flash = tmp_path_factory.mktemp("board") / "flash"
    provisioned = subprocess.run(
        [MPFLEET, "provision", "--server", server.url, "--token", server.token, "--board", "unix", "--out",
         str(flash), "--mqtt-host", "127.0.0.1", "--period", "5"],
        capture_output=True, text=True, timeout=60)
    assert provisioned.returncode == 0, provisioned.stderr
    uid = json.loads((flash / "config.json").read_text())["mqtt"]["uid"]
    log = flash.with_name("emulate.log")  # a file: a pipe nobody drains would stall the board once full
    with open(log, "w") as out:
        emulator = subprocess.Popen([MPFLEET, "emulate", str(flash)], stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env={**os.environ, **_cache_env()})
    EMULATORS[uid] = emulator
    try:
        wait_until(lambda: server.call("GET", f"/v1/user/devices/{uid}")[1]["data"]["status"] == "online",
                   timeout=60, what="the emulated board online")
        yield uid
    finally:
        emulator.send_signal(signal.SIGINT)
        try:
            emulator.wait(timeout=20)
        except subprocess.TimeoutExpired:  # never leave a board running after the tests
            os.killpg(emulator.pid, signal.SIGKILL)
            emulator.wait()


def _cache_env():
    """The firmware build's download cache of this user (the client's own HOME below must not move it)."""
    return {firmware_build.CACHE_ENV: str(firmware_build.default_cache_dir())}


@pytest.fixture
def home(tmp_path):
    """A HOME and XDG_CONFIG_HOME of the client's own, without a login file."""
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def run(home, *args, env=None, timeout=90):
    """`mpfleet ARGS` as a user in `home` types it (no MPFLEET_* variables unless `env` gives them)."""
    return subprocess.run([MPFLEET, *args], capture_output=True, text=True, timeout=timeout, env=user_env(home, env))


def user_env(home, env=None):
    """The environment of a user in `home`: no MPFLEET_* variables unless `env` gives them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
    return {**clean, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "COLUMNS": "200",
            **_cache_env(), **(env or {})}


def as_user(server, home, *args, env=None, **kw):
    """`mpfleet ARGS` with the server and admin token in MPFLEET_URL / MPFLEET_TOKEN."""
    return run(home, *args, env={"MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token, **(env or {})}, **kw)


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def refused(result, message):
    """The run failed with exit 1 and `message` (the API's) as the one line on stderr."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    return lines[0]


def as_json(result):
    return json.loads(ok(result).stdout)


# -- login and where the URL and token come from


def test_login_refuses_a_wrong_token_and_writes_nothing(server, home):
    line = refused(run(home, "login", "--url", server.url, "--token", "mpf_wrong"), "Unauthenticated.")
    assert "--token" in line
    assert not (home / ".config" / "mpfleet").exists()


def test_login_saves_url_and_token_owner_only_and_later_commands_use_them(server, home):
    result = ok(run(home, "login", "--url", server.url, "--token", server.token))
    login_file = home / ".config" / "mpfleet" / "login.json"
    assert str(login_file) in result.stdout
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(login_file.parent.stat().st_mode) == 0o700
    assert json.loads(login_file.read_text()) == {"url": server.url, "token": server.token}
    assert as_json(run(home, "devices", "--json")) == server.call("GET", "/v1/user/devices")[1]["data"]
    # The environment comes before the file, a flag before the environment.
    refused(run(home, "devices", env={"MPFLEET_TOKEN": "mpf_wrong"}), "Unauthenticated.")
    ok(run(home, "devices", "--token", server.token, env={"MPFLEET_TOKEN": "mpf_wrong"}))
    ok(run(home, "logout"))
    assert not login_file.exists()
    refused(run(home, "devices"), "no server URL")


def test_a_broken_login_file_is_named_and_not_read_when_flags_say_all(server, home):
    login_file = home / ".config" / "mpfleet" / "login.json"
    login_file.parent.mkdir(parents=True)
    login_file.write_text("not json")
    refused(run(home, "devices"), f"{login_file} is not a login file")
    ok(as_user(server, home, "devices"))


def test_login_without_a_home_config_dir_uses_dot_config(server, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_") and k != "XDG_CONFIG_HOME"}
    result = subprocess.run([MPFLEET, "login", "--url", server.url, "--token", server.token], capture_output=True,
                            text=True, timeout=30, env={**env, "HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert (home / ".config" / "mpfleet" / "login.json").is_file()


def test_a_server_that_cannot_be_reached_is_named(server, home):
    line = refused(run(home, "devices", "--url", "http://127.0.0.1:9", "--token", "t"), "cannot reach the server")
    assert "http://127.0.0.1:9" in line


# -- devices


def test_devices_as_a_table_and_as_json(server, board, home):
    table = ok(as_user(server, home, "devices")).stdout
    row = [line for line in table.splitlines() if board in line]
    assert len(row) == 1 and "online" in row[0] and "unix" in row[0]
    assert as_json(as_user(server, home, "devices", "--json")) == server.call("GET", "/v1/user/devices")[1]["data"]


def test_devices_filtered_sorted_and_paged_by_the_api(server, board, home):
    names = ["filter-b", "filter-a", "filter-c"]
    uids = [server.register(name)["uid"] for name in names]
    try:
        found = as_json(as_user(server, home, "devices", "--search", "filter-", "--status", "pending",
                                "--sort=-name", "--json"))
        assert [d["name"] for d in found] == ["filter-c", "filter-b", "filter-a"]
        page = as_json(as_user(server, home, "devices", "--search", "filter-", "--sort", "name", "--limit", "2",
                               "--offset", "1", "--json"))
        assert [d["name"] for d in page] == ["filter-b", "filter-c"]
        online = as_json(as_user(server, home, "devices", "--online", "--json"))
        assert [d["uid"] for d in online] == [board]
        assert not {d["uid"] for d in as_json(as_user(server, home, "devices", "--not-online", "--json"))} & {board}
        refused(as_user(server, home, "devices", "--limit", "101"), "limit")
    finally:
        for uid in uids:
            server.call("DELETE", f"/v1/user/devices/{uid}")


def test_device_show(server, board, home):
    table = ok(as_user(server, home, "device", "show", board)).stdout
    assert board in table and "online" in table and "Emulated board" in table
    shown = as_json(as_user(server, home, "device", "show", board, "--json"))
    assert shown["uid"] == board and shown["is_online"] is True and shown["meta"]["tls_verified"] is True


def test_an_unknown_device_is_the_apis_message_and_exit_1(server, home):
    line = refused(as_user(server, home, "device", "show", "unix_nosuchdevice"), "Device not found.")
    assert "404" in line
    refused(as_user(server, home, "cmd", "unix_nosuchdevice", '{"cmd": "ping"}'), "Device not found.")


def test_a_device_that_is_not_online_refuses_a_reboot_and_can_be_deleted(server, home):
    pending = server.register("never-online")["uid"]
    refused(as_user(server, home, "reboot", pending), "Device is offline.")
    assert as_user(server, home, "device", "rm", pending).returncode == 2  # --yes is required
    assert server.call("GET", f"/v1/user/devices/{pending}")[0] == 200
    assert "Device deleted." in ok(as_user(server, home, "device", "rm", pending, "--yes")).stdout
    assert server.call("GET", f"/v1/user/devices/{pending}")[0] == 404


# -- tags and groups


def test_tags_added_listed_filtered_and_removed(server, board, home):
    spare = server.register("tagged")["uid"]
    try:
        added = ok(as_user(server, home, "tag", "add", board, "kitchen", "floor-2"))
        assert added.stdout.strip() == f"Tags added. ({board}: floor-2, kitchen)"
        ok(as_user(server, home, "tag", "add", spare, "kitchen"))
        assert as_json(as_user(server, home, "tags", board, "--json")) == ["floor-2", "kitchen"]
        assert "floor-2" in ok(as_user(server, home, "tags", board)).stdout
        assert as_json(as_user(server, home, "tags", "--json")) == [
            {"tag": "floor-2", "device_count": 1}, {"tag": "kitchen", "device_count": 2}]
        rows = [line.split() for line in ok(as_user(server, home, "tags")).stdout.splitlines() if "kitchen" in line]
        assert rows == [["│", "kitchen", "│", "2", "│"]]
        assert [d["uid"] for d in as_json(as_user(server, home, "devices", "--tag", "kitchen", "--json"))] == [
            board, spare]
        assert "floor-2, kitchen" in ok(as_user(server, home, "device", "show", board)).stdout
        refused(as_user(server, home, "tag", "add", board, "Kitchen"), "The tags.0 field must be 1 to 32 lowercase")
        assert as_json(as_user(server, home, "tag", "rm", board, "kitchen", "--json"))["data"] == ["floor-2"]
        refused(as_user(server, home, "tag", "rm", board, "kitchen"), "Tag not found.")
        assert ok(as_user(server, home, "tag", "rm", board, "floor-2")).stdout.strip() == (
            f"Tag removed. ({board}: no tags)")
    finally:
        server.call("DELETE", f"/v1/user/devices/{spare}")


def test_groups_created_filled_listed_edited_and_removed(server, board, home):
    spare = server.register("grouped")["uid"]
    try:
        group = as_json(as_user(server, home, "group", "add", "Ground floor", "--description", "downstairs",
                                "--json"))
        assert group == {"id": group["id"], "name": "Ground floor", "description": "downstairs", "device_count": 0}
        gid = str(group["id"])
        refused(as_user(server, home, "group", "add", "ground FLOOR"), "A group with this name already exists.")
        added = ok(as_user(server, home, "group", "add-devices", gid, board, spare)).stdout
        assert added.strip() == f"Devices added to the group. (group {gid} 'Ground floor': 2 devices)"
        line = refused(as_user(server, home, "group", "add-devices", gid, spare, "unix_nosuchdevice"),
                       "Device not found: unix_nosuchdevice.")
        assert "HTTP 404" in line
        rows = [line.split("│") for line in ok(as_user(server, home, "groups")).stdout.splitlines() if gid in line]
        assert [[cell.strip() for cell in row[1:-1]] for row in rows] == [[gid, "Ground floor", "2", "downstairs"]]
        members = as_json(as_user(server, home, "group", "devices", gid, "--json"))
        assert [d["uid"] for d in members] == [board, spare]
        assert [d["uid"] for d in as_json(as_user(server, home, "group", "devices", gid, "--online", "--json"))] == [
            board]
        assert [d["uid"] for d in as_json(as_user(server, home, "devices", "--group", gid, "--status", "pending",
                                                  "--json"))] == [spare]
        table = ok(as_user(server, home, "group", "devices", gid, "--sort=-name", "--limit", "1")).stdout
        assert f"Devices of group {gid}" in table and spare in table and board not in table  # "grouped" > "flash"
        edited = as_json(as_user(server, home, "group", "edit", gid, "--name", "Downstairs", "--description", "",
                                 "--json"))
        assert edited == {**group, "name": "Downstairs", "description": None, "device_count": 2}
        refused(as_user(server, home, "group", "edit", gid), "nothing to change")
        assert "Downstairs" in ok(as_user(server, home, "group", "show", gid)).stdout
        removed = ok(as_user(server, home, "group", "rm-device", gid, spare)).stdout
        assert removed.strip() == f"Device removed from the group. (group {gid} 'Downstairs': 1 device)"
        refused(as_user(server, home, "group", "rm-device", gid, spare), "The device is not in this group.")
        assert ok(as_user(server, home, "group", "rm", gid)).stdout.strip() == f"Group deleted. (group {gid})"
        refused(as_user(server, home, "group", "show", gid), "Group not found.")
        assert server.call("GET", f"/v1/user/devices/{spare}")[0] == 200  # its devices stay
    finally:
        server.call("DELETE", f"/v1/user/devices/{spare}")


# -- commands


def test_a_command_with_wait_prints_its_final_result(server, board, home):
    result = ok(as_user(server, home, "cmd", board, '{"cmd": "ping"}', "--wait"))
    assert " done: " in result.stdout and "uptime" in result.stdout
    command = as_json(as_user(server, home, "cmd", board, '{"cmd": "ping"}', "--wait", "--json"))
    assert command["state"] == "done" and "uptime" in command["result"]
    assert server.call("GET", f"/v1/user/devices/{board}/commands/{command['id']}")[1]["data"]["state"] == "done"


def test_a_command_that_fails_on_the_board_exits_1_with_its_error(server, board, home):
    line = refused(as_user(server, home, "cmd", board, '{"cmd": "no_such_command"}', "--wait"), "failed")
    assert "no_such_command" in line


def test_a_command_without_wait_is_sent_and_listed(server, board, home):
    answer = as_json(as_user(server, home, "cmd", board, '{"cmd": "ping"}', "--json"))
    assert answer["message"] == "Command sent." and answer["device_uid"] == board
    wait_until(lambda: server.call("GET", f"/v1/user/devices/{board}/commands/{answer['id']}")[1]["data"]["state"]
               == "done", what="the ping done")
    history = as_json(as_user(server, home, "commands", board, "--json", "--limit", "3"))
    assert answer["id"] in [c["id"] for c in history] and len(history) <= 3
    assert answer["id"] in ok(as_user(server, home, "commands", board)).stdout


def test_a_payload_that_is_not_a_json_object_is_refused_before_sending(server, board, home):
    refused(as_user(server, home, "cmd", board, "ping"), "is not valid JSON")
    refused(as_user(server, home, "cmd", board, "[1]"), "must be a JSON object")


# -- command buttons


def test_buttons_add_list_send_and_remove(server, board, home):
    added = as_json(as_user(server, home, "button", "add", board, "say-hi", "--label", "Say hi", "--payload",
                            '{"cmd": "ping"}', "--json"))
    assert added["message"] == "Command button created."
    assert added["data"] == {"id": "say-hi", "label": "Say hi", "payload": {"cmd": "ping"}, "confirm": False}
    refused(as_user(server, home, "button", "add", board, "say-hi", "--label", "Again", "--payload", "{}"),
            "A command button with this id already exists.")
    assert "Say hi" in ok(as_user(server, home, "buttons", board)).stdout
    sent = as_json(as_user(server, home, "button", "send", board, "say-hi", "--wait", "--json"))
    assert sent["state"] == "done" and sent["payload"] == {"cmd": "ping"}
    assert "Command button deleted." in ok(as_user(server, home, "button", "rm", board, "say-hi")).stdout
    assert as_json(as_user(server, home, "buttons", board, "--json")) == []
    refused(as_user(server, home, "button", "send", board, "say-hi"), "Command button not found.")


# -- bulk commands and the offline queue


def test_bulk_commands_by_tag_uids_and_filters(server, board, home):
    away = server.register("away")["uid"]
    assert server.call("POST", f"/v1/user/devices/{board}/tags", {"tags": ["bulk-test"]})[0] == 200
    try:
        result = ok(as_user(server, home, "bulk", "cmd", '{"cmd": "ping"}', "--tag", "bulk-test", "--wait"))
        assert "to 1 device: 1 done." in result.stdout
        job = as_json(as_user(server, home, "bulk", "cmd", '{"cmd": "ping"}', "--uid", board, "--uid", away, "--json"))
        assert job["counts"] == {"queued": 1, "offline": 1} and job["target"] == {"type": "uids"}
        shown = as_json(as_user(server, home, "bulk", "show", job["id"], "--wait", "--json"))
        assert shown["counts"] == {"done": 1, "offline": 1}
        assert [(d["uid"], d["state"]) for d in shown["devices"]] == [(board, "done"), (away, "offline")]
        assert "uptime" in shown["devices"][0]["result"]
        table = ok(as_user(server, home, "bulk", "show", job["id"], "--state", "offline")).stdout
        assert away in table and "Device is offline." in table and board not in table.split("Devices")[1]
        # --wait exits 1 unless every device's command is done.
        line = refused(as_user(server, home, "bulk", "reboot", "--uid", away, "--wait"), "1 offline")
        assert "mpfleet bulk show" in line
        # The device list's filters: a button no device has.
        refused(as_user(server, home, "bulk", "button", "nope", "--online", "--platform", "unix", "--wait"),
                "1 no_button")
        refused(as_user(server, home, "bulk", "reboot", "--tag", "no-such-tag"), "The target matches no device.")
        refused(as_user(server, home, "bulk", "reboot"), "give the devices")
        refused(as_user(server, home, "bulk", "reboot", "--uid", away, "--tag", "bulk-test"), "--uid takes no other")
        refused(as_user(server, home, "bulk", "show", "nosuchjob"), "Bulk command not found.")
    finally:
        server.call("DELETE", f"/v1/user/devices/{away}")
        server.call("DELETE", f"/v1/user/devices/{board}/tags/bulk-test")


def test_ttl_lets_a_command_wait_for_an_offline_device(server, home):
    away = server.register("away")["uid"]
    try:
        refused(as_user(server, home, "cmd", away, '{"cmd": "ping"}'), "Device is offline.")
        answer = as_json(as_user(server, home, "cmd", away, '{"cmd": "ping"}', "--ttl", "600", "--json"))
        assert (answer["message"], answer["state"]) == ("Command sent.", "queued")
        assert "is queued" in ok(as_user(server, home, "reboot", away, "--ttl", "600")).stdout
        job = as_json(as_user(server, home, "bulk", "wifi-reset", "--uid", away, "--ttl", "600", "--json"))
        assert (job["counts"], job["ttl"]) == ({"queued": 1}, 600)
        states = [c["state"] for c in server.call("GET", f"/v1/user/devices/{away}/commands")[1]["data"]]
        assert states == ["queued"] * 3
        assert as_user(server, home, "reboot", away, "--ttl", "0").returncode == 2  # argparse: a whole second or more
        refused(as_user(server, home, "reboot", away, "--ttl", "604801"), "The ttl parameter must be an integer")
    finally:
        server.call("DELETE", f"/v1/user/devices/{away}")


# -- firmware files


def test_firmware_upload_target_list_and_remove(server, board, home, tmp_path):
    image = tmp_path / "build.bin"
    image.write_bytes(RAW + os.urandom(300 * 1024))  # several chunks of the streamed body
    md5 = hashlib.md5(image.read_bytes()).hexdigest()
    uploaded = as_json(as_user(server, home, "firmware", "upload", board, str(image), "--name", "Release build",
                               "--version", "1.0.3", "--notes", "from the test", "--json"))
    assert (uploaded["md5"], uploaded["size"], uploaded["name"], uploaded["version"], uploaded["notes"]) == (
        md5, image.stat().st_size, "Release build", "1.0.3", "from the test")
    assert uploaded["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    refused(as_user(server, home, "firmware", "upload", board, str(image), "--name", "again"),
            "This firmware file is already uploaded.")

    assert ok(as_user(server, home, "firmware", "target", board, md5)).stdout.startswith(
        "Firmware assigned to device.")
    listed = as_json(as_user(server, home, "firmware", "list", board, "--json"))
    assert [(f["id"], f["is_target"]) for f in listed if f["md5"] == md5] == [(uploaded["id"], True)]
    assert md5 in ok(as_user(server, home, "firmware", "list", board)).stdout
    edited = as_json(as_user(server, home, "firmware", "edit", board, str(uploaded["id"]), "--notes", "renamed",
                             "--json"))
    assert (edited["id"], edited["name"], edited["notes"]) == (uploaded["id"], "Release build", "renamed")
    refused(as_user(server, home, "firmware", "edit", board, "999999", "--notes", "x"), "Firmware not found.")
    refused(as_user(server, home, "firmware", "rm", board, str(uploaded["id"])),
            "Cannot delete firmware while it is assigned to any device.")
    refused(as_user(server, home, "ota", board), "cannot be applied over the air")  # a raw image: no board takes it

    assert "Target firmware cleared." in ok(as_user(server, home, "firmware", "target", board, "--clear")).stdout
    assert "Firmware deleted." in ok(as_user(server, home, "firmware", "rm", board, str(uploaded["id"]))).stdout
    assert md5 not in [f["md5"] for f in as_json(as_user(server, home, "firmware", "list", board, "--json"))]


def test_firmware_upload_of_a_missing_file_names_it(server, board, home, tmp_path):
    refused(as_user(server, home, "firmware", "upload", board, str(tmp_path / "none.bin"), "--name", "x"),
            "none.bin")


def test_firmware_upload_over_4_mb_is_the_apis_message(server, board, home, tmp_path):
    image = tmp_path / "big.bin"
    image.write_bytes(RAW + os.urandom(5 * 1024 * 1024))
    refused(as_user(server, home, "firmware", "upload", board, str(image), "--name", "big"),
            "The firmware file must not be larger than 4 MB.")
    assert image.stat().st_size not in [f["size"] for f in server.call("GET", f"/v1/user/devices/{board}/firmwares")
                                        [1]["data"]]


def test_firmware_upload_extract_app_cuts_the_app_out_of_a_full_flash_image(server, home):
    """A real MicroPython ESP32 full flash image (tests/esp_images.py): the app is what follows flash 0x10000."""
    status, body = server.call("POST", "/v1/user/devices", {"name": "esp32", "platform": "espressif32",
                                                            "board": "esp32dev"})
    assert status == 201, body
    esp32 = body["data"]["uid"]
    full = esp_images.etboard_full_images()[0]
    data = full.read_bytes()
    refused(as_user(server, home, "firmware", "upload", esp32, str(full), "--name", "whole"), "full flash image")
    uploaded = as_json(as_user(server, home, "firmware", "upload", esp32, str(full), "--name", "MicroPython",
                               "--extract-app", "--json"))
    app = data[esp_images.ETBOARD_APP_AT:esp_images.ETBOARD_APP_AT + uploaded["size"]]
    assert uploaded["kind"] == "esp32-app" and uploaded["md5"] == hashlib.md5(app).hexdigest()
    assert uploaded["size"] < len(data)
    refused(as_user(server, home, "firmware", "upload", esp32, str(full), "--name", "again", "--extract-app"),
            "This firmware file is already uploaded.")


def test_firmware_upload_extract_app_of_a_file_that_is_no_full_image_says_why(server, board, home, tmp_path):
    image = tmp_path / "app.bin"
    image.write_bytes(RAW + os.urandom(1024))
    before = server.call("GET", f"/v1/user/devices/{board}/firmwares")[1]["data"]
    line = refused(as_user(server, home, "firmware", "upload", board, str(image), "--name", "x", "--extract-app"),
                   "This is not a full flash image")
    assert "app.bin" in line
    assert server.call("GET", f"/v1/user/devices/{board}/firmwares")[1]["data"] == before  # nothing uploaded


# -- OTA


@pytest.fixture(scope="module")
def bundle_v2(tmp_path_factory):
    """A bundle made with `mpfleet bundle` from the firmware with start.py's VERSION 0.2.0."""
    tmp = tmp_path_factory.mktemp("bundle")
    source = shutil.copytree(firmware_build.firmware_dir(), tmp / "fw", ignore=shutil.ignore_patterns("__pycache__"))
    start = source / "start.py"
    start.write_text(start.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.2.0"'))
    out = tmp / "v2.bundle"
    made = run(tmp, "bundle", "--version", "0.2.0", "--source", str(source), "-o", str(out), timeout=120)
    assert made.returncode == 0, made.stderr
    return out


def test_ota_follows_a_bundle_to_updated(server, board, home, bundle_v2):
    md5 = hashlib.md5(bundle_v2.read_bytes()).hexdigest()
    terminal = {"TTY_COMPATIBLE": "1"}  # rich draws its bars as on a terminal
    uploaded = ok(as_user(server, home, "firmware", "upload", board, str(bundle_v2), "--name", "build", "--version",
                          "0.2.0", "--json", env=terminal))
    assert "Uploading v2.bundle" in uploaded.stderr and json.loads(uploaded.stdout)["md5"] == md5
    ok(as_user(server, home, "firmware", "target", board, md5))
    result = ok(as_user(server, home, "ota", board, "--json", env=terminal, timeout=120))
    job = json.loads(result.stdout)
    assert job["state"] == "updated" and job["firmware"]["md5"] == md5
    assert job == server.call("GET", f"/v1/user/devices/{board}/ota")[1]["data"]
    assert "OTA check triggered." in result.stderr and "updated" in result.stderr and "100%" in result.stderr
    detail = server.call("GET", f"/v1/user/devices/{board}")[1]["data"]
    assert detail["current_firmware"]["md5"] == md5


def test_ota_takes_up_the_job_already_running(server, board, home, tmp_path):
    out = tmp_path / "v4.bundle"
    ok(run(home, "bundle", "--version", "0.4.0", "-o", str(out), timeout=120))
    uploaded = as_json(as_user(server, home, "firmware", "upload", board, str(out), "--name", "v4", "--json"))
    ok(as_user(server, home, "firmware", "target", board, uploaded["md5"]))
    jobs = len(server.call("GET", f"/v1/user/devices/{board}/ota?all=true")[1]["data"])
    paused = EMULATORS[board].pid
    os.killpg(paused, signal.SIGSTOP)  # the job cannot end before `mpfleet ota` has read it (an incremental OTA
    try:  # takes a second or two)
        status, started = server.call("POST", f"/v1/user/devices/{board}/ota")
        assert status == 200, started
        follower = subprocess.Popen([MPFLEET, "ota", board, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=user_env(home, {"MPFLEET_URL": server.url,
                                                                   "MPFLEET_TOKEN": server.token}))
        time.sleep(3)  # it starts (0.3 s) and reads the job: still `sent`
    finally:
        os.killpg(paused, signal.SIGCONT)
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    job = json.loads(out)
    assert (job["id"], job["state"]) == (started["id"], "updated")
    assert len(server.call("GET", f"/v1/user/devices/{board}/ota?all=true")[1]["data"]) == jobs + 1  # not another


def test_ota_of_a_job_that_fails_exits_1_with_its_error(server, board, home, tmp_path):
    """A bundle corrupted on the server's disk after its upload: the board refuses it (its sha256), the job fails."""
    filler = tmp_path / "filler.bin"
    filler.write_bytes(os.urandom(64 * 1024))
    out = tmp_path / "v3.bundle"
    ok(run(home, "bundle", "--version", "0.3.0", "--add", str(filler), "-o", str(out), timeout=120))
    uploaded = as_json(as_user(server, home, "firmware", "upload", board, str(out), "--name", "bad", "--json"))
    blob = server.data_dir / "firmware" / f"{uploaded['md5']}.bin"
    data = bytearray(blob.read_bytes())
    entry = [e for e in read_manifest(bytes(data)).files if e.path == "filler.bin"][0]
    data[entry.offset + 1000] ^= 0xFF  # in a file the board must download (it has none like it); size unchanged
    blob.write_bytes(bytes(data))
    ok(as_user(server, home, "firmware", "target", board, uploaded["md5"]))
    line = refused(as_user(server, home, "ota", board, timeout=120), "failed")
    assert "sha256" in line or "md5" in line
    wait_until(lambda: server.call("GET", f"/v1/user/devices/{board}")[1]["data"]["status"] == "online",
               timeout=30, what="the board back online")


# -- telemetry


def test_telemetry_history_filtered_by_key_and_time(server, board, home):
    wait_until(lambda: server.call("GET", f"/v1/user/devices/{board}/telemetry?key=uptime")[1]["data"], timeout=20,
               what="an uptime sample")
    every = as_json(as_user(server, home, "telemetry", board, "--json"))
    assert every == server.call("GET", f"/v1/user/devices/{board}/telemetry")[1]["data"]
    uptime = as_json(as_user(server, home, "telemetry", board, "--key", "uptime", "--json"))
    assert uptime and {s["key"] for s in uptime} == {"uptime"}
    assert as_json(as_user(server, home, "telemetry", board, "--since", "2099-01-01T00:00:00Z", "--json")) == []
    assert as_json(as_user(server, home, "telemetry", board, "--since", "1d", "--key", "uptime", "--json"))
    assert "uptime" in ok(as_user(server, home, "telemetry", board, "--limit", "5")).stdout
    latest = as_json(as_user(server, home, "telemetry", board, "--latest", "--json"))
    assert "uptime" in latest and "value" in latest["uptime"]
    refused(as_user(server, home, "telemetry", board, "--since", "yesterday"),
            "The from parameter must be an RFC 3339 date-time or unix seconds.")


# -- watch, and a device disabled and enabled again


def test_watch_prints_status_changes(server, board, home):
    env = {**os.environ, "HOME": str(home), "MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token}
    # SIGINT as a terminal gives it: a pytest started as a background job of a non-interactive shell (`make test &`)
    # passes SIGINT on ignored, and Python then installs no KeyboardInterrupt (seen in /proc: SigIgn with SIGINT).
    watcher = subprocess.Popen([MPFLEET, "watch", board, "--json", "--interval", "0.2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = json.loads(watcher.stdout.readline())
        assert (first["uid"], first["status"], first["previous"]) == (board, "online", None)
        ok(as_user(server, home, "device", "edit", board, "--disable"))
        change = json.loads(watcher.stdout.readline())
        assert (change["status"], change["previous"]) == ("disabled", "online")
        ok(as_user(server, home, "device", "edit", board, "--enable"))
        back = json.loads(watcher.stdout.readline())
        assert back["previous"] == "disabled" and back["status"] in ("offline", "online")
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            _, err = watcher.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # (seen in full runs under load: what it was doing, then never left running)
            state = _process_state(watcher.pid)
            watcher.kill()
            watcher.communicate()
            raise AssertionError(f"mpfleet watch did not end within 30 s of SIGINT: {state}") from None
    assert watcher.returncode == 0, err  # Ctrl-C is how it ends
    wait_until(lambda: server.call("GET", f"/v1/user/devices/{board}")[1]["data"]["status"] == "online",
               timeout=30, what="the board back online")


def _process_state(pid):
    """What /proc says of process `pid`: its state, its threads and where each waits, its pending and blocked
    signals (the evidence a watch that does not end on SIGINT leaves)."""
    proc = Path(f"/proc/{pid}")
    try:
        lines = (proc / "status").read_text().splitlines()
        status = {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}
        threads = {t.name: (t / "wchan").read_text() for t in (proc / "task").iterdir()}
    except OSError as error:
        return f"gone ({error})"
    keys = ("State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return ", ".join(f"{k} {status.get(k)}" for k in keys) + f", waiting in {threads}"


# -- reboot and Wi-Fi reset last: the board goes away


def test_reboot_with_wait_is_done_and_the_board_comes_back(server, board, home):
    boots = _boots(server, board)
    result = ok(as_user(server, home, "reboot", board, "--wait"))
    assert " done" in result.stdout
    wait_until(lambda: _boots(server, board) == boots + 1, timeout=30, what="the board rebooted")


def test_wifi_reset_with_wait_is_done(server, board, home):
    """Last of the board's tests: it forgets its network and restarts into setup mode."""
    result = ok(as_user(server, home, "wifi-reset", board, "--wait", "--json"))
    assert json.loads(result.stdout)["state"] == "done"


def _boots(server, uid):
    return server.call("GET", f"/v1/user/devices/{uid}")[1]["data"]["meta"]["boot"]["count"]


def _client_commands(parser, prefix=()):
    """Every client command of `mpfleet` (its run function in tools/client/), as the words that name it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                run = sub.get_default("run")
                if run is not None and run.__module__.startswith("mpfleet.tools.client."):
                    yield [*prefix, name]
                yield from _client_commands(sub, (*prefix, name))


CLIENT_COMMANDS = list(_client_commands(cli.build_parser()))


def test_the_client_commands_are_all_found():
    for command in (["login"], ["device", "show"], ["campaign", "start"], ["rule", "add"], ["alarm", "resolve"],
                    ["stats"], ["watch"]):
        assert command in CLIENT_COMMANDS


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=" ".join)
def test_every_client_command_explains_itself_and_where_its_server_comes_from(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.build_parser().parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--url" in shown and "MPFLEET_TOKEN" in shown and "login.json" in shown
