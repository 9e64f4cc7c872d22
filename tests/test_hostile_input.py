"""Nothing a client sends can poison what is stored (backend/jsonvalues.py): every JSON value that
enters, REST bodies and button payloads and device messages alike, keeps one rule or is refused, and
every list and detail of the user answers 200 afterwards, rows stored before the rule included."""

import io
import json
import sqlite3

import aiohttp
import pytest
from mpfleet.backend import keys, schemas

from .fake_device import FakeDevice
from .polling import eventually, final_command

DEEP_300 = "[" * 300 + "]" * 300  # 600 bytes: fits a 4 KB payload and a 1 KB status
# JSON text of a hostile value → the status a REST body holding it gets: 422 for JSON that breaks the
# rule, 400 for text that is no JSON to the server (orjson refuses it). The tests put each one a level
# down in a field ({"n": value}), so "33 levels" makes the field 33 levels deep, one too many.
HOSTILE = {
    "2^64": ("18446744073709551616", 422),  # orjson reads it as a float: 1.8e19
    "2^63": ("9223372036854775808", 422),  # an int to orjson, too large for SQLite
    "-2^63-1": ("-9223372036854775809", 422),  # orjson reads it as -2^63 exactly: outside too
    "-2^63": ("-9223372036854775808", 422),
    "1e19 as a float": ("1.0e19", 422),  # the bound holds however a number is written
    "300 levels": (DEEP_300, 422),
    "33 levels": ("[" * 32 + "]" * 32, 422),
    "NaN": ("NaN", 400),
    "-Infinity": ("-Infinity", 400),
    "1e400": ("1e400", 400),
    "a lone surrogate": ('"\\ud800"', 400),
}
FITTING = {"2^63-1": "9223372036854775807", "-(2^63-1)": "-9223372036854775807", "32 levels": "[" * 31 + "]" * 31,
           "a small float": "-1.5e-300"}


def device_path(device, suffix=""):
    return f"/v1/user/devices/{device['uid']}{suffix}"


async def upload_firmware(api, device, content=b"\x01\x02\x03"):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("name", "fw")
    form.add_field("file", io.BytesIO(content), filename="f.bin", content_type="application/octet-stream")
    status, body = await api.post(device_path(device, "/firmwares"), data=form)
    assert status == 201, body
    return body["data"]


async def read_everything(api):
    """Every list and detail of the caller's devices: all 200 (and valid against the document, as
    every answer `api` receives is). Returns {uid: {suffix: body}}."""
    status, listing = await api.get("/v1/user/devices")
    assert status == 200, listing
    seen = {}
    for device in listing["data"]:
        bodies = seen[device["uid"]] = {}
        for suffix in ("", "/commands", "/command-buttons", "/firmwares", "/telemetry", "/telemetry/latest"):
            status, bodies[suffix] = await api.get(device_path(device, suffix))
            assert status == 200, (suffix, bodies[suffix])
        for command in bodies["/commands"]["data"]:
            status, body = await api.get(device_path(device, f"/commands/{command['id']}"))
            assert status == 200, body
        status, body = await api.patch(device_path(device), json={"description": "still editable"})
        assert status == 200, body
    return seen


@pytest.fixture
async def online_device(api, backend):
    """A registered unix device, online through the embedded broker over TLS; it acks `accepted`
    and then nothing (the tests send the final acks)."""
    registered = await api.register(name="sensor", platform="unix", board="unix")
    device = FakeDevice(registered["mqtt"], registered["port"], handler=lambda command: None)
    await device.connect()
    await eventually(lambda: _is_online(api, registered["uid"]))
    device.registered = registered
    yield device
    await device.close()


async def _is_online(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}")
    return body["data"]["status"] == "online"


