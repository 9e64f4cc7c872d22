"""The maker's whole path with real processes: serve → provision → emulate → online → reboot.

Nothing here is played by Python: `mpfleet serve` with its embedded broker, `mpfleet provision`
over REST, and `mpfleet emulate` running the real firmware on the MicroPython unix port.
"""

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from .polling import wait_until
from .server_process import MPFLEET, ServerProcess

pytestmark = pytest.mark.network  # the firmware build fetches umqtt.simple from the package index once


def api(server, token, method, path):
    request = urllib.request.Request(server.url + path, method=method, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_provision_then_emulate_brings_the_board_online_and_back_after_a_reboot(tmp_path):
    server = ServerProcess(tmp_path / "var").start()
    token = (tmp_path / "var" / "admin.token").read_text().strip()
    flash = tmp_path / "kitchen"
    emulator = None
    try:
        provisioned = subprocess.run(
            [MPFLEET, "provision", "--server", server.url, "--token", token, "--board", "unix",
             "--out", str(flash), "--mqtt-host", "127.0.0.1"],
            capture_output=True, text=True, timeout=60)
        assert provisioned.returncode == 0, provisioned.stderr
        uid = json.loads((flash / "config.json").read_text())["mqtt"]["uid"]

        emulator = subprocess.Popen([MPFLEET, "emulate", str(flash)], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
        # The first build may download umqtt.simple. How fast a board comes online is a benchmark's figure
        # (bench/firmware_memory.py), not this test's: here it must come online at all.
        wait_until(lambda: (flash / "main.py").exists() and (flash / ".board").exists(), timeout=60)
        device = wait_until(lambda: _online(server, token, uid), timeout=20, what="the board online")
        assert device["meta"]["boot"]["count"] == 1 and device["meta"]["tls_verified"] is True

        command = api(server, token, "POST", f"/v1/user/devices/{uid}/reboot")
        wait_until(lambda: api(server, token, "GET", f"/v1/user/devices/{uid}/commands/{command['id']}")
                 ["data"]["state"] == "done", timeout=5)
        device = wait_until(lambda: _booted(server, token, uid, 2), timeout=10)
        assert device["meta"]["boot"]["reason"] == "soft"
    finally:
        output = ""
        if emulator is not None:
            emulator.send_signal(signal.SIGINT)
            output, _ = emulator.communicate(timeout=20)
        server.stop()
    assert emulator.returncode == 0, output
    assert f"[{uid}]" in output  # log lines are prefixed with the board's uid
    assert not _micropython_running_in(flash)


def _online(server, token, uid):
    data = api(server, token, "GET", f"/v1/user/devices/{uid}")["data"]
    return data if data["status"] == "online" else None


def _booted(server, token, uid, count):
    data = _online(server, token, uid)
    return data if data and data["meta"].get("boot", {}).get("count") == count else None


def _micropython_running_in(flash):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(flash):
                return True
        except OSError:
            continue
    return False
