"""The emulated board: the MicroPython unix port, its flash a directory (the working directory).

What a real board keeps across a reset lives in `.board/` of the flash: the boot count, the cause of the
next boot, a unique id. reset() ends the process with exit code 75; the emulator (tools/emulate.py, or the
tests' harness) starts it again, as a board would restart. Wi-Fi is a stand-in, "connected" whenever the
configuration names a network; pins and the watchdog only log.
"""

import json
import os
import sys

from micropython import const

PLATFORM = "unix"
TLS_VERIFIES = True  # mbedTLS: CERT_REQUIRED and the server name are checked

_RESET_EXIT = const(75)  # the emulator restarts a process that exits with this code
_DIR = ".board"
_wifi = None  # the ssid "joined", or None


def _path(name):
    return _DIR + "/" + name


def _read(name, default=None):
    try:
        with open(_path(name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write(name, value):
    try:
        os.mkdir(_DIR)
    except OSError:
        pass
    tmp = _path(name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, _path(name))


def boot():
    """(reason, count) of this boot; called once per boot, it counts the boot.

    reason: "soft" after reset(), else "power_on" (the emulator may also say "watchdog" in
    .board/next_reason before restarting a process that died).
    """
    state = _read("boot.json", {})
    count = state.get("count", 0) + 1
    reason = state.get("next_reason") or "power_on"
    _write("boot.json", {"count": count, "next_reason": None})
    return reason, count


def reset():
    """Reset the board: persist the cause ("soft") and end the process with exit code 75. Never returns."""
    state = _read("boot.json", {})
    state["next_reason"] = "soft"
    _write("boot.json", state)
    sys.exit(_RESET_EXIT)


def unique_id():
    """A stable id of this board as hex text (random once, then kept in .board/)."""
    uid = _read("unique_id")
    if not uid:
        uid = "".join("%02x" % b for b in os.urandom(6))
        _write("unique_id", uid)
    return uid


def wifi_connect(ssid, password, timeout_ms):
    """Join `ssid`; return the IP address. Raises OSError when the network cannot be joined in time.

    The stand-in joins any named network at once, unless .board/wifi_down exists (a test's outage).
    """
    global _wifi
    if not ssid or _exists("wifi_down"):
        _wifi = None
        raise OSError("wifi: cannot join %r" % ssid)
    _wifi = ssid
    return ip()


def wifi_connected():
    return _wifi is not None and not _exists("wifi_down")


def wifi_forget():
    """Leave the network and forget what the radio itself remembers of it."""
    global _wifi
    _wifi = None


def ip():
    return "127.0.0.1" if _wifi else None


def rssi():
    return -50 if _wifi else None


def sync_time():
    """Set the clock from the network where the board needs it: the unix port has the host's clock."""
    return True


def watchdog(timeout_ms):
    """Start the hardware watchdog (no-op here: the emulator restarts a process that dies)."""


def feed():
    pass


def set_board(key):
    """The board key of the configuration (boards/<key>.json), which decides the pins."""


def output(name, value):
    """Drive the board's `name` pin ("led" or "relay") on or off; False when the board has no such pin.

    The emulated board has none; it logs the change instead and says True.
    """
    print("board: %s %s (emulated)" % (name, "on" if value else "off"))
    return True


def sensors():
    """The board's own readings, e.g. {"mcu_temp": 41.5}; none on the emulated board."""
    return {}


def setup_listen(ap_name):
    """A listening TCP socket for the setup page and its URL: 127.0.0.1 on a free port."""
    import socket

    for _ in range(50):
        port = 20000 + int.from_bytes(os.urandom(2), "little") % 40000
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            s.listen(2)
            return s, "http://127.0.0.1:%d/" % port
        except OSError:
            s.close()
    raise OSError("setup: no free port")


def _exists(name):
    try:
        os.stat(_path(name))
        return True
    except OSError:
        return False
