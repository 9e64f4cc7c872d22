"""Supported platforms and boards, and the OpenAPI document against the real route table."""

import re

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from mpfleet.backend import jsonvalues, schemas
from mpfleet.backend.handlers import commands
from mpfleet.backend.openapi import document
from mpfleet.boards import catalog

REQUIRED_BOARDS = {
    "esp32dev": ("espressif32", "esp32"),
    "esp32-s3-devkitc-1": ("espressif32", "esp32s3"),
    "esp32-c3-devkitm-1": ("espressif32", "esp32c3"),
    "nodemcuv2": ("espressif8266", "esp8266"),
    "esp07s": ("espressif8266", "esp8266"),
    "d1_mini": ("espressif8266", "esp8266"),
    "unix": ("unix", "unix"),
}


async def test_platforms_are_public_and_match_the_seed(backend):
    response = await backend.client.get("/v1/platforms")
    assert response.status == 200
    platforms = (await response.json())["data"]
    assert {"id": 2, "name": "ESP8266", "key": "espressif8266"} in platforms
    assert [p["key"] for p in platforms] == ["espressif32", "espressif8266", "unix"]


async def test_boards_list_every_required_board_with_its_facts(backend):
    response = await backend.client.get("/v1/boards")
    boards = {b["key"]: b for b in (await response.json())["data"]}
    assert set(REQUIRED_BOARDS) <= set(boards)
    for key, (platform, chip) in REQUIRED_BOARDS.items():
        assert boards[key]["platform"]["key"] == platform and boards[key]["chip"] == chip
    assert boards["esp07s"]["id"] == 6 and boards["esp07s"]["name"] == "ESP-07S"
    assert boards["esp32dev"]["flash_offset"] == "0x1000" and boards["esp32dev"]["ota"] == ["partition", "bundle"]
    assert boards["d1_mini"]["flash_offset"] == "0x0" and boards["d1_mini"]["ota"] == ["bundle"]
    assert boards["unix"]["ota"] == ["partition", "bundle"]


def test_the_board_definitions_agree_with_each_other():
    boards = catalog()
    assert len({b.board["id"] for b in boards.values()}) == len(boards)
    for board in boards.values():
        assert board.platform == next(b.platform for b in boards.values() if b.platform["key"] == board.platform["key"])
        if board.flash_offset is not None:
            assert re.fullmatch(r"0x[0-9a-f]+", board.flash_offset)


async def test_the_document_is_served_and_describes_exactly_the_routes(backend):
    response = await backend.client.get("/v1/openapi.json")
    assert response.status == 200
    served = await response.json()
    assert served["openapi"].startswith("3.1")

    routes = set()
    for route in backend.client.app.router.routes():
        if route.method == "HEAD":
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        routes.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in served["paths"].items() for method in ops}
    api = {(method, path) for method, path in routes if path.startswith("/v1/")}
    assert documented == api
    assert routes - api == {("get", "/"), ("get", "/ui/{path}")}  # the dashboard's page and files, not the API


def test_every_schema_of_the_document_is_valid_json_schema():
    spec = document()
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            for param in operation.get("parameters", []):
                assert param["in"] == "query" or "{" + param["name"] + "}" in path
            for name in re.findall(r"\{(\w+)\}", path):
                assert name in [p["name"] for p in operation.get("parameters", [])], (method, path, name)


def _operation(method, path):
    return document()["paths"][path][method]


def _body_schema(method, path, content="application/json"):
    schema = _operation(method, path)["requestBody"]["content"][content]["schema"]
    if "$ref" in schema:
        schema = document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema["anyOf"][0] if "anyOf" in schema else schema  # registration: one branch per platform


def _query_schema(method, path, name):
    return next(p["schema"] for p in _operation(method, path)["parameters"] if p["name"] == name)


