"""firmware/config.py on the unix port: load, validation, defaults, atomic save, and corrupt flash."""

import copy
import json
import random

from .micropython import check

CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"
VALID = {
    "wifi": {"ssid": "home", "password": "secret"},
    "mqtt": {"host": "mpfleet.lan", "uid": "espressif8266_G8VfdNhn7jqN", "password": "pw", "ca": CA},
    "board": "d1_mini",
}
WITH_DEFAULTS = copy.deepcopy(VALID)
WITH_DEFAULTS["mqtt"]["port"] = 8883

# Loads each file named in NAMES; prints one JSON line: name -> {"ok": config} or {"error": text}.
# Any other exception is a traceback and a non-zero exit.
LOAD_EACH = """
import config, json
out = {}
for name in NAMES:
    try:
        out[name] = {"ok": config.load(name)}
    except config.ConfigError as e:
        out[name] = {"error": str(e)}
print(json.dumps(out))
"""


def load_each(flash, names):
    return json.loads(check(f"NAMES = {list(names)!r}\n" + LOAD_EACH, flash))


def load(flash, name="config.json"):
    return load_each(flash, [name])[name]


def write(flash, cfg, name="config.json"):
    (flash / name).write_text(json.dumps(cfg))


def test_load_applies_defaults_and_keeps_unknown_keys(flash):
    write(flash, {**VALID, "future": {"x": [1, 2]}})
    assert load(flash) == {"ok": {**WITH_DEFAULTS, "future": {"x": [1, 2]}}}


def test_load_keeps_given_values(flash):
    cfg = copy.deepcopy(VALID)
    cfg["mqtt"]["port"] = 1883
    cfg["pins"] = {"led": 2, "led_active_low": True, "relay": 5}
    cfg["wifi"]["password"] = ""  # an open network
    write(flash, cfg)
    assert load(flash) == {"ok": cfg}


def test_missing_file(flash):
    assert load(flash) == {"error": "config.json: missing"}


def invalid(path, value):
    """VALID with the field at `path` (dotted) set to `value`, or removed when value is ...."""
    cfg = copy.deepcopy(VALID)
    *parents, key = path.split(".")
    section = cfg
    for parent in parents:
        section = section.setdefault(parent, {})
    if value is ...:
        del section[key]
    else:
        section[key] = value
    return cfg


INVALID = {
    "no wifi": (invalid("wifi", ...), "wifi: missing"),
    "wifi not object": (invalid("wifi", "home"), "wifi: must be an object"),
    "no ssid": (invalid("wifi.ssid", ...), "wifi.ssid: missing"),
    "empty ssid": (invalid("wifi.ssid", ""), "wifi.ssid: must be text of 1 to 32 characters"),
    "long ssid": (invalid("wifi.ssid", "x" * 33), "wifi.ssid: must be text of 1 to 32 characters"),
    "ssid number": (invalid("wifi.ssid", 5), "wifi.ssid: must be text of 1 to 32 characters"),
    "no wifi password": (invalid("wifi.password", ...), "wifi.password: missing"),
    "no mqtt": (invalid("mqtt", ...), "mqtt: missing"),
    "mqtt list": (invalid("mqtt", []), "mqtt: must be an object"),
    "no host": (invalid("mqtt.host", ...), "mqtt.host: missing"),
    "port 0": (invalid("mqtt.port", 0), "mqtt.port: must be a whole number from 1 to 65535"),
    "port 65536": (invalid("mqtt.port", 65536), "mqtt.port: must be a whole number from 1 to 65535"),
    "port text": (invalid("mqtt.port", "8883"), "mqtt.port: must be a whole number from 1 to 65535"),
    "port bool": (invalid("mqtt.port", True), "mqtt.port: must be a whole number from 1 to 65535"),
    "port float": (invalid("mqtt.port", 8883.0), "mqtt.port: must be a whole number from 1 to 65535"),
    "no uid": (invalid("mqtt.uid", ...), "mqtt.uid: missing"),
    "empty password": (invalid("mqtt.password", ""), "mqtt.password: must be text of 1 to 128 characters"),
    "no ca": (invalid("mqtt.ca", ...), "mqtt.ca: missing"),
    "ca not pem": (invalid("mqtt.ca", "MIIB..."), "mqtt.ca: not a PEM certificate"),
    "pins not object": (invalid("pins", [2, 5]), "pins: must be an object"),
    "no board": (invalid("board", ...), "board: missing"),
    "board object": (invalid("board", {"key": "d1_mini"}), "board: must be text of 1 to 32 characters"),
    "top-level list": ([VALID], "not a JSON object"),
}


