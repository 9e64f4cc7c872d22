"""The board launcher (tools/launcher.py) and the firmware's own sys.path: a board runs the modules deployed in its
lib/, not the copies its MicroPython image happens to freeze.

The standard ESP32/ESP8266 images freeze a newer umqtt.simple than the one the firmware is built and tested with,
and put `.frozen` before `/lib`. The unix port here freezes micropython-lib's `requests` (among others): a
`requests` package in the flash's lib/ stands for the deployed umqtt.simple.
"""

import pytest

from .device_harness import Board, make_flash
from .micropython import check

# The maker's module of this board, as source (found before user.mpy): says where `requests` came from, at boot.
USER = """
import sys
import requests


def register(app, board):
    print("user: sys.path %r, requests from %s" % (sys.path, requests.__file__))


def telemetry():
    return {}
"""


def test_the_launcher_gives_a_boards_sys_path_and_the_unix_image_freezes_requests(firmware_flash):
    out = check("import sys, requests\nprint(sys.path, requests.__file__)", firmware_flash)
    assert out == "['', '.frozen', 'lib'] requests/__init__.py\n"  # frozen: no `.frozen/` or `lib/` in its name


@pytest.mark.network
async def test_the_firmware_puts_its_lib_before_the_frozen_modules(built_flash, registered, tmp_path):
    flash = make_flash(built_flash, tmp_path / "flash", registered)
    (flash / "lib" / "requests").mkdir()
    (flash / "lib" / "requests" / "__init__.py").write_text("deployed = True\n")
    (flash / "user.mpy").unlink()
    (flash / "user.py").write_text(USER)
    async with Board(flash) as board:
        line = await board.wait_for(r"^user: sys.path (.*), requests from (\S+)$")
    assert line.group(1) == "['', 'lib', '.frozen']"
    assert line.group(2) == "lib/requests/__init__.py"
