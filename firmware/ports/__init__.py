"""The board layer: what differs between ports (ESP32, ESP8266, the unix port) is decided here and only here.

Core modules ask this package; they never import machine, network, esp or esp32, nor test sys.platform.

    from ports import board
    b = board()          # the module of this port: ports.esp32, ports.esp8266 or ports.unix
    reason, count = b.boot()

Every port module offers the same names (see ports/unix.py for the reference, with what each raises):
PLATFORM, TLS_VERIFIES, boot(), reset(), unique_id(), wifi_connect(), wifi_connected(), wifi_forget(), ip(),
rssi(), sync_time(), watchdog(), feed(), set_board(), output(), sensors(), setup_listen().
"""

_md5 = None
_board = None


def md5(data=None):
    """A new MD5 hash object: the port's hashlib.md5 where it has one, else ours (firmware/md5.py).

    The ESP8266 port is built without hashlib.md5. Use only update() and digest(): the native object
    has no hexdigest(), and after its digest() it refuses further use.
    """
    global _md5
    if _md5 is None:
        try:
            from hashlib import md5 as _md5
        except ImportError:
            from md5 import md5 as _md5
    return _md5() if data is None else _md5(data)


def board():
    """The board module of the port this runs on (imported once)."""
    global _board
    if _board is None:
        import sys

        if sys.platform == "esp32":
            from ports import esp32 as _board
        elif sys.platform == "esp8266":
            from ports import esp8266 as _board
        else:  # the unix port (linux, darwin): the emulated board
            from ports import unix as _board
    return _board