def _bodies(fragment):
    """(method, suffix, body text) of every JSON endpoint of a device with `fragment` in one field, and
    the field the answer must name."""
    return [
        ("PATCH", "", f'{{"name": "x", "junk": {{"n": {fragment}}}}}', "junk"),
        ("POST", "/commands", f'{{"payload": {{"n": {fragment}}}}}', "payload"),
        ("POST", "/command-buttons", f'{{"id": "b", "label": "B", "payload": {{"n": {fragment}}}}}', "payload"),
        ("POST", "/firmwares/set-target", f'{{"md5": {{"n": {fragment}}}}}', "md5"),
        ("PATCH", "/firmwares/{firmware}", f'{{"notes": {{"n": {fragment}}}}}', "notes"),
    ]


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_value_in_any_json_body_is_refused_and_nothing_breaks(api, online_device, name):
    fragment, expected = HOSTILE[name]
    device = online_device.registered
    firmware = await upload_firmware(api, device)
    requests = [("POST", "/v1/user/devices",
                 f'{{"name": "x", "platform": "unix", "board": "unix", "n": {{"n": {fragment}}}}}', "n")]
    requests += [(method, device_path(device, suffix.format(firmware=firmware["id"])), text, field)
                 for method, suffix, text, field in _bodies(fragment)]
    for method, path, text, field in requests:
        status, body = await api.call(method, path, raw=text.encode())
        assert status == expected, (method, path, body)
        if expected == 422:
            assert list(body["errors"]) == [field], body
            assert body["message"].startswith(f"The {field} field must")
        else:
            assert body == {"message": "The request body must be valid JSON."}
    everything = await read_everything(api)
    assert len(everything) == 1  # no device was registered
    mine = everything[device["uid"]]
    assert mine["/commands"]["data"] == [] and mine["/command-buttons"]["data"] == []
    assert mine["/firmwares"]["data"][0]["notes"] is None


@pytest.mark.parametrize("name", FITTING)
async def test_values_at_the_edge_of_the_rule_are_kept_as_sent(api, online_device, name):
    fragment = FITTING[name]
    device = online_device.registered
    text = f'{{"id": "b", "label": "B", "payload": {{"n": {fragment}}}}}'
    status, body = await api.call("POST", device_path(device, "/command-buttons"), raw=text.encode())
    assert status == 201, body
    command = f'{{"payload": {{"n": {fragment}}}}}'.encode()
    status, sent = await api.call("POST", device_path(device, "/commands"), raw=command)
    assert status == 200, sent
    everything = (await read_everything(api))[device["uid"]]
    expected = json.loads(fragment)  # the stdlib reads all of these exactly
    assert everything["/command-buttons"]["data"][0]["payload"] == {"n": expected}
    assert everything["/commands"]["data"][0]["payload"] == {"n": expected}
    await eventually(lambda: _received(online_device, sent["id"]))
    assert online_device.commands[-1]["payload"] == {"n": expected}  # the board got it whole


async def _received(device, command_id):
    return any(command["id"] == command_id for command in device.commands)


async def test_a_body_too_deep_to_parse_is_400_on_every_json_endpoint(api, online_device):
    device = online_device.registered
    firmware = await upload_firmware(api, device)
    deep = "[" * 10_000 + "]" * 10_000
    paths = [(method, device_path(device, suffix.format(firmware=firmware["id"]))) for method, suffix, *_ in _bodies("")]
    for method, path in [("POST", "/v1/user/devices"), *paths]:
        for text in (deep, f'{{"payload": {deep}}}'):
            assert await api.call(method, path, raw=text.encode()) == (
                400, {"message": "The request body must be valid JSON."}), (method, path)
    await read_everything(api)


# --- device messages ---------------------------------------------------------------------

def _stats(backend):
    return backend.client.app[keys.BRIDGE].stats


async def _counted(backend, key, at_least):
    return _stats(backend)[key] >= at_least


async def _accepted_command(api, device):
    status, sent = await api.post(device_path(device.registered, "/commands"), json={"payload": {"cmd": "x"}})
    assert status == 200, sent
    await eventually(lambda: _in_state(api, device.registered, sent["id"], "accepted"))
    return sent["id"]


async def _in_state(api, device, command_id, state):
    _, body = await api.get(device_path(device, f"/commands/{command_id}"))
    return body["data"]["state"] == state


