"""Registration, list, detail, edit and delete of devices (seed 004 payloads, seed 000 credentials)."""

import re
import sqlite3

import pytest

DETAIL_FIELDS = [
    "uid", "name", "description", "status", "is_online", "public_ip", "local_ip", "port", "last_rssi",
    "first_seen_at", "last_seen_at", "last_ota_at", "platform", "board", "board_variant",
    "current_firmware", "target_firmware", "meta", "tags",
]
COMPACT_FIELDS = ["uid", "name", "status", "last_seen_at", "platform", "board", "board_variant", "tags", "groups"]


async def test_registration_returns_the_seed_detail_payload_and_credentials_once(api):
    status, body = await api.post("/v1/user/devices", json={"name": "test", "platform": "espressif8266",
                                                            "board": "esp07s"})
    assert status == 201
    data = body["data"]
    assert re.fullmatch(r"espressif8266_[0-9A-Za-z]{12}", data["uid"])
    assert list(data) == DETAIL_FIELDS + ["mqtt", "ota"]
    assert data["status"] == "pending" and data["is_online"] is False
    assert data["platform"] == {"id": 2, "name": "ESP8266", "key": "espressif8266"}
    assert data["board"] == {"id": 6, "name": "ESP-07S", "key": "esp07s"}
    port = data["port"]  # the TLS port the broker really listens on (a free one in tests, 8883 by default)
    assert port > 0 and data["meta"] == {"mqtt_port": port}
    mqtt = data["mqtt"]
    assert mqtt["username"] == mqtt["client_id"] == data["uid"]
    assert mqtt["host"] == "mqtt.example.test" and mqtt["port"] == port and mqtt["tls"] is True
    assert mqtt["ca_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(mqtt["password"]) >= 24

    _, detail = await api.get(f"/v1/user/devices/{data['uid']}")
    assert "mqtt" not in detail["data"]
    assert mqtt["password"] not in str(detail)


async def test_the_password_is_stored_only_as_a_salted_hash(api, backend):
    first = await api.register(name="one")
    second = await api.register(name="two")
    raw = (backend.settings.data_dir / "mpfleet.db").read_bytes()
    raw += (backend.settings.data_dir / "mpfleet.db-wal").read_bytes()
    assert first["mqtt"]["password"].encode() not in raw
    conn = sqlite3.connect(backend.settings.data_dir / "mpfleet.db")
    hashes = [row[0] for row in conn.execute("SELECT mqtt_password_hash FROM devices")]
    conn.close()
    assert len(hashes) == 2 and hashes[0] != hashes[1]
    assert all(h.startswith("pbkdf2_sha256$") for h in hashes)
    assert second["uid"] != first["uid"]


async def test_list_is_compact_and_detail_is_complete(api, device):
    status, listing = await api.get("/v1/user/devices")
    assert status == 200
    assert [list(d) for d in listing["data"]] == [COMPACT_FIELDS]
    assert listing["data"][0]["uid"] == device["uid"]
    status, detail = await api.get(f"/v1/user/devices/{device['uid']}")
    assert status == 200 and list(detail["data"]) == DETAIL_FIELDS
    assert detail["data"]["current_firmware"] is None and detail["data"]["target_firmware"] is None


async def test_patch_changes_name_and_description(api, device):
    path = f"/v1/user/devices/{device['uid']}"
    status, body = await api.patch(path, json={"name": "Kitchen Sensor", "description": "Mounted near the back door"})
    assert status == 200
    assert body["data"]["name"] == "Kitchen Sensor"
    assert body["data"]["description"] == "Mounted near the back door"
    status, body = await api.patch(path, json={"description": None})
    assert status == 200 and body["data"]["description"] is None and body["data"]["name"] == "Kitchen Sensor"
    status, body = await api.patch(path, json={"name": ""})
    assert status == 422 and body["errors"] == {"name": ["The name field is required."]}
    _, body = await api.get(path)
    assert body["data"]["name"] == "Kitchen Sensor"


@pytest.mark.parametrize("body, field, message", [
    ({"platform": "espressif8266", "board": "esp07s"}, "name", "The name field is required."),
    ({"name": 5, "platform": "espressif8266", "board": "esp07s"}, "name", "The name field must be a string."),
    ({"name": "x" * 101, "platform": "espressif8266", "board": "esp07s"}, "name",
     "The name field must not be greater than 100 characters."),
    ({"name": "x", "platform": "avr", "board": "esp07s"}, "platform", "The selected platform is invalid."),
    ({"name": "x", "platform": "espressif8266", "board": "uno"}, "board", "The selected board is invalid."),
    ({"name": "x", "platform": "espressif32", "board": "esp07s"}, "board",
     "The selected board does not belong to the espressif32 platform."),
    ({"name": "x", "platform": "espressif8266", "board": "esp07s", "description": ["no"]}, "description",
     "The description field must be a string."),
])
async def test_registration_validation(api, body, field, message):
    status, answer = await api.post("/v1/user/devices", json=body)
    assert status == 422
    assert answer == {"message": message, "errors": {field: [message]}}
    _, listing = await api.get("/v1/user/devices")
    assert listing["data"] == []


async def test_every_supported_board_registers_with_its_platform_prefix(api, backend):
    _, boards = await api.get("/v1/boards")
    for board in boards["data"]:
        data = await api.register(platform=board["platform"]["key"], board=board["key"])
        assert data["uid"].startswith(board["platform"]["key"] + "_")
        assert data["board"] == {"id": board["id"], "name": board["name"], "key": board["key"]}


async def test_delete_removes_the_device_with_its_buttons(api, device, backend):
    path = f"/v1/user/devices/{device['uid']}"
    button = {"id": "relay_on", "label": "Relay On", "payload": {"cmd": "relay_toggle"}, "confirm": False}
    assert (await api.post(path + "/command-buttons", json=button))[0] == 201
    status, body = await api.delete(path)
    assert status == 200 and body == {"message": "Device deleted.", "device_uid": device["uid"]}
    assert (await api.get(path))[0] == 404
    assert (await api.delete(path))[0] == 404
    conn = sqlite3.connect(backend.settings.data_dir / "mpfleet.db")
    assert conn.execute("SELECT count(*) FROM command_buttons").fetchone()[0] == 0
    conn.close()


async def test_a_registration_the_broker_refuses_is_undone(api, backend, monkeypatch):
    from mpfleet.backend import keys

    async def refuse(uid, password):
        raise ConnectionError("broker down")

    monkeypatch.setattr(backend.client.app[keys.DEVICE_ACCOUNTS], "add_device", refuse)
    status, body = await api.post("/v1/user/devices", json={"name": "x", "platform": "unix", "board": "unix"})
    assert (status, body) == (503, {
        "message": "The MQTT broker could not create the device's account; nothing was registered."})
    assert await api.get("/v1/user/devices") == (200, {"data": [], "meta": {"total": 0, "limit": 50, "offset": 0}})
