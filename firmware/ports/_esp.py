"""What the ESP32 and ESP8266 board layers share: machine and network of both MicroPython ports.

ports/esp32.py and ports/esp8266.py import these functions as their own (see ports/unix.py for what each
does); each port keeps only what differs: PLATFORM, TLS_VERIFIES, boot() (where the boot count lives),
sensors(), and, on the ESP8266, watchdog().
"""

import time

import machine
import network

_board_pins = {}  # config.json `pins` (set_pins)
_wdt = None
_pins = {}  # name -> machine.Pin, made at first use


def reset_reason():
    """The cause of this boot as docs/protocol.md names it (status' boot.reason)."""
    return {
        machine.PWRON_RESET: "power_on",
        machine.HARD_RESET: "hard",
        machine.WDT_RESET: "watchdog",
        machine.DEEPSLEEP_RESET: "deep_sleep",
        machine.SOFT_RESET: "soft",
    }.get(machine.reset_cause(), "unknown")


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
            feed()
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
    """Set the clock by NTP (the RTC is unset after power-on); False when it failed."""
    try:
        import ntptime

        ntptime.settime()
        return True
    except (OSError, OverflowError, ImportError):
        return False


def watchdog(timeout_ms):
    """Start the hardware watchdog: feed() at least every timeout_ms or the board resets."""
    global _wdt
    _wdt = machine.WDT(timeout=timeout_ms)


def feed():
    if _wdt:
        _wdt.feed()


def set_pins(pins):
    """The board's pins: config.json `pins` (None: none), which `mpfleet provision` copies from the board's
    definition (boards/<key>.json), e.g. {"led": 2, "led_active_low": true, "relay": 5}."""
    global _board_pins
    _board_pins = pins or {}
    _pins.clear()  # Pin objects of other numbers


def output(name, value):
    """Drive the board's `name` pin (e.g. "led", "relay"), inverted when `<name>_active_low` is true; False when the
    board has no such pin."""
    number = _board_pins.get(name)
    if type(number) is not int:  # none (or not a pin number: true is a bool)
        return False
    pin = _pins.get(name)
    if pin is None:
        pin = _pins[name] = machine.Pin(number, machine.Pin.OUT)
    if _board_pins.get(name + "_active_low"):
        value = not value
    pin.value(1 if value else 0)
    return True


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
