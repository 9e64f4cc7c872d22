"""The device list's filters, sort and pages (GET /v1/user/devices), and `meta` merged by PATCH (seed 000's
rules on seed 004's paths: the list's body stays {"data": [...]}, with "meta" added)."""

import sqlite3
from importlib import resources

import pytest
from mpfleet.backend.schemas import TAG_RULE
from mpfleet.backend.storage import Storage
from mpfleet.backend.storage.devices import DeviceFilter

from .fake_device import FakeDevice
from .polling import eventually
from .test_devices import COMPACT_FIELDS

MD5 = "e4b7f01d6b9f3d6fdb0d53f5e8be2d34"


async def names(api, query=""):
    status, body = await api.get("/v1/user/devices" + query)
    assert status == 200, body
    return [d["name"] for d in body["data"]], body["meta"]


async def register_all(api, specs):
    """Register (name, platform, board, description) in order; returns {name: uid}."""
    uids = {}
    for name, platform, board, description in specs:
        uids[name] = (await api.register(name=name, platform=platform, board=board, description=description))["uid"]
    return uids


FLEET = [
    ("Kitchen sensor", "espressif8266", "esp07s", "near the back door"),
    ("attic", "espressif32", "esp32dev", None),
    ("Boiler", "espressif32", "esp32-c3-devkitm-1", "basement, kitchen side"),
    ("garage 100%", "unix", "unix", "an_underscore"),
    ("cellar", "espressif8266", "d1_mini", None),
]


async def test_the_seed_list_gets_a_meta_and_pages(api):
    await register_all(api, FLEET)
    status, body = await api.get("/v1/user/devices")
    assert status == 200 and list(body) == ["data", "meta"]
    assert [list(d) for d in body["data"]] == [COMPACT_FIELDS] * 5
    assert [d["name"] for d in body["data"]] == [spec[0] for spec in FLEET]  # registration order, as before
    assert body["meta"] == {"total": 5, "limit": 50, "offset": 0}
    assert await names(api, "?limit=2") == (["Kitchen sensor", "attic"], {"total": 5, "limit": 2, "offset": 0})
    assert await names(api, "?limit=2&offset=2") == (["Boiler", "garage 100%"], {"total": 5, "limit": 2, "offset": 2})
    assert await names(api, "?limit=2&offset=4") == (["cellar"], {"total": 5, "limit": 2, "offset": 4})
    assert await names(api, "?offset=9") == ([], {"total": 5, "limit": 50, "offset": 9})
    assert await names(api, "?offset=9223372036854775807&limit=100") == (
        [], {"total": 5, "limit": 100, "offset": 9223372036854775807})


async def test_filters_by_platform_board_status_and_search(api):
    uids = await register_all(api, FLEET)
    assert (await api.patch(f"/v1/user/devices/{uids['cellar']}", json={"enabled": False}))[0] == 200
    assert await names(api, "?platform=espressif32") == (["attic", "Boiler"], {"total": 2, "limit": 50, "offset": 0})
    assert (await names(api, "?board=esp07s"))[0] == ["Kitchen sensor"]
    assert (await names(api, "?board=esp07s&platform=espressif32"))[0] == []  # a board of another platform
    assert (await names(api, "?status=disabled"))[0] == ["cellar"]
    assert (await names(api, "?status=pending&platform=espressif8266"))[0] == ["Kitchen sensor"]
    assert (await names(api, "?online=false&limit=1"))[1]["total"] == 5
    assert (await names(api, "?online=true"))[0] == []
    # Name and description, any case; LIKE's wildcards are only themselves.
    assert (await names(api, "?search=KITCHEN"))[0] == ["Kitchen sensor", "Boiler"]
    assert (await names(api, "?search=0%25"))[0] == ["garage 100%"]
    assert (await names(api, "?search=ga_age"))[0] == []  # `_` as a wildcard would match garage
    assert (await names(api, "?search=_"))[0] == ["garage 100%"]
    assert (await names(api, "?search="))[1]["total"] == 5
    assert (await names(api, "?search=kitchen&platform=espressif32&limit=1"))[1]["total"] == 1
    assert (await api.patch(f"/v1/user/devices/{uids['cellar']}", json={"enabled": True}))[0] == 200
    assert (await names(api, "?status=disabled"))[0] == []
    assert (await names(api, "?status=pending&board=d1_mini"))[0] == ["cellar"]


