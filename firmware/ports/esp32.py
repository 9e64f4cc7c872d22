"""The ESP32 family (ESP32, -S3, -C3): machine, network and esp32 of the MicroPython ESP32 port.

Boot count in NVS (namespace "mpfleet"), which keeps it across power cycles; TLS by mbedTLS, which
verifies the broker. What both ESP ports share (Wi-Fi, NTP, pins, watchdog, setup AP) is ports/_esp.py.
"""

import esp32
from ports._esp import *  # noqa: F403 -- the functions this port shares with the ESP8266

PLATFORM = "espressif32"
TLS_VERIFIES = True


def boot():
    """(reason, count) of this boot; called once per boot, it counts the boot in NVS."""
    nvs = esp32.NVS("mpfleet")
    try:
        count = nvs.get_i32("boots") + 1
    except OSError:  # not set yet
        count = 1
    nvs.set_i32("boots", count)
    nvs.commit()
    return reset_reason(), count


def ota_partition():
    """esp32.Partition: the app slots of the partition table (firmware/ota_partition.py). Its get_next_update()
    raises OSError(ENOENT) on a build whose table has no OTA slots (MicroPython's default ESP32_GENERIC)."""
    return esp32.Partition


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