@pytest.mark.parametrize("name", HOSTILE)
async def test_an_ack_that_breaks_the_rule_is_counted_and_dropped(api, backend, online_device, name):
    fragment, _ = HOSTILE[name]
    command_id = await _accepted_command(api, online_device)
    before = _stats(backend)["ack_malformed"]
    ack = f'{{"id": "{command_id}", "state": "done", "result": {{"n": {fragment}}}}}'
    await online_device.publish("ack", ack.encode())
    await eventually(lambda: _counted(backend, "ack_malformed", before + 1))
    everything = (await read_everything(api))[online_device.registered["uid"]]
    assert everything["/commands"]["data"][0]["state"] == "accepted"
    # The session goes on: the next ack is taken.
    await online_device.ack(command_id, "done", result={"ok": True})
    done = await eventually(lambda: final_command(api, online_device.registered["uid"], command_id))
    assert done["result"] == {"ok": True}


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_status_that_breaks_the_rule_is_counted_and_dropped(api, backend, online_device, name):
    fragment, _ = HOSTILE[name]
    before = _stats(backend)["status_malformed"]
    text = f'{{"online": true, "rssi": -40, "boot": {{"reason": "soft", "count": {fragment}}}}}'
    await online_device.publish("status", text.encode(), retain=True)
    await eventually(lambda: _counted(backend, "status_malformed", before + 1))
    detail = (await read_everything(api))[online_device.registered["uid"]][""]["data"]
    assert "boot" not in detail["meta"] and detail["last_rssi"] == -61  # nothing of it was applied


@pytest.mark.parametrize("name", HOSTILE)
async def test_telemetry_values_that_break_the_rule_are_dropped(api, backend, online_device, name):
    fragment, expected = HOSTILE[name]
    uid = online_device.registered["uid"]
    before = _stats(backend)["telemetry_malformed"]
    await online_device.publish("telemetry", f'{{"ts": null, "values": {{"bad": {fragment}}}}}'.encode())
    await online_device.publish("telemetry", f'{{"ts": {fragment}, "values": {{"ok": 1, "bad": {fragment}}}}}'.encode())
    await online_device.publish("telemetry", b'{"values": {"after": 1}}')
    latest = await eventually(lambda: _latest_with(api, uid, "after"))
    if expected == 422 and "levels" not in name:  # a number beyond the rule: that entry alone is dropped
        assert sorted(latest) == ["after", "ok"]
        assert _stats(backend)["telemetry_malformed"] == before + 1  # the message with nothing else in it
    else:  # no JSON, or nested too deep: the whole message
        assert list(latest) == ["after"]
        assert _stats(backend)["telemetry_malformed"] == before + 2
    await read_everything(api)


async def _latest_with(api, uid, key):
    latest = await _latest(api, uid)
    return latest if key in latest else None


async def test_telemetry_nested_too_deep_is_dropped_whatever_field_holds_it(api, backend, online_device):
    before = _stats(backend)["telemetry_malformed"]
    await online_device.publish("telemetry", f'{{"values": {{"ok": 1}}, "extra": {DEEP_300}}}'.encode())
    await eventually(lambda: _counted(backend, "telemetry_malformed", before + 1))
    many = ",".join(["[]", "{}"] * 20)  # more openers than levels allowed, nothing deep: kept
    await online_device.publish("telemetry", f'{{"values": {{"ok": 2}}, "extra": [{many}]}}'.encode())
    latest = await eventually(lambda: _latest(api, online_device.registered["uid"]))
    assert latest["ok"]["value"] == 2


async def _latest(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}/telemetry/latest")
    return body["data"]


# --- rows stored before the rule -----------------------------------------------------------

BROKEN_TEXTS = ["NaN", "[" + DEEP_300 + "]", '{"n": 18446744073709551616}', '{"n": 9223372036854775808}', "{not json",
                '{"n": "\\ud800"}']