async def test_a_database_of_before_the_list_gets_every_status_right(tmp_path):
    """Migration 006 fills the new status column of the devices there are (a trigger keeps it afterwards)."""
    data = tmp_path / "var"
    data.mkdir()
    db = sqlite3.connect(data / "mpfleet.db")
    folder = resources.files("mpfleet.backend.storage") / "migrations"
    for number in range(1, 6):
        db.executescript(next(folder.glob(f"{number:03d}_*.sql")).read_text())
    db.execute("INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 'x')")
    rows = [("pending", 1, 0, None), ("disabled", 0, 0, "2026-01-01"), ("online", 1, 1, "2026-01-01"),
            ("offline", 1, 0, "2026-01-01")]
    for name, enabled, online, seen in rows:
        db.execute("INSERT INTO devices (uid, user_id, name, platform_key, board_key, mqtt_password_hash, enabled,"
                   " is_online, first_seen_at, created_at) VALUES (?, 1, ?, 'unix', 'unix', 'h', ?, ?, ?, 'x')",
                   (f"unix_{name}", name, enabled, online, seen))
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    storage = Storage(data)
    await storage.open()
    try:
        for name, *_ in rows:
            devices, total = await storage.devices.list(1, DeviceFilter(status=name))
            assert ([d.name for d in devices], total) == ([name], 1)
            assert devices[0].status == name
    finally:
        await storage.close()


async def test_sorts_by_name_last_seen_and_registration(api):
    await register_all(api, FLEET)
    by_name = ["attic", "Boiler", "cellar", "garage 100%", "Kitchen sensor"]  # letters in any case
    assert (await names(api, "?sort=name"))[0] == by_name
    assert (await names(api, "?sort=-name"))[0] == by_name[::-1]
    assert (await names(api, "?sort=-created_at"))[0] == [spec[0] for spec in FLEET][::-1]
    assert (await names(api, "?sort=-name&limit=2&offset=1&platform=espressif32"))[0] == ["attic"]


async def test_online_and_firmware_filters_follow_what_the_device_reports(api):
    await register_all(api, FLEET)
    online = {}
    try:
        for name, version, md5 in (("online one", "1.0.3", MD5), ("online two", "2.0", "0" * 32)):
            registered = await api.register(name=name, platform="unix", board="unix")
            device = FakeDevice(registered["mqtt"], registered["port"], status={"fw": {"version": version, "md5": md5}})
            online[name] = device
            await device.connect()
            await eventually(lambda: _total(api, "?status=online", len(online)))
        assert (await names(api, "?online=true"))[0] == ["online one", "online two"]
        assert (await names(api, "?online=false"))[1]["total"] == 5
        assert (await names(api, f"?firmware={MD5.upper()}"))[0] == ["online one"]
        assert (await names(api, "?firmware=2.0&online=true"))[0] == ["online two"]
        assert (await names(api, "?firmware=2.0&platform=espressif32"))[0] == []
        assert (await names(api, "?sort=-last_seen_at&limit=2"))[0] == ["online two", "online one"]
        assert (await names(api, "?sort=last_seen_at"))[0][-2:] == ["online one", "online two"]  # never seen first
        await online["online one"].close()
        await eventually(lambda: _total(api, "?status=offline", 1))
        assert (await names(api, f"?firmware={MD5}&status=offline"))[0] == ["online one"]
    finally:
        for device in online.values():
            await device.close()


async def _total(api, query, expected):
    return (await names(api, query))[1]["total"] == expected


