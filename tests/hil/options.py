"""The command-line options of the hardware-in-the-loop suite (tests/hil/), registered by tests/conftest.py's
pytest_addoption: pytest takes options only from the conftest files it loads at start-up, and tests/hil/conftest.py
is not one of them when pytest is run on the whole tests/ folder.

    pytest -m hil --port /dev/ttyUSB0 --board esp32dev --image ESP32_GENERIC-20250415-v1.25.0.bin \
        --wifi-ssid MyNetwork --wifi-password secret [--wifi-reset] [--public-host 192.168.1.20]

Without --port the suite runs against the emulated board (docs/hil.md).
"""


def add_options(parser):
    group = parser.getgroup("hil", "hardware-in-the-loop (tests/hil/, docs/hil.md)")
    group.addoption("--port", metavar="PORT",
                    help="a real board's serial port, e.g. /dev/ttyUSB0: run the hil tests against it instead of "
                    "the emulated board")
    group.addoption("--board", metavar="KEY", help="the real board's key in boards/, e.g. esp32dev or d1_mini")
    group.addoption("--image", metavar="FILE",
                    help="a MicroPython image to flash first (without it the board must run MicroPython already "
                    "and the flash step is skipped)")
    group.addoption("--wifi-ssid", metavar="SSID", help="the Wi-Fi network the real board joins")
    group.addoption("--wifi-password", metavar="PASSWORD", default="",
                    help="its password (default: $MPFLEET_WIFI_PASSWORD, else none: an open network)")
    group.addoption("--public-host", metavar="HOST",
                    help="this machine's address as the board reaches it (default: the address of the interface "
                    "of its default route)")
    group.addoption("--wifi-reset", action="store_true",
                    help="also run the Wi-Fi reset step on the real board (it then forgets its network)")
