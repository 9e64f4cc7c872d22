"""The ESP8266: machine and network of the MicroPython ESP8266 port.

Its TLS is axTLS: CERT_NONE is the only verify mode and there is no getpeercert, so the broker cannot be
verified (TLS_VERIFIES False: the link warns on every connect and reports tls_verified false). The boot
count is kept in a small file (no NVS). The hardware watchdog is left to the SDK: machine.WDT here has
a fixed timeout of a few seconds, shorter than an RSA-2048 TLS handshake of this chip.
"""

import os
import time

import machine
import network

PLATFORM = "espressif8266"
TLS_VERIFIES = False

# board key -> (led pin, relay pin)
_PINS = {"d1_mini": (2, 5), "esp07s": (2, 5), "nodemcuv2": (2, 5)}
_LED_ACTIVE_LOW = True  # GPIO2 on all three boards
_COUNT_FILE = "boot.cnt"
_board_key = None
_pins = {}


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
    reason = {
        machine.PWRON_RESET: "power_on",
        machine.HARD_RESET: "hard",
        machine.WDT_RESET: "watchdog",
        machine.DEEPSLEEP_RESET: "deep_sleep",
        machine.SOFT_RESET: "soft",
    }.get(machine.reset_cause(), "unknown")
    return reason, count


def reset():
    machine.reset()


def unique_id():
    return "".join("%02x" % b for b in machine.unique_id())


def wifi_connect(ssid, password, timeout_ms):
    """Join `ssid`; return the IP address. Raises OSError when not connected within timeout_ms."""
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(ssid, password)
        start = time.ticks_ms()
        while not sta.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                sta.disconnect()
                raise OSError("wifi: no connection to %r within %d ms" % (ssid, timeout_ms))
            time.sleep_ms(100)
    return sta.ifconfig()[0]


def wifi_connected():
    return network.WLAN(network.STA_IF).isconnected()


def wifi_forget():
    sta = network.WLAN(network.STA_IF)
    sta.disconnect()
    sta.active(False)


def ip():
    sta = network.WLAN(network.STA_IF)
    return sta.ifconfig()[0] if sta.isconnected() else None


def rssi():
    try:
        return network.WLAN(network.STA_IF).status("rssi")
    except (OSError, ValueError):
        return None


def sync_time():
    try:
        import ntptime

        ntptime.settime()
        return True
    except (OSError, OverflowError, ImportError):
        return False


def watchdog(timeout_ms):
    """No-op: see the module's text."""


def feed():
    pass


def set_board(key):
    global _board_key
    _board_key = key


def output(name, value):
    """Drive the board's `name` pin ("led" or "relay"); False when the board has no such pin."""
    pins = _PINS.get(_board_key, (None, None))
    number = pins[0] if name == "led" else pins[1] if name == "relay" else None
    if number is None:
        return False
    pin = _pins.get(name)
    if pin is None:
        pin = _pins[name] = machine.Pin(number, machine.Pin.OUT)
    if name == "led" and _LED_ACTIVE_LOW:
        value = not value
    pin.value(1 if value else 0)
    return True


def sensors():
    """No sensor on the chip (its ADC reads an external pin, not a board value)."""
    return {}


def setup_listen(ap_name):
    """An open access point named ap_name and a listening socket on port 80; (socket, url)."""
    import socket

    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(essid=ap_name, authmode=network.AUTH_OPEN)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo("0.0.0.0", 80)[0][-1])
    s.listen(2)
    return s, "http://%s/" % ap.ifconfig()[0]