@pytest.mark.parametrize("query, parameter, message", [
    ("limit=0", "limit", "The limit parameter must be an integer from 1 to 100."),
    ("limit=101", "limit", "The limit parameter must be an integer from 1 to 100."),
    ("limit=ten", "limit", "The limit parameter must be an integer from 1 to 100."),
    ("offset=-1", "offset", "The offset parameter must be an integer from 0 to 9223372036854775807."),
    ("offset=9223372036854775808", "offset", "The offset parameter must be an integer from 0 to 9223372036854775807."),
    ("sort=uid", "sort", "The selected sort is invalid."),
    ("sort=--name", "sort", "The selected sort is invalid."),
    ("status=active", "status", "The selected status is invalid."),
    ("online=yes", "online", "The online parameter must be true or false."),
    ("platform=avr", "platform", "The selected platform is invalid."),
    ("board=uno", "board", "The selected board is invalid."),
    ("firmware=", "firmware", "The firmware parameter must be an md5 or a version of 1 to 64 characters."),
    ("firmware=" + "v" * 65, "firmware", "The firmware parameter must be an md5 or a version of 1 to 64 characters."),
    ("search=" + "s" * 101, "search", "The search parameter must not be greater than 100 characters."),
    ("tag=Kitchen", "tag", f"The tag parameter must be {TAG_RULE}."),
    ("tag=-kitchen", "tag", f"The tag parameter must be {TAG_RULE}."),
    ("tag=", "tag", f"The tag parameter must be {TAG_RULE}."),
    ("tag=" + "t" * 33, "tag", f"The tag parameter must be {TAG_RULE}."),
    ("tag=a&tag=b", "tag", "The tag parameter must be given once."),
    ("group=0", "group", "The group parameter must be an integer from 1 to 9223372036854775807."),
    ("group=%205", "group", "The group parameter must be an integer from 1 to 9223372036854775807."),
    ("group=9223372036854775808", "group", "The group parameter must be an integer from 1 to 9223372036854775807."),
    ("group=1", "group", "The selected group is invalid."),  # the user has none
    ("platfrom=unix", "platfrom", "The platfrom parameter is not known."),
    ("status=online&status=offline", "status", "The status parameter must be given once."),
])
async def test_a_bad_query_is_422_naming_the_parameter(api, device, query, parameter, message):
    status, body = await api.get("/v1/user/devices?" + query)
    assert (status, body) == (422, {"message": message, "errors": {parameter: [message]}})


async def test_every_bad_parameter_is_named_at_once(api):
    status, body = await api.get("/v1/user/devices?status=x&sort=y&group=two")
    assert status == 422 and set(body["errors"]) == {"status", "sort", "group"}
    assert body["message"].endswith("(and 2 more errors)")


async def test_another_users_devices_are_neither_listed_nor_counted(api, other_api):
    await register_all(api, FLEET)
    theirs = await other_api.register(name="Kitchen of bob", platform="espressif32", board="esp32dev")
    assert await names(other_api, "?search=kitchen") == (["Kitchen of bob"], {"total": 1, "limit": 50, "offset": 0})
    assert (await names(other_api, "?limit=1&offset=1"))[1]["total"] == 1
    assert (await names(api, "?platform=espressif32&limit=1"))[1]["total"] == 2
    assert theirs["uid"] not in str(await api.get("/v1/user/devices?search=kitchen"))


# --- meta, merged by PATCH -------------------------------------------------------------------

async def test_patch_merges_meta_and_null_removes_a_key(api, device):
    path = f"/v1/user/devices/{device['uid']}"
    status, body = await api.patch(path, json={"meta": {"location": "living_room", "model": "DHT22",
                                                        "calibration": {"offset": 0.5, "gain": 1}}})
    assert status == 200
    port = body["data"]["port"]
    assert body["data"]["meta"] == {"mqtt_port": port, "location": "living_room", "model": "DHT22",
                                    "calibration": {"offset": 0.5, "gain": 1}}
    status, body = await api.patch(path, json={"name": "Sensor 01", "meta": {
        "model": None, "last_maintenance": "2025-11-05", "calibration": {"gain": None, "scale": [1, 2]}}})
    assert status == 200 and body["data"]["name"] == "Sensor 01"
    expected = {"mqtt_port": port, "location": "living_room", "last_maintenance": "2025-11-05",
                "calibration": {"offset": 0.5, "scale": [1, 2]}}
    assert body["data"]["meta"] == expected
    assert (await api.patch(path, json={"meta": {}}))[1]["data"]["meta"] == expected
    assert (await api.get(path))[1]["data"]["meta"] == expected


