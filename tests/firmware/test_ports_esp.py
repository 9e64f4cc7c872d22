"""ports/esp32.py and ports/esp8266.py (with ports/_esp.py, what they share), compiled, on the unix port with
stand-ins for machine, network and esp32: no board here, so this checks the layers' own logic and that both
offer the whole board interface."""

import json

import pytest

from .micropython import check

# Stand-ins recording what the board layer does with them.
MACHINE = """
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
cause = SOFT_RESET
log = []
def reset_cause(): return cause
def unique_id(): return b"\\x01\\xab\\x02\\xcd"
def reset(): log.append("reset")
class Pin:
    OUT = 1
    def __init__(self, number, mode): self.number = number
    def value(self, v): log.append(("pin", self.number, v))
class WDT:
    def __init__(self, timeout): log.append(("wdt", timeout))
    def feed(self): log.append("feed")
"""
NETWORK = """
STA_IF, AP_IF, AUTH_OPEN = 0, 1, 0
joins = 2  # isconnected() polls before the network is joined
class WLAN:
    def __init__(self, kind): self.kind = kind
    def active(self, on=None): pass
    def isconnected(self):
        global joins
        joins -= 1
        return joins < 0
    def connect(self, ssid, password): pass
    def disconnect(self): pass
    def ifconfig(self): return ("192.168.1.57", "255.255.255.0", "192.168.1.1", "192.168.1.1")
    def status(self, what): return -61
"""
ESP32 = """
store = {}
class NVS:
    def __init__(self, ns): pass
    def get_i32(self, key):
        if key not in store: raise OSError(-1)
        return store[key]
    def set_i32(self, key, value): store[key] = value
    def commit(self): pass
def mcu_temperature(): return 41.5
class Partition:
    RUNNING = 1
"""
INTERFACE = ("PLATFORM TLS_VERIFIES boot reset unique_id wifi_connect wifi_connected wifi_forget ip rssi sync_time "
             "watchdog feed set_pins output sensors setup_listen ota_partition").split()


@pytest.fixture
def stubs(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "machine.py").write_text(MACHINE)
    (stubs / "network.py").write_text(NETWORK)
    (stubs / "esp32.py").write_text(ESP32)
    return stubs


@pytest.mark.parametrize("port", ["esp32", "esp8266"])
def test_each_esp_port_offers_the_whole_board_interface(flash, stubs, port):
    code = f"""
from ports import {port} as b
print(sorted(n for n in {INTERFACE!r} if not hasattr(b, n)))
print(b.boot(), b.boot(), b.unique_id(), b.wifi_connect("home", "pw", 5000), b.ip(), b.rssi(), b.sensors())
"""
    out = check(code, flash, path_before=[stubs]).splitlines()
    assert out[0] == "[]"
    sensors = "{'mcu_temp': 41.5}" if port == "esp32" else "{}"
    assert out[1] == f"('soft', 1) ('soft', 2) 01ab02cd 192.168.1.57 192.168.1.57 -61 {sensors}"


def test_pins_are_the_configs_and_an_active_low_pin_is_inverted(flash, stubs):
    code = """
import machine
from ports import esp8266, esp32
esp8266.set_pins({"led": 2, "led_active_low": True, "relay": 5})  # a d1_mini's, as provisioned
print(esp8266.output("led", True), esp8266.output("relay", True), esp8266.output("fan", True),
      esp8266.output("led_active_low", True))
esp32.set_pins({"relay": 26})
print(esp32.output("led", True), esp32.output("relay", False))
print(machine.log)
"""
    out = check(code, flash, path_before=[stubs]).splitlines()
    assert out[:2] == ["True True False False", "False True"]
    assert out[2] == "[('pin', 2, 0), ('pin', 5, 1), ('pin', 26, 0)]"


def test_the_boot_takes_the_pins_from_config_json(flash, stubs):
    # start.py's boot on the ESP8266 layer: a relay on GPIO13, which no board definition names (no table in the port).
    cfg = {"wifi": {"ssid": "home", "password": "pw"}, "board": "d1_mini", "pins": {"relay": 13},
           "mqtt": {"host": "mpfleet.lan", "uid": "u1", "password": "pw",
                    "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}
    (flash / "config.json").write_text(json.dumps(cfg))
    code = """
import machine, start
from ports import esp8266
cfg = start.run(esp8266, print)[0]
print(cfg["pins"], esp8266.output("relay", True), esp8266.output("led", True), machine.log)
"""
    out = check(code, flash, path_before=[stubs]).splitlines()
    assert out[-1] == "{'relay': 13} True False [('pin', 13, 1)]"


def test_the_watchdog_runs_on_the_esp32_and_is_left_to_the_sdk_on_the_esp8266(flash, stubs):
    code = """
import machine
from ports import esp8266
esp8266.watchdog(30000)
esp8266.feed()
print(machine.log)
from ports import esp32
esp32.watchdog(30000)
esp32.wifi_connect("home", "pw", 5000)  # fed while it waits for the network
print(machine.log)
"""
    out = check(code, flash, path_before=[stubs]).splitlines()
    assert out == ["[]", "[('wdt', 30000), 'feed']"]


def test_the_esp32_has_partition_ota_and_the_esp8266_none(flash, stubs):
    code = """
import esp32
import ota_partition
from ports import esp8266, esp32 as b32
print(b32.ota_partition() is esp32.Partition, esp8266.ota_partition())
for call in (lambda: ota_partition.start(esp8266, 1000), lambda: ota_partition.running(esp8266)):
    try:
        print(call())
    except OSError as e:
        print(e)
"""
    out = check(code, flash, path_before=[stubs]).splitlines()
    assert out == ["True None", "this build has no OTA partitions", "None"]