async def test_rows_stored_before_the_rule_read_back(api, backend, online_device):
    device = online_device.registered
    for index, _ in enumerate(BROKEN_TEXTS):
        assert (await api.post(device_path(device, "/command-buttons"),
                               json={"id": f"b{index}", "label": "B", "payload": {}}))[0] == 201
    command_ids = []
    for _ in BROKEN_TEXTS:  # one at the device, the rest queued behind it: rows all the same
        status, sent = await api.post(device_path(device, "/commands"), json={"payload": {"cmd": "x"}})
        assert status == 200, sent
        command_ids.append(sent["id"])
    with sqlite3.connect(backend.settings.data_dir / "mpfleet.db") as db:
        for index, text in enumerate(BROKEN_TEXTS):
            db.execute("UPDATE command_buttons SET payload = ? WHERE button_id = ?", (text, f"b{index}"))
            db.execute("UPDATE commands SET payload = ?, result = ? WHERE id = ?", (text, text, command_ids[index]))
        db.execute("UPDATE devices SET meta = json_set(meta, '$.boot', json(?), '$.free_mem', 1000) WHERE uid = ?",
                   (DEEP_300, device["uid"]))
    mine = (await read_everything(api))[device["uid"]]
    assert [b["payload"] for b in mine["/command-buttons"]["data"]] == [None] * len(BROKEN_TEXTS)
    assert {(c["payload"], c["result"]) for c in mine["/commands"]["data"]} == {(None, None)}
    meta = mine[""]["data"]["meta"]
    assert "boot" not in meta and meta["free_mem"] == 1000  # the rest of the meta is kept
    # The device still takes a status: the stored meta is merged with it in SQL.
    await online_device.publish("status", b'{"online": true, "boot": {"count": 2}}', retain=True)
    detail = await eventually(lambda: _with_boot(api, device["uid"]))
    assert detail["meta"]["boot"] == {"count": 2} and detail["meta"]["free_mem"] == 1000


async def _with_boot(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}")
    return body["data"] if "boot" in body["data"]["meta"] else None


# --- path ids and multipart ----------------------------------------------------------------

@pytest.mark.parametrize("firmware_id", ["9223372036854775808", "99999999999999999999999", "0"])
async def test_firmware_ids_beyond_what_an_id_can_be_are_404(api, device, firmware_id):
    path = device_path(device, f"/firmwares/{firmware_id}")
    not_found = (404, {"message": "Firmware not found."})
    assert await api.patch(path, json={"name": "x"}) == not_found
    assert await api.delete(path) == not_found
    await read_everything(api)


BOUNDARY = "hostile-boundary"


def _multipart(*parts):
    body = b""
    for headers, content in parts:
        body += f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


_FILE_PART = (b'Content-Disposition: form-data; name="file"; filename="f.bin"', b"\x01\x02")


@pytest.mark.parametrize("part", [
    (b'Content-Disposition: form-data; name="a\x01b"', b"x"),
    (b'Content-Disposition: form-data; name="name"\r\nContent-Type: text/plain; charset=bogus-xyz', b"x"),
    (b"Content-Disposition form-data", b"x"),
], ids=["control character in a name", "unknown charset", "header without a colon"])
async def test_malformed_multipart_is_400_and_leaves_nothing(api, backend, device, part):
    body = _multipart(part, _FILE_PART)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, answer = await api.call("POST", device_path(device, "/firmwares"), raw=body, headers=headers)
    assert (status, answer) == (400, {"message": "The multipart body is malformed."})
    assert (await read_everything(api))[device["uid"]]["/firmwares"]["data"] == []
    assert not list((backend.settings.data_dir / "firmware" / "incoming").iterdir())


@pytest.mark.parametrize("name", HOSTILE)
def test_ota_progress_that_breaks_the_rule_is_a_bad_message(name):
    # The bridge counts and drops what raises BadMessage (bridge.py: _count_failure).
    fragment, _ = HOSTILE[name]
    with pytest.raises(schemas.BadMessage):
        schemas.ota_progress(f'{{"id": "c1", "state": "downloading", "extra": {{"n": {fragment}}}}}'.encode())
    progress = schemas.ota_progress(b'{"id": "c1", "state": "downloading", "progress": 40}')
    assert progress == ("c1", "downloading", 40, None)