def test_invalid_fields_name_the_field(flash):
    for i, (cfg, _) in enumerate(INVALID.values()):
        write(flash, cfg, f"case{i}.json")
    results = load_each(flash, [f"case{i}.json" for i in range(len(INVALID))])
    got = {case: results[f"case{i}.json"] for i, case in enumerate(INVALID)}
    assert got == {case: {"error": f"case{i}.json: {reason}"} for i, (case, (_, reason)) in enumerate(INVALID.items())}


def test_corrupt_files_raise_only_config_error(flash):
    good = json.dumps(VALID).encode()
    rng = random.Random(5)
    contents = [good[:n] for n in range(len(good))]  # a write cut short at every byte
    for _ in range(60):
        flipped = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        contents.append(bytes(flipped))
    contents += [
        b"\xff\xfe\x00garbage\x80\x81",
        b'{"wifi": "\xc3\x28"}',  # invalid UTF-8
        b"null",
        b"42",
        b'"text"',
        b"[" * 3000,
        b"{" * 3000,
        b'{"a":' * 1000,
        b" " * 9000,  # over the size limit
    ]
    names = []
    for i, data in enumerate(contents):
        (flash / f"c{i}.json").write_bytes(data)
        names.append(f"c{i}.json")
    (flash / "dir.json").mkdir()
    names.append("dir.json")

    results = load_each(flash, names)
    errors = {name: result["error"] for name, result in results.items() if "error" in result}
    # A flipped byte may leave a valid config (e.g. inside the CA text); everything else is an error.
    assert len(errors) >= len(names) - 60
    assert errors["c0.json"] == "c0.json: not valid JSON"
    assert errors[f"c{len(good) - 1}.json"] == f"c{len(good) - 1}.json: not valid JSON"
    assert errors[f"c{len(contents) - 1}.json"] == f"c{len(contents) - 1}.json: larger than 8192 bytes"
    assert errors["dir.json"] == "dir.json: not a file"


SAVE_AND_LOAD = """
import config, os
cfg = {cfg!r}
config.save(cfg)
print(sorted(os.listdir()))
print(config.load() == cfg)
"""


def test_save_replaces_the_file_and_leaves_no_temporary(flash):
    write(flash, {"old": True})
    cfg = copy.deepcopy(VALID)
    cfg["pins"] = {"relay": 5}
    out = check(SAVE_AND_LOAD.format(cfg=cfg), flash)
    assert "config.json.tmp" not in out.splitlines()[0]
    assert "'config.json'" in out.splitlines()[0]
    assert out.splitlines()[1] == "True"
    saved = json.loads((flash / "config.json").read_text())
    assert saved["pins"] == {"relay": 5} and saved["mqtt"]["port"] == 8883


def test_save_refuses_an_invalid_config_and_keeps_the_old_one(flash):
    write(flash, VALID)
    before = (flash / "config.json").read_bytes()
    code = f"""
import config, os
try:
    config.save({invalid("mqtt.port", 0)!r})
except config.ConfigError as e:
    print(e)
print(sorted(os.listdir()))
"""
    out = check(code, flash).splitlines()
    assert out[0] == "mqtt.port: must be a whole number from 1 to 65535"
    assert "config.json.tmp" not in out[1]
    assert (flash / "config.json").read_bytes() == before


def test_a_failed_write_keeps_the_old_file(flash):
    write(flash, VALID)
    before = (flash / "config.json").read_bytes()
    code = f"""
import config, os

class FullFlash:  # json.dump that fills the flash half way through
    @staticmethod
    def dump(obj, f):
        f.write('{{"wifi": {{')
        raise OSError(28)

config.json = FullFlash
try:
    config.save({VALID!r})
except OSError as e:
    print("OSError", e.errno)
print(sorted(os.listdir()))
"""
    out = check(code, flash).splitlines()
    assert out[0] == "OSError 28"
    assert "config.json.tmp" not in out[1]
    assert (flash / "config.json").read_bytes() == before


def test_load_uses_the_new_file_when_a_replace_was_cut_short(flash):
    # FAT renames over a file by removing it first; a power cut between the two leaves only the new one.
    write(flash, VALID, "config.json.tmp")
    assert load(flash) == {"ok": WITH_DEFAULTS}


def test_unix_port_renames_over_an_existing_file(flash):
    code = """
import os
open("a", "w").write("new")
open("b", "w").write("old")
os.rename("a", "b")
print(open("b").read(), "a" in os.listdir())
"""
    assert check(code, flash) == "new False\n"
