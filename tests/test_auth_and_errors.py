"""Bearer tokens, cross-user isolation, and the JSON shape of every kind of failure."""

import io

import pytest
from aiohttp.test_utils import TestClient, TestServer
from mpfleet.backend import keys
from mpfleet.backend.app import init_app
from mpfleet.backend.middlewares import public
from mpfleet.backend.responses import json_response

from .conftest import Backend

ROUTES_OF_A_DEVICE = [
    ("GET", ""), ("PATCH", ""), ("DELETE", ""),
    ("POST", "/reboot"), ("POST", "/wifi-reset"), ("POST", "/ota"), ("POST", "/commands"),
    ("GET", "/command-buttons"), ("POST", "/command-buttons"), ("DELETE", "/command-buttons/relay_on"),
    ("POST", "/command-buttons/relay_on/send"),
    ("GET", "/firmwares"), ("POST", "/firmwares"), ("POST", "/firmwares/set-target"),
    ("DELETE", "/firmwares/target"), ("PATCH", "/firmwares/1"), ("DELETE", "/firmwares/1"),
]
VALID_BODIES = {
    ("PATCH", ""): {"name": "stolen"},
    ("POST", "/commands"): {"payload": {"cmd": "x"}},
    ("POST", "/command-buttons"): {"id": "b", "label": "B", "payload": {}},
    ("POST", "/firmwares/set-target"): {"md5": "0" * 32},
    ("PATCH", "/firmwares/1"): {"name": "x"},
}


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
])
async def test_missing_or_bad_token_is_401(backend, api, headers):
    response = await backend.client.get("/v1/user/devices", headers=headers)
    assert response.status == 401
    assert await response.json() == {"message": "Unauthenticated."}


async def test_every_device_route_needs_a_token(backend, device):
    for method, suffix in ROUTES_OF_A_DEVICE:
        response = await backend.client.request(method, f"/v1/user/devices/{device['uid']}{suffix}")
        assert response.status == 401, (method, suffix)
        assert await response.json() == {"message": "Unauthenticated."}


async def test_a_route_is_authenticated_unless_it_is_marked_public(tmp_path):
    async def unmarked(request):
        return json_response({"message": "secret"})

    async def marked(request):
        return json_response({"message": "open"})

    app = init_app(Backend(tmp_path / "var").settings)
    app.router.add_get("/v1/added-later", unmarked)  # outside /v1/user/, which alone was guarded once
    app.router.add_get("/v1/added-public", public(marked))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/v1/added-later")
        assert (response.status, await response.json()) == (401, {"message": "Unauthenticated."})
        response = await client.head("/v1/added-later")
        assert response.status == 401
        _, token = await app[keys.STORAGE].users.create("carol")
        response = await client.get("/v1/added-later", headers={"Authorization": f"Bearer {token}"})
        assert (response.status, await response.json()) == (200, {"message": "secret"})

        response = await client.get("/v1/added-public")
        assert (response.status, await response.json()) == (200, {"message": "open"})
        for path in ("/v1/openapi.json", "/v1/platforms", "/v1/boards"):
            assert (await client.get(path)).status == 200, path
        response = await client.get("/v1/nothing-here")  # no route: 404 as ever, token or not
        assert (response.status, await response.json()) == (404, {"message": "Not found."})


async def test_another_users_device_is_404_like_an_unknown_one(api, other_api, device, backend):
    # A button and a firmware exist, so a leak would show as anything but 404.
    base = f"/v1/user/devices/{device['uid']}"
    await api.post(base + "/command-buttons", json={"id": "relay_on", "label": "On", "payload": {}})
    for method, suffix in ROUTES_OF_A_DEVICE:
        body = VALID_BODIES.get((method, suffix), {})
        mine = await other_api.call(method, base + suffix, json=body)
        unknown = await other_api.call(method, f"/v1/user/devices/espressif8266_AAAAAAAAAAAA{suffix}", json=body)
        assert mine == unknown == (404, {"message": "Device not found."}), (method, suffix, mine)
    _, listing = await other_api.get("/v1/user/devices")
    assert listing["data"] == [] and listing["meta"]["total"] == 0
    _, detail = await api.get(base)
    assert detail["data"]["name"] == "test"
    _, buttons = await api.get(base + "/command-buttons")
    assert len(buttons["data"]) == 1


async def test_unknown_route_and_wrong_method_answer_json(api):
    assert await api.get("/v1/nothing-here") == (404, {"message": "Not found."})
    response = await api.client.put("/v1/user/devices", headers=api.headers())
    assert response.status == 405
    assert await response.json() == {"message": "Method not allowed."}
    assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize("raw, message", [
    (b"", "The request body must be valid JSON."),
    (b"name=test", "The request body must be valid JSON."),
    (b"{\"name\": ", "The request body must be valid JSON."),
    (b"\xff\xfe", "The request body must be valid JSON."),
    (b"[1, 2]", "The request body must be a JSON object."),
    (b"\"text\"", "The request body must be a JSON object."),
])
async def test_a_body_that_is_not_a_json_object_is_400(api, device, raw, message):
    for method, path in [("POST", "/v1/user/devices"), ("PATCH", f"/v1/user/devices/{device['uid']}"),
                         ("POST", f"/v1/user/devices/{device['uid']}/commands")]:
        assert await api.call(method, path, raw=raw) == (400, {"message": message})


async def test_an_oversized_json_body_is_413(api):
    raw = io.BytesIO(b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    status, body = await api.call("POST", "/v1/user/devices", raw=raw)
    assert (status, body) == (413, {"message": "Request body is too large."})


async def test_validation_errors_list_every_field(api):
    status, body = await api.post("/v1/user/devices", json={"name": "", "platform": 1})
    assert status == 422
    assert body["message"] == "The name field is required. (and 2 more errors)"
    assert body["errors"] == {
        "name": ["The name field is required."],
        "platform": ["The platform field must be a string."],
        "board": ["The board field is required."],
    }


async def test_a_token_made_by_another_process_works_at_once(backend, api):
    from mpfleet.backend.storage import Storage

    assert (await api.get("/v1/user/devices", token="mpf_later"))[0] == 401
    other_process = Storage(backend.settings.data_dir)  # e.g. `mpfleet token create` while serving
    await other_process.open()
    token = await other_process.users.create_token("alice")
    await other_process.close()
    assert await api.get("/v1/user/devices", token=token) == (200, {"data": [], "meta": {"total": 0, "limit": 50, "offset": 0}})
