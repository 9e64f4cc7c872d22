"""firmware/period.py on the unix port: set_telemetry_period rewrites config.json through a small buffer, in a
heap too small to parse the file, and keeps every other byte."""

import json

import pytest

from .micropython import check, run

CA = "-----BEGIN CERTIFICATE-----\n" + "MIIBszCCAVmgAwIBAgIUQ" * 60 + "\n-----END CERTIFICATE-----\n"

# A stand-in for app.py's App: what the built-ins use of it. Prints the command's result and the period set.
SET_PERIOD = """
import period

class Tele:
    def set_period(self, p):
        print("tele", p)

class App:
    tele = Tele()

print(period.set_telemetry_period(App(), "c1", PAYLOAD))
"""


def config(**telemetry_json):
    return {"wifi": {"ssid": "home", "password": 'p"w}'}, "board": "d1_mini",
            "mqtt": {"host": "mpfleet.lan", "port": 8883, "uid": "u1", "password": "pw", "ca": CA},
            **telemetry_json}


def set_period(flash, payload, **kw):
    return check(f"PAYLOAD = {payload!r}\n" + SET_PERIOD, flash, **kw)


@pytest.mark.parametrize("offset", range(0, 140, 7))  # the key anywhere across the 128-byte reads
def test_the_period_is_replaced_in_place_and_nothing_else_changes(flash, offset):
    cfg = config(telemetry={"period": 60})
    cfg["board"] = "b" * offset
    text = json.dumps(cfg)
    (flash / "config.json").write_text(text)
    assert set_period(flash, {"period": 86400}) == "tele 86400\n{'period': 86400}\n"
    assert (flash / "config.json").read_text() == text.replace('"period": 60}', '"period": 86400}')
    assert not (flash / "config.json.tmp").exists()


def test_the_period_fits_a_heap_where_parsing_the_file_does_not(flash):
    cfg = config(telemetry={"period": 60})
    cfg["mqtt"]["ca"] = CA * 4  # a chain of 4 KB of PEM: parsed, one 4 KB piece of heap
    (flash / "config.json").write_text(json.dumps(cfg))
    assert set_period(flash, {"period": 5}, heapsize="8k") == "tele 5\n{'period': 5}\n"
    assert json.loads((flash / "config.json").read_text())["telemetry"] == {"period": 5}
    parse = run("import json\njson.load(open('config.json'))\nprint('parsed')", flash, heapsize="8k")
    assert "MemoryError" in parse.out, str(parse)  # the file parsed whole would not fit


@pytest.mark.parametrize("telemetry", [{}, {"telemetry": None}, {"telemetry": {}}, {"telemetry": {"period": None}},
                                       {"telemetry": {"extra": 1, "period": 60}}])
def test_a_file_written_otherwise_is_parsed_and_written_whole(flash, telemetry):
    cfg = config(**telemetry)
    (flash / "config.json").write_text(json.dumps(cfg, indent=1))
    assert set_period(flash, {"period": 30}) == "tele 30\n{'period': 30}\n"
    saved = json.loads((flash / "config.json").read_text())
    assert saved["telemetry"]["period"] == 30
    saved.pop("telemetry")
    cfg.pop("telemetry", None)
    assert saved == cfg


@pytest.mark.parametrize("period", [4, 86401, "60", True, None, 7.5])
def test_a_bad_period_is_refused_and_the_file_left_alone(flash, period):
    text = json.dumps(config(telemetry={"period": 60}))
    (flash / "config.json").write_text(text)
    result = run(f"PAYLOAD = {{'period': {period!r}}}\n" + SET_PERIOD, flash)
    assert result.code == 1 and "ValueError: period must be a whole number of seconds from 5 to 86400" in result.out
    assert (flash / "config.json").read_text() == text