DEVICE = "/v1/user/devices/{uid}"
# (method, path, field, a valid body around it): each field whose length the document bounds.
LENGTH_LIMITED = [
    ("post", "/v1/user/devices", "name", {"platform": "unix", "board": "unix"}),
    ("post", "/v1/user/devices", "description", {"name": "x", "platform": "unix", "board": "unix"}),
    ("patch", DEVICE, "name", {}),
    ("patch", DEVICE, "description", {}),
    ("post", DEVICE + "/command-buttons", "label", {"id": "b", "payload": {}}),
    ("patch", DEVICE + "/firmwares/{firmware_id}", "version", {}),
    ("patch", DEVICE + "/firmwares/{firmware_id}", "notes", {}),
]


async def test_the_documented_lengths_are_the_enforced_ones(api, device):
    firmware = await _firmware(api, device)
    for method, path, field, body in LENGTH_LIMITED:
        field_schema = _body_schema(method, path)["properties"][field]
        limit = (field_schema.get("anyOf", [field_schema])[0])["maxLength"]
        url = path.replace("{uid}", device["uid"]).replace("{firmware_id}", str(firmware["id"]))
        at_limit = await api.call(method.upper(), url, json={**body, field: "x" * limit})
        assert at_limit[0] in (200, 201), (method, path, field, at_limit)
        over = await api.call(method.upper(), url, json={**body, "id": "c", field: "x" * (limit + 1)})
        assert over[0] == 422 and list(over[1]["errors"]) == [field], (method, path, field, over)


async def _firmware(api, device):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("name", "fw")
    form.add_field("file", b"\x01\x02", filename="f.bin", content_type="application/octet-stream")
    status, body = await api.post(f"/v1/user/devices/{device['uid']}/firmwares", data=form)
    assert status == 201, body
    return body["data"]


@pytest.mark.parametrize("path", ["/commands", "/telemetry"])
async def test_the_documented_query_ranges_are_the_enforced_ones(api, device, path):
    limit = _query_schema("get", DEVICE + path, "limit")
    base = f"/v1/user/devices/{device['uid']}{path}"
    for value, ok in ((limit["minimum"], True), (limit["maximum"], True), (limit["maximum"] + 1, False),
                      (limit["minimum"] - 1, False), ("5_0", False), ("%205", False), ("%D9%A5", False)):
        status, body = await api.get(f"{base}?limit={value}")
        assert (status == 200) == ok, (value, status, body)


@pytest.mark.parametrize("value, ok", [
    ("2023-11-14T22:13:22Z", True), ("2023-11-14t22:13:22.5z", True), ("2023-11-14T22:13:22%2B05:30", True),
    ("9999-12-31T23:59:59-23:59", True), ("1700000000", True), ("-1.5e3", True), ("9223372036854775807", True),
    ("9223372036854775808", False), ("1e300", False), ("2023-11-14", False), ("2023-11-14T22:13:22", False),
    ("2023-02-30T00:00:00Z", False), ("", False), ("nan", False), ("1_0", False), ("%205", False),
])
async def test_time_parameters_are_rfc_3339_or_unix_seconds(api, device, value, ok):
    status, body = await api.get(f"/v1/user/devices/{device['uid']}/telemetry?from={value}&to={value}")
    assert (status == 200) == ok, (value, status, body)
    if not ok:
        assert list(body["errors"]) == ["from"]  # the first bad parameter is named


def test_the_document_takes_its_limits_from_the_code():
    button = document()["components"]["schemas"]["NewCommandButton"]["properties"]
    assert button["id"] == {"type": "string", "pattern": schemas.BUTTON_ID_PATTERN, "maxLength": schemas.BUTTON_ID_MAX}
    assert _query_schema("post", DEVICE + "/reboot", "wait")["maximum"] == commands.WAIT_MAX
    number = document()["components"]["schemas"]["JsonValue"]["anyOf"][1]
    assert (number["minimum"], number["maximum"]) == (jsonvalues.MIN_NUMBER, jsonvalues.MAX_NUMBER)
    registration = _operation("post", "/v1/user/devices")["requestBody"]["content"]["application/json"]["schema"]
    pairs = {(b["properties"]["platform"]["const"], board) for b in registration["anyOf"]
             for board in b["properties"]["board"]["enum"]}
    assert pairs == {(b.platform["key"], key) for key, b in catalog().items()}
