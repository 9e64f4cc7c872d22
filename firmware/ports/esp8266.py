"""The ESP8266: machine and network of the MicroPython ESP8266 port.

Its TLS is axTLS: CERT_NONE is the only verify mode and there is no getpeercert, so the broker cannot be
verified (TLS_VERIFIES False: the link warns on every connect and reports tls_verified false). The boot
count is kept in a small file (no NVS). The hardware watchdog is left to the SDK: machine.WDT here has
a fixed timeout of a few seconds, shorter than an RSA-2048 TLS handshake of this chip. What both ESP ports
share (Wi-Fi, NTP, pins, setup AP) is ports/_esp.py.
"""

import os

from ports._esp import *  # noqa: F403 -- the functions this port shares with the ESP32

PLATFORM = "espressif8266"
TLS_VERIFIES = False

_COUNT_FILE = "boot.cnt"


def boot():
    """(reason, count) of this boot; called once per boot, it counts the boot in a file."""
    try:
        with open(_COUNT_FILE) as f:
            count = int(f.read()) + 1
    except (OSError, ValueError):
        count = 1
    with open(_COUNT_FILE + ".tmp", "w") as f:
        f.write(str(count))
    os.rename(_COUNT_FILE + ".tmp", _COUNT_FILE)
    return reset_reason(), count


def ota_partition():
    """None: MicroPython has no firmware OTA on the ESP8266 (no esp32.Partition); apps are updated as bundles."""
    return None


def watchdog(timeout_ms):
    """No-op: see the module's text (feed() is a no-op too, as no watchdog was started)."""


def sensors():
    """No sensor on the chip (its ADC reads an external pin, not a board value)."""
    return {}