@pytest.mark.parametrize("meta, field, message", [
    ({"fw": {"md5": MD5}}, "meta.fw", "The meta.fw key is reported by the device and cannot be changed."),
    ({"cmd_queue": 32}, "meta.cmd_queue", "The meta.cmd_queue key is reported by the device and cannot be changed."),
    ({"mqtt_port": 1}, "meta.mqtt_port", "The meta.mqtt_port key is reported by the device and cannot be changed."),
    ({"boot": None}, "meta.boot", "The meta.boot key is reported by the device and cannot be changed."),
    ("room 4", "meta", "The meta field must be a JSON object."),
    (None, "meta", "The meta field must be a JSON object."),
    ({f"k{i}": i for i in range(33)}, "meta", "The meta field must not have more than 32 keys."),
    ({"a b": 1}, "meta", "The meta field's keys must be 1 to 64 letters, digits, dots, dashes or underscores."),
    ({"": 1}, "meta", "The meta field's keys must be 1 to 64 letters, digits, dots, dashes or underscores."),
    ({"k" * 65: 1}, "meta", "The meta field's keys must be 1 to 64 letters, digits, dots, dashes or underscores."),
    ({"big": "x" * 4090}, "meta", "The meta field must not be larger than 4096 bytes as JSON, what is stored counted."),
])
async def test_a_meta_that_breaks_a_rule_is_422_and_nothing_changes(api, device, meta, field, message):
    path = f"/v1/user/devices/{device['uid']}"
    assert (await api.patch(path, json={"meta": {"keep": 1}}))[0] == 200
    status, body = await api.patch(path, json={"name": "renamed", "meta": meta})
    assert (status, body) == (422, {"message": message, "errors": {field: [message]}})
    _, detail = await api.get(path)
    assert detail["data"]["name"] == "test" and detail["data"]["meta"] == {"mqtt_port": device["port"], "keep": 1}


async def test_meta_limits_count_what_is_stored_already(api, device):
    path = f"/v1/user/devices/{device['uid']}"
    assert (await api.patch(path, json={"meta": {f"k{i}": "v" * 100 for i in range(30)}}))[0] == 200
    status, body = await api.patch(path, json={"meta": {"k30": 1, "k31": 2, "k32": 3}})
    assert status == 422 and body["errors"] == {"meta": [
        "The meta field must not have more than 32 keys, those stored already counted."]}
    status, body = await api.patch(path, json={"meta": {"k30": "v" * 1000}})
    assert status == 422 and body["errors"]["meta"][0].startswith("The meta field must not be larger than 4096")
    status, body = await api.patch(path, json={"meta": {"k0": None, "k1": None, "k30": 1, "k31": 2, "k32": 3}})
    assert status == 200 and len(body["data"]["meta"]) == 1 + 31  # mqtt_port and the maker's 31 keys


async def test_meta_deeper_than_the_json_rule_is_refused(api, device):
    path = f"/v1/user/devices/{device['uid']}"
    deep = 1
    for _ in range(32):
        deep = [deep]
    status, body = await api.patch(path, json={"meta": {"deep": deep}})  # meta is level 1, its 32 lists 2 to 33
    assert status == 422 and body["errors"] == {"meta": ["The meta field must not be nested deeper than 32 levels."]}
    status, body = await api.patch(path, json={"meta": {"deep": deep[0]}})
    assert status == 200 and body["data"]["meta"]["deep"] == deep[0]


async def test_the_devices_own_keys_and_the_makers_live_side_by_side(api):
    registered = await api.register(name="board", platform="unix", board="unix")
    path = f"/v1/user/devices/{registered['uid']}"
    assert (await api.patch(path, json={"meta": {"room": "kitchen"}}))[0] == 200
    device = FakeDevice(registered["mqtt"], registered["port"], status={"fw": {"version": "1.0", "md5": MD5}})
    await device.connect()
    try:
        await eventually(lambda: _total(api, "?status=online", 1))
        meta = (await api.get(path))[1]["data"]["meta"]
        assert meta["room"] == "kitchen" and meta["fw"] == {"version": "1.0", "md5": MD5}
        status, body = await api.patch(path, json={"meta": {"room": None, "free_mem": 0}})
        assert status == 422 and list(body["errors"]) == ["meta.free_mem"]
        assert (await api.patch(path, json={"meta": {"room": None}}))[1]["data"]["meta"]["fw"]["md5"] == MD5
    finally:
        await device.close()


async def test_another_users_device_cannot_be_patched(api, other_api, device):
    path = f"/v1/user/devices/{device['uid']}"
    assert (await api.patch(path, json={"meta": {"room": "kitchen"}}))[0] == 200
    status, body = await other_api.patch(path, json={"meta": {"room": None, "owner": "bob"}})
    assert (status, body) == (404, {"message": "Device not found."})
    meta = (await api.get(path))[1]["data"]["meta"]
    assert meta["room"] == "kitchen" and "owner" not in meta
