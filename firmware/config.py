"""The board's configuration: config.json in flash, checked, with defaults applied.

    {"wifi": {"ssid": "home", "password": "secret"},
     "mqtt": {"host": "mpfleet.lan", "port": 8883, "uid": "espressif8266_G8VfdNhn7jqN",
              "password": "...", "ca": "-----BEGIN CERTIFICATE-----\\n..."},
     "board": "d1_mini",
     "pins": {"led": 2, "led_active_low": true, "relay": 5}}

wifi.ssid: 1-32 characters; wifi.password: 0-64 (empty for an open network).
mqtt.host, mqtt.uid, mqtt.password: non-empty text; mqtt.port: 1-65535, default 8883.
mqtt.ca: the PEM of the broker's CA certificate.
board: the board key of boards/ (e.g. "d1_mini"), 1-32 characters.
pins: the board's pins by name, an object, absent when the board has none; `mpfleet provision` copies them from the
board's definition (boards/<key>.json), and the ESP ports drive them (ports/_esp.py output()).
A default also replaces null. Keys not listed here are kept as they are. The file may hold at most 8192 bytes.
What commands change (the telemetry period) is not here but in settings.json (settings.py): a command never parses
this file, which the CA's PEM text makes large.
"""

import json
import os

from micropython import const

_MAX_SIZE = const(8192)
_PORT = const(8883)
_S_IFDIR = const(0x4000)


class ConfigError(Exception):
    """The configuration is missing, unreadable or invalid; str() of it says which and why."""


def load(path="config.json"):
    """The configuration in `path` as a dict, checked, with defaults applied.

    Raises ConfigError when the file is missing, too large, not JSON, or fails validate().
    """
    # save() renames the new file over the old one. On FAT that is remove, then rename: a power cut
    # between the two leaves the complete new file under its temporary name only.
    for name in (path, path + ".tmp"):
        try:
            st = os.stat(name)
        except OSError:
            continue
        return _read(name, st)
    raise ConfigError(path + ": missing")


def _read(path, st):
    if st[0] & _S_IFDIR:
        raise ConfigError(path + ": not a file")
    if st[6] > _MAX_SIZE:
        raise ConfigError(path + ": larger than %d bytes" % _MAX_SIZE)
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise ConfigError(path + ": cannot read (%s)" % e)
    except ValueError:  # UnicodeError included
        raise ConfigError(path + ": not valid JSON")
    except MemoryError:
        raise ConfigError(path + ": too large to parse")
    try:
        return validate(cfg)
    except ConfigError as e:
        raise ConfigError(path + ": " + str(e))


def save(cfg, path="config.json"):
    """Check `cfg` and write it to `path` atomically: a new file, then renamed over the old one.

    Raises ConfigError when cfg is invalid (nothing is written), OSError when the flash write fails
    (the old file stays as it was). cfg must hold JSON values only: MicroPython's json writes any
    other object as its repr, which load() would then refuse.
    """
    validate(cfg)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(cfg, f)
    except OSError:
        _remove(tmp)
        raise
    os.rename(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def validate(cfg):
    """Apply the defaults to `cfg` in place and check every field; return cfg or raise ConfigError."""
    if not isinstance(cfg, dict):
        raise ConfigError("not a JSON object")
    wifi = _section(cfg, "wifi")
    _text(wifi, "wifi.", "ssid", 1, 32)
    _text(wifi, "wifi.", "password", 0, 64)
    mqtt = _section(cfg, "mqtt")
    _text(mqtt, "mqtt.", "host", 1, 253)
    _number(mqtt, "mqtt.", "port", _PORT, 1, 65535)
    _text(mqtt, "mqtt.", "uid", 1, 64)
    _text(mqtt, "mqtt.", "password", 1, 128)
    if "-----BEGIN CERTIFICATE-----" not in _text(mqtt, "mqtt.", "ca", 1, _MAX_SIZE):
        raise ConfigError("mqtt.ca: not a PEM certificate")
    _text(cfg, "", "board", 1, 32)
    if cfg.get("pins") is not None:
        _section(cfg, "pins")
    return cfg


def _section(cfg, key):
    value = cfg.get(key)
    if not isinstance(value, dict):
        raise ConfigError(key + (": missing" if value is None else ": must be an object"))
    return value


def _text(section, prefix, key, least, most):
    value = section.get(key)
    if value is None:
        raise ConfigError(prefix + key + ": missing")
    if not isinstance(value, str) or not least <= len(value) <= most:
        raise ConfigError(prefix + key + ": must be text of %d to %d characters" % (least, most))
    return value


def _number(section, prefix, key, default, least, most):
    value = section.get(key)
    if value is None:
        section[key] = value = default
    # bool is an int in Python; true is no port number.
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise ConfigError(prefix + key + ": must be a whole number from %d to %d" % (least, most))
    return value
