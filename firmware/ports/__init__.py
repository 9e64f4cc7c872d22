"""The board layer: what differs between ports (ESP32, ESP8266, the unix port) is decided here and only here.

Core modules ask this package; they never import machine, network, esp or esp32, nor test sys.platform.

    from ports import board
    b = board()          # the module of this port: ports.esp32, ports.esp8266 or ports.unix
    reason, count = b.boot()

Every port module offers the same names (see ports/unix.py for the reference, with what each raises):
PLATFORM, TLS_VERIFIES, boot(), reset(), unique_id(), wifi_connect(), wifi_connected(), wifi_forget(), ip(),
rssi(), sync_time(), watchdog(), feed(), set_pins(), output(), sensors(), setup_listen().

app.py unloads this package once board() has answered: the port's module stays (sys.modules caches it), and
md5() loads the package again when it is needed.
"""

import sys


def board():
    """The board module of the port this runs on."""
    if sys.platform == "esp32":
        from ports import esp32 as b
    elif sys.platform == "esp8266":
        from ports import esp8266 as b
    else:  # the unix port (linux, darwin): the emulated board
        from ports import unix as b
    return b


def md5(data=None):
    """A new MD5 hash object: the port's hashlib.md5 where it has one, else ours (firmware/md5.py).

    The ESP8266 port is built without hashlib.md5. Use only update() and digest(): the native object
    has no hexdigest(), and after its digest() it refuses further use.
    """
    try:
        from hashlib import md5 as new
    except ImportError:
        from md5 import md5 as new
    return new() if data is None else new(data)
