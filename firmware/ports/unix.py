"""The emulated board: the MicroPython unix port, its flash a directory (the working directory).

What a real board keeps across a reset lives in `.board/` of the flash, one small text file each: `boots`
(the boot count), `reason` (the cause of the next boot), `unique_id`, and an ESP32's OTA slots and otadata
(ports/unix_partition.py, the stand-in for esp32.Partition). reset() ends the process with exit code 75; the
emulator (tools/emulate.py, or the tests' harness) starts it again, as a board would restart.
Wi-Fi is a stand-in, "connected" whenever the configuration names a network; pins and the watchdog only log.

Kept small on purpose: it is a stand-in for the ESP layers, and all of it stays in the heap (no json,
one helper for every file, one no-op for every function that has nothing to do here).
"""

import os
import sys

PLATFORM = "unix"
TLS_VERIFIES = True  # mbedTLS: CERT_REQUIRED and the server name are checked

_wifi = None  # the ssid "joined", or None
_slot = None  # the OTA slot this boot runs, as the bootloader chose it (boot(), ports/unix_partition.py); None: ota_0


def _file(name, text=None):
    """The text of .board/`name` ("" when missing); with `text`, write it (atomically) instead."""
    path = ".board/" + name
    try:
        if text is None:
            with open(path) as f:
                return f.read()
        try:
            os.mkdir(".board")
        except OSError:
            pass
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
    except OSError:
        if text is not None:
            raise
    return ""


def boot():
    """(reason, count) of this boot; called once per boot, it counts the boot.

    reason: "soft" after reset(), else "power_on" (the emulator may also write "watchdog" to
    .board/reason before restarting a process that died).
    """
    try:
        count = int(_file("boots")) + 1
    except ValueError:  # missing or damaged
        count = 1
    reason = _file("reason") or "power_on"
    _file("boots", str(count))
    _file("reason", "")
    if _file("otadata"):
        ota_partition(True)  # what an ESP32's bootloader does at a reset: otadata updated, _slot chosen
    return reason, count


def ota_partition(boot=False):
    """The class of the board's app partitions, esp32.Partition's interface (firmware/ota_partition.py); with `boot`
    (boot() alone), after the bootloader's step of a reset.

    Its module, ports/unix_partition.py, is loaded for the caller alone (its load()): none of it stays in the heap
    of a boot that never calls this, and its 5.4 KB go back once the caller drops the class.
    """
    from ports import unix_partition

    return unix_partition.load(boot)


def reset():
    """Reset the board: persist the cause ("soft") and end the process with exit code 75. Never returns."""
    _file("reason", "soft")
    sys.exit(75)  # the emulator restarts a process that exits with this code


def unique_id():
    """A stable id of this board as hex text (random once, then kept in .board/)."""
    uid = _file("unique_id")
    if not uid:
        uid = "".join("%02x" % b for b in os.urandom(6))
        _file("unique_id", uid)
    return uid


def wifi_connect(ssid, password, timeout_ms):
    """Join `ssid`; return the IP address. Raises OSError when the network cannot be joined in time.

    The stand-in joins any named network at once.
    """
    global _wifi
    if not ssid:
        raise OSError("wifi: cannot join %r" % ssid)
    _wifi = ssid
    return ip()


def wifi_connected():
    return _wifi is not None


def wifi_forget():
    """Leave the network and forget what the radio itself remembers of it."""
    global _wifi
    _wifi = None


def ip():
    return "127.0.0.1" if _wifi else None


def rssi():
    return -50 if _wifi else None


def _done(*_):
    return True


# Nothing to do on the emulated board: the host's clock is set (sync_time() says True), the emulator restarts a
# process that dies (watchdog(timeout_ms), feed()), and there are no pins (set_pins(pins), config.json `pins`).
sync_time = watchdog = feed = set_pins = _done


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
    """A listening TCP socket for the setup page and its URL: 127.0.0.1 on a free port (ports/unix_setup.py, loaded
    in setup mode only: its code held 256 bytes of heap at every boot here)."""
    from ports import unix_setup

    return unix_setup.listen(ap_name)
