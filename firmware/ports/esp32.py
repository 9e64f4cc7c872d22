"""The ESP32 family (ESP32, -S3, -C3): machine, network and esp32 of the MicroPython ESP32 port.

Boot count in NVS (namespace "mpfleet"), which keeps it across power cycles; TLS by mbedTLS, which
verifies the broker. Pins per board key below (the same as boards/*.json).
"""

import time

import esp32
import machine
import network

PLATFORM = "espressif32"
TLS_VERIFIES = True

# board key -> (led pin, relay pin); None: the board has none
_PINS = {"esp32dev": (None, 26), "esp32-s3-devkitc-1": (48, 4), "esp32-c3-devkitm-1": (8, 4)}
_board_key = None
_wdt = None
_pins = {}


def boot():
    """(reason, count) of this boot; called once per boot, it counts the boot in NVS."""
    nvs = esp32.NVS("mpfleet")
    try:
        count = nvs.get_i32("boots") + 1
    except OSError:  # not set yet
        count = 1
    nvs.set_i32("boots", count)
    nvs.commit()
    cause = machine.reset_cause()
    reason = {
        machine.PWRON_RESET: "power_on",
        machine.HARD_RESET: "hard",
        machine.WDT_RESET: "watchdog",
        machine.DEEPSLEEP_RESET: "deep_sleep",
        machine.SOFT_RESET: "soft",
    }.get(cause, "unknown")
    return reason, count


def reset():
    machine.reset()


def unique_id():
    return "".join("%02x" % b for b in machine.unique_id())


def _sta():
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    return sta


def wifi_connect(ssid, password, timeout_ms):
    """Join `ssid`; return the IP address. Raises OSError when not connected within timeout_ms."""
    sta = _sta()
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
    pin.value(1 if value else 0)
    return True


def sensors():
    """{"mcu_temp": °C} where the chip has a sensor (esp32.mcu_temperature on S2/S3/C3, raw_temperature on ESP32)."""
    try:
        return {"mcu_temp": esp32.mcu_temperature()}
    except AttributeError:
        pass
    try:
        return {"mcu_temp": round((esp32.raw_temperature() - 32) / 1.8, 1)}
    except AttributeError:
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
