"""README.md's walkthrough ("From a blank board to a managed device") runs as written: its shell blocks in bash,
in order, in an empty directory, with the installed `mpfleet`.

What stands in for the hardware, and the only changes made to the commands:
- the serial port /dev/ttyUSB0: for the flash steps a pseudo-terminal of esp32-mock-bootloader (an ESP32 profile,
  then an ESP8266 one: tests/test_flash.py's Mock), for the deploy step an emulated board's REPL on a
  pseudo-terminal (tests/pty_board.py); the emulation splits the two, so after the deploy the board's flash is
  booted with `mpfleet emulate --no-build` (a real board resets into it by itself);
- the downloaded images: real MicroPython builds from the package index (tests/esp_images.py) under the names the
  README gives (the ESP32 one is a plain build, not the OTA variant: `mpfleet flash` says so and goes on);
- the addresses: 127.0.0.1 for the LAN address, free ports for the server's (the serve block is run in the
  background, as in a terminal of its own).
The Mosquitto block runs against a Mosquitto 2 started from a generated config (tests/mosquitto_broker.py).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mpfleet.backend.broker.tls import ensure_certificates

from . import esp_images
from .maker_shell import VENV_BIN, maker_env, run_script
from .mosquitto_broker import MosquittoBroker
from .pty_board import PtyBoard
from .polling import wait_until
from .server_process import answers, free_port
from .test_flash import Mock

pytestmark = pytest.mark.network  # the images and umqtt.simple come from the package index once, then cached

README = Path(__file__).resolve().parent.parent / "README.md"
VENV = VENV_BIN.parent
LAN = "192.168.1.20"
USB = "/dev/ttyUSB0"
ESP32_IMAGE = "ESP32_GENERIC-OTA-20250415-v1.25.0.bin"
ESP8266_IMAGE = "ESP8266_GENERIC-20250415-v1.25.0.bin"


def walkthrough_blocks():
    """The ```sh blocks of the walkthrough's section, in order."""
    text = README.read_text()
    section = text.split("## From a blank board to a managed device", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)


def start_server(command, cwd, extra):
    """The serve block, in the background as in a terminal of its own: (process, URL)."""
    http = free_port()
    assert f"--public-host {LAN}" in command
    command = command.replace(f"--public-host {LAN}", f"--public-host 127.0.0.1 --http-port {http} {extra}")
    with open(cwd / "serve.log", "wb") as log:  # (the child keeps its own copy of the descriptor)
        process = subprocess.Popen(["bash", "-c", "exec " + command.strip()], cwd=cwd, env=maker_env(),
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"

    def up():
        assert process.poll() is None, (cwd / "serve.log").read_text()
        return answers(url)

    wait_until(up, 30, "the README's mpfleet serve")
    return process, url


def run_ok(script, cwd, env, timeout=300):
    result = run_script(script, cwd=cwd, env=env, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_the_walkthrough_takes_a_blank_board_to_an_updated_managed_device(tmp_path):
    serve, login, flash_esp32, flash_esp8266, firmware, online, ota, fleet, _mosquitto = walkthrough_blocks()
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)  # `.venv/bin/mpfleet`, as in a checkout
    home = tmp_path / "home"
    env = maker_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    shutil.copyfile(esp_images.etboard_full_images()[1], work / ESP32_IMAGE)
    shutil.copyfile(esp_images.esp8266_image(), work / ESP8266_IMAGE)
    mocks = [Mock("esp32", tmp_path, pty=True), Mock("esp8266", tmp_path, pty=True)]
    board = PtyBoard(tmp_path / "board-flash", tmp_path / "ttyBOARD").start()  # MicroPython, nothing else yet
    server, url = start_server(serve, work, "--mqtt-port 0 --mqtt-tls-port 0 --device-port 0")
    try:
        assert USB in flash_esp32 and USB in flash_esp8266 and USB in firmware
        script = "\n".join([
            login.replace(f"http://{LAN}:8080", url),
            flash_esp32.replace(USB, mocks[0].url),
            flash_esp8266.replace(USB, mocks[1].url),
            firmware.replace(USB, str(board.port)),
            f"mpfleet emulate {board.flash} --no-build > board.log 2>&1 &   # (the reset, on a real board)",
            online, ota, fleet,
        ])
        out = run_ok(script, work, env)
    finally:
        stop(server)
        board.stop()
        for mock in mocks:
            mock.stop()
    assert f"Flashed {ESP32_IMAGE} to the ESP32" in out and f"Flashed {ESP8266_IMAGE} to the ESP8266" in out
    assert re.search(r"Command \S+ done: \{\"relay\": \"on\"\}", out), out[-3000:]
    assert re.search(r"updated to first OTA 0\.2\.0", out), out[-3000:]
    login_file = home / ".config" / "mpfleet" / "login.json"
    assert login_file.stat().st_mode & 0o777 == 0o600


def test_the_production_block_serves_on_mosquitto_and_a_board_comes_online(tmp_path):
    block = walkthrough_blocks()[-1]
    broker = MosquittoBroker(tmp_path / "mosquitto", ensure_certificates(tmp_path / "mosquitto-tls", []))
    broker.start()
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)
    example = re.search(r"--broker (\S+) --broker-ca (\S+) --mqtt-tls-port (\d+)", block)
    assert example, block
    command = block.replace(example.group(0), f"--broker {broker.url} --broker-ca {broker.tls.ca_cert} "
                                              f"--mqtt-tls-port {broker.tls_port}")
    server, url = start_server(command, work, "--device-port 0")
    try:
        token = (work / "var" / "admin.token").read_text().strip()
        env = maker_env(MPFLEET_URL=url, MPFLEET_TOKEN=token, MPFLEET_SERVER=url)
        run_ok("mpfleet provision --board unix --mqtt-host 127.0.0.1 --out emu\n"
                   "mpfleet emulate emu > emu.log 2>&1 &\n"
                   "until mpfleet devices --json | grep -q '\"status\": \"online\"'; do sleep 1; done\n",
                   work, env, timeout=120)
    finally:
        stop(server)
        broker.stop()
