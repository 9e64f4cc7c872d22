"""Hardware-in-the-loop: a board taken from MicroPython to a managed device and through what a maker does with it,
each step with the `mpfleet` commands a user types (the installed command, in a subprocess) and checked through
the REST API. The steps run in file order on one board and one backend; a step whose earlier step did not pass is
skipped.

    pytest tests/hil                                       # the emulated board (the default suite runs this)
    pytest -m hil --port /dev/ttyUSB0 --board esp32dev --image FILE --wifi-ssid S --wifi-password P

docs/hil.md says what each step checks on either board, and what the real board's serial console shows.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from mpfleet.boards import catalog
from mpfleet.tools import firmware_build

from ..polling import wait_until

# hil: the suite a real board runs (-m hil); network: the firmware build's umqtt.simple and the emulated run's
# ESP32 image come from the package index once, then the cache.
pytestmark = [pytest.mark.hil, pytest.mark.network]

ONLINE_S = 90  # a real board: reset, Wi-Fi join, DHCP, TLS handshake (the emulated board takes about 1 s)
TELEMETRY_PERIOD_S = firmware_build.firmware_constant("settings", "_PERIOD_MIN")  # 5 s
# A board that resets says nothing to the broker first: a real one's connection is seen gone only when its MQTT
# keepalive (connect.py) runs out, 1.5 times it (the emulated board's process ends, which closes its socket at once).
OFFLINE_S = firmware_build.firmware_constant("connect", "_KEEPALIVE") * 1.5 + 30
OTA_VERSION = "0.2.0"


def test_flash_writes_micropython_and_esptool_verifies_it(hil):
    target = hil.target
    if not target.image:
        pytest.skip("no --image: the board runs MicroPython already, nothing is flashed")
    image = Path(target.image)
    out = hil.ok("flash", "--board", target.flash_board, "--port", target.flash_port(), "--image", image,
                 timeout=900)
    assert "Verification successful (digest matched)." in out, out
    assert f"Flashed {image.name} to the " in out, out
    data = image.read_bytes()
    at = int(catalog()[target.flash_board].flash_offset, 16)
    read_back = target.flashed_md5(at, len(data))
    assert read_back in (None, hashlib.md5(data).hexdigest())  # None: a real chip, whose MD5 esptool compared
    hil.passed.add("flash")


def test_provision_and_deploy_copy_the_firmware_and_reset_the_board(hil):
    if hil.target.image:
        hil.need("flash")
    config = hil.root / "config"
    hil.ok("provision", "--server", hil.server.url, "--token", hil.server.token, "--board", hil.target.board,
           "--name", "hil-board", "--out", config, "--period", TELEMETRY_PERIOD_S, *hil.target.provision_args())
    hil.uid = json.loads((config / "config.json").read_text())["mqtt"]["uid"]
    out = hil.ok("deploy", "--port", hil.target.deploy_port(), "--config", config, timeout=300)
    assert "Copied " in out and "Resetting the board" in out, out
    print(next(line for line in out.splitlines() if line.startswith("Copied ")))
    hil.target.after_deploy()
    assert hil.device()["status"] != "online"  # registered, never connected yet
    hil.passed.add("deploy")


def test_the_board_comes_online_over_tls(hil):
    hil.need("deploy")
    wait_until(lambda: hil.device()["status"] == "online", timeout=ONLINE_S, interval=0.2,
               what=f"the board online (console: {hil.target.console()[-2000:]!r})")
    shown = hil.json("device", "show", hil.uid)
    assert shown["is_online"] is True and shown["meta"]["tls_verified"] is True, shown
    assert shown["board"]["key"] == hil.target.board and shown["meta"]["boot"]["count"] >= 1, shown
    assert hil.uid in hil.ok("devices")
    hil.passed.add("online")


def test_telemetry_arrives(hil):
    hil.need("online")
    samples = wait_until(lambda: hil.json("telemetry", hil.uid, "--key", "uptime"), timeout=TELEMETRY_PERIOD_S * 4,
                         interval=0.5, what="an uptime sample")
    assert {s["key"] for s in samples} == {"uptime"}
    assert samples == hil.server.call("GET", f"/v1/user/devices/{hil.uid}/telemetry?key=uptime")[1]["data"]


def test_a_custom_command_runs_on_the_board_and_shows_in_its_telemetry(hil):
    hil.need("online")
    command = hil.json("cmd", hil.uid, '{"cmd": "relay_toggle", "state": "on"}', "--wait")
    assert (command["state"], command["result"]) == ("done", {"relay": "on"}), command
    # user.py's telemetry() reports the relay: a sample after the command says on (the backend keeps a bool as 1).
    wait_until(lambda: hil.json("telemetry", hil.uid, "--latest").get("relay", {}).get("value") == 1,
               timeout=TELEMETRY_PERIOD_S * 4, interval=0.5, what="a telemetry sample with the relay on")
    refused = hil.mpfleet("cmd", hil.uid, '{"cmd": "relay_toggle", "state": "sideways"}', "--wait")
    assert refused.returncode == 1 and "state must be 'on' or 'off'" in refused.stderr, refused.stderr


def test_reboot_brings_the_board_back(hil):
    hil.need("online")
    boots = hil.device()["meta"]["boot"]["count"]
    assert " done" in hil.ok("reboot", hil.uid, "--wait")
    wait_until(lambda: (d := hil.device())["status"] == "online" and d["meta"]["boot"]["count"] == boots + 1,
               timeout=ONLINE_S, interval=0.2, what="the board online again, booted once more")


@pytest.fixture(scope="module")
def bundle(hil):
    """An app bundle made with `mpfleet bundle` from the firmware with start.py's VERSION changed."""
    source = shutil.copytree(firmware_build.firmware_dir(), hil.root / "fw",
                             ignore=shutil.ignore_patterns("__pycache__"))
    start = source / "start.py"
    text = start.read_text()
    assert 'VERSION = "0.1.0"' in text
    start.write_text(text.replace('VERSION = "0.1.0"', f'VERSION = "{OTA_VERSION}"'))
    out = hil.root / f"mpfleet-{OTA_VERSION}.bundle"
    hil.ok("bundle", "--version", OTA_VERSION, "--source", source, "-o", out)
    print(f"{out.name}: {out.stat().st_size:,} bytes")
    return out


def test_ota_with_a_bundle_updates_the_board(hil, bundle):
    hil.need("online")
    uploaded = hil.json("firmware", "upload", hil.uid, bundle, "--name", "hil", "--version", OTA_VERSION)
    md5 = hashlib.md5(bundle.read_bytes()).hexdigest()
    assert uploaded["md5"] == md5, uploaded
    hil.ok("firmware", "target", hil.uid, md5)
    job = hil.json("ota", hil.uid, timeout=1000)
    assert job["state"] == "updated" and job["firmware"]["md5"] == md5, job
    device = hil.device()
    assert device["current_firmware"]["md5"] == md5 and device["status"] == "online", device


def test_wifi_reset_makes_the_board_forget_its_network(hil, request):
    """Last: the board restarts in setup mode, off the network, until it is given one again."""
    if hil.target.real and not request.config.option.wifi_reset:
        pytest.skip("give --wifi-reset to run it: the board then forgets its Wi-Fi network (docs/hil.md)")
    hil.need("online")
    command = hil.json("wifi-reset", hil.uid, "--wait")
    assert command["state"] == "done", command
    wait_until(lambda: hil.device()["status"] != "online", timeout=OFFLINE_S, interval=0.5,
               what="the board off the network")
