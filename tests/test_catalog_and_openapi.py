"""Supported platforms and boards, and the OpenAPI document against the real route table."""

import re

from jsonschema import Draft202012Validator
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
    assert boards["esp32dev"]["flash_offset"] == "0x1000" and boards["esp32dev"]["ota"] == "partition"
    assert boards["d1_mini"]["flash_offset"] == "0x0" and boards["d1_mini"]["ota"] == "bundle"
    assert boards["unix"]["ota"] == "bundle"


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
    assert documented == routes


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
