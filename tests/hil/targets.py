"""The two boards the hardware-in-the-loop steps run on: the emulated one (the default suite) and a real one (--port).

Each step (test_board.py) asks its target only for what differs between the two:

    target.board                  the board key `mpfleet provision` registers (unix, or the real board's)
    target.server_args()          how `mpfleet serve` listens so that the board reaches it
    target.flash_port()           where `mpfleet flash` writes (the mock bootloader's pseudo-terminal, or PORT)
    target.flashed_md5(at, size)  the chip's MD5 of what is at `at` after the flash (None on a real board: esptool's
                                  own verify is the check there)
    target.deploy_port()          where `mpfleet deploy` copies (the pty board's REPL, or PORT)
    target.after_deploy()         what the board's reset does after deploy (the emulated board: the unix process
                                  ends, and `mpfleet emulate` powers it up again, as its reset loop)
    target.console()              what the board printed since it booted ("" on a real board: its UART is not read)

The emulation splits the ESP32 in two: the flash step writes a real MicroPython ESP32 image into esp32-mock-bootloader
(an emulated ROM bootloader with an in-memory flash), and the later steps run the firmware on the MicroPython unix
port whose REPL is on a pseudo-terminal (tests/pty_board.py). Nothing boots from the mock's flash.
"""

import os
import signal
import socket
import subprocess
import time

from mpfleet.tools.setup_board import FLASHED_SETTLE

from .. import esp_images
from ..pty_board import PtyBoard
from ..server_process import MPFLEET
from ..test_flash import Mock

# After a flash the board boots MicroPython for the first time and formats its filesystem: setup-board's wait.
FIRST_BOOT_S = FLASHED_SETTLE
MQTT_TLS_PORT = "8883"  # the real board's: `mpfleet serve`'s defaults, the ports a firewall already lets in for it
DEVICE_PORT = "8443"


class EmulatedTarget:
    board = "unix"
    flash_board = "esp32dev"  # the mock bootloader is an ESP32
    real = False

    def __init__(self, root):
        self.root = root
        self.image = esp_images.etboard_full_images()[1]  # MicroPython for ESP32, ESP-IDF v4.2 (network, cached)
        self.mock = None
        self.pty = PtyBoard(root / "flash", root / "ttyBOARD")
        self.emulator = None
        self.log_path = root / "emulate.log"

    def server_args(self):
        return ["--mqtt-port", "0", "--mqtt-tls-port", "0", "--public-host", "127.0.0.1"]

    def provision_args(self):
        return []  # the emulator gets a stand-in network (mpfleet provision)

    def flash_port(self):
        self.mock = Mock("esp32", self.root, pty=True)
        return self.mock.url

    def flashed_md5(self, at, size):
        return self.mock.md5(at, size)

    def deploy_port(self):
        return self.pty.start().port  # the bare REPL, as a board that runs MicroPython and nothing else

    def after_deploy(self):
        """Deploy's reset ends the REPL's process; the board then boots its flash in `mpfleet emulate`, which
        restarts it on every reset (exit 75) as a board's reset does."""
        self.pty.wait_gone()
        with open(self.log_path, "w") as log:  # a file: a pipe nobody drains would stall the board once full
            self.emulator = subprocess.Popen([MPFLEET, "emulate", "--no-build", str(self.pty.flash)], stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)

    def console(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self):
        if self.emulator is not None:
            self.emulator.send_signal(signal.SIGINT)  # how a user stops it: it stops its boards
            try:
                self.emulator.wait(timeout=20)
            except subprocess.TimeoutExpired:  # never leave a board running after the tests
                os.killpg(self.emulator.pid, signal.SIGKILL)
                self.emulator.wait()
        self.pty.stop()
        if self.mock is not None:
            self.mock.stop()


class BoardTarget:
    real = True

    def __init__(self, options):
        self.port = options.port
        self.board = options.board
        self.flash_board = options.board
        self.image = options.image
        self.wifi_ssid = options.wifi_ssid
        self.wifi_password = options.wifi_password or os.environ.get("MPFLEET_WIFI_PASSWORD", "")
        self.public_host = options.public_host or lan_address()

    def problems(self):
        """What the options lack for a real board (a list of sentences)."""
        missing = []
        if not self.board:
            missing.append("--port needs --board KEY (the board's key in boards/, e.g. esp32dev)")
        if not self.wifi_ssid:
            missing.append("a real board needs --wifi-ssid SSID (and --wifi-password or $MPFLEET_WIFI_PASSWORD) "
                           "to reach the backend")
        if self.image and not os.path.isfile(self.image):
            missing.append(f"--image {self.image}: no such file")
        return missing

    def server_args(self):
        return ["--host", "0.0.0.0", "--public-host", self.public_host, "--mqtt-port", "0",
                "--mqtt-tls-port", MQTT_TLS_PORT, "--device-port", DEVICE_PORT]

    def provision_args(self):
        return ["--wifi-ssid", self.wifi_ssid, "--wifi-password", self.wifi_password]

    def flash_port(self):
        return self.port

    def flashed_md5(self, at, size):
        return None

    def deploy_port(self):
        if self.image:  # flashed a moment ago (provision came between)
            time.sleep(FIRST_BOOT_S)
        return self.port

    def after_deploy(self):
        pass  # the board resets itself and boots what deploy copied

    def console(self):
        return ""

    def stop(self):
        pass


def lan_address():
    """This machine's address on the interface of its default route (a UDP socket's connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed by the default route, never answered
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
