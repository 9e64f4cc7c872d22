"""Saved command buttons, and the command endpoints' answers for a device that is not online."""

import pytest

RELAY_ON = {"id": "relay_on", "label": "Relay On",
            "payload": {"cmd": "relay_toggle", "channel": 1, "state": "on"}, "confirm": False}


def buttons_of(device):
    return f"/v1/user/devices/{device['uid']}/command-buttons"


async def test_create_list_delete_exactly_as_the_seed(api, device):
    assert await api.get(buttons_of(device)) == (200, {"data": []})
    status, body = await api.post(buttons_of(device), json=RELAY_ON)
    assert status == 201
    assert body == {"message": "Command button created.", "device_uid": device["uid"], "data": RELAY_ON}
    assert await api.get(buttons_of(device)) == (200, {"data": [RELAY_ON]})

    status, body = await api.post(buttons_of(device), json={**RELAY_ON, "label": "Again"})
    assert (status, body) == (409, {"message": "A command button with this id already exists."})
    assert await api.get(buttons_of(device)) == (200, {"data": [RELAY_ON]})

    status, body = await api.delete(buttons_of(device) + "/relay_on")
    assert (status, body) == (200, {"message": "Command button deleted.", "device_uid": device["uid"]})
    assert await api.get(buttons_of(device)) == (200, {"data": []})
    assert await api.delete(buttons_of(device) + "/relay_on") == (404, {"message": "Command button not found."})


async def test_buttons_keep_their_creation_order_and_are_per_device(api, device):
    other = await api.register(name="other")
    for button_id in ("zeta", "alpha", "mid"):
        await api.post(buttons_of(device), json={**RELAY_ON, "id": button_id})
    _, body = await api.get(buttons_of(device))
    assert [b["id"] for b in body["data"]] == ["zeta", "alpha", "mid"]
    assert (await api.post(buttons_of(other), json={**RELAY_ON, "id": "zeta"}))[0] == 201
    assert await api.get(buttons_of(other)) == (200, {"data": [{**RELAY_ON, "id": "zeta"}]})


async def test_confirm_defaults_to_false(api, device):
    button = {k: v for k, v in RELAY_ON.items() if k != "confirm"}
    status, body = await api.post(buttons_of(device), json=button)
    assert status == 201 and body["data"]["confirm"] is False


@pytest.mark.parametrize("change, field, message", [
    ({"id": None}, "id", "The id field is required."),
    ({"id": "Relay On"}, "id", "The id field must contain only lowercase letters, digits, dashes and underscores."),
    ({"id": "x" * 65}, "id", "The id field must not be greater than 64 characters."),
    ({"label": ""}, "label", "The label field is required."),
    ({"label": "x" * 65}, "label", "The label field must not be greater than 64 characters."),
    ({"payload": None}, "payload", "The payload field is required."),
    ({"payload": [1, 2]}, "payload", "The payload field must be a JSON object."),
    ({"payload": "on"}, "payload", "The payload field must be a JSON object."),
    ({"payload": {"blob": "x" * 4096}}, "payload", "The payload field must not be larger than 4096 bytes as JSON."),
    ({"confirm": "yes"}, "confirm", "The confirm field must be true or false."),
])
async def test_button_validation(api, device, change, field, message):
    status, body = await api.post(buttons_of(device), json={**RELAY_ON, **change})
    assert (status, body) == (422, {"message": message, "errors": {field: [message]}})
    assert await api.get(buttons_of(device)) == (200, {"data": []})


async def test_a_payload_of_exactly_4096_bytes_is_accepted(api, device):
    overhead = len('{"blob":""}')
    payload = {"blob": "x" * (4096 - overhead)}
    assert (await api.post(buttons_of(device), json={**RELAY_ON, "payload": payload}))[0] == 201


async def test_sending_a_missing_button_is_404_and_an_existing_one_needs_the_device_online(api, device):
    assert await api.post(buttons_of(device) + "/nope/send") == (404, {"message": "Command button not found."})
    await api.post(buttons_of(device), json=RELAY_ON)
    assert await api.post(buttons_of(device) + "/relay_on/send") == (409, {"message": "Device is offline."})


@pytest.mark.parametrize("suffix, body", [
    ("/reboot", None),
    ("/wifi-reset", None),
    ("/commands", {"payload": {"cmd": "relay_toggle", "channel": 1, "state": "on"}}),
])
async def test_commands_to_a_device_that_never_connected_are_refused(api, device, suffix, body):
    path = f"/v1/user/devices/{device['uid']}{suffix}"
    assert await api.post(path, json=body) == (409, {"message": "Device is offline."})


async def test_command_payload_is_validated_before_anything_else(api, device):
    path = f"/v1/user/devices/{device['uid']}/commands"
    message = "The payload field must be a JSON object."
    assert await api.post(path, json={"payload": 3}) == (422, {"message": message, "errors": {"payload": [message]}})
    message = "The payload field is required."
    assert await api.post(path, json={}) == (422, {"message": message, "errors": {"payload": [message]}})


async def test_ota_without_a_target_says_to_assign_one(api, device):
    path = f"/v1/user/devices/{device['uid']}/ota"
    assert await api.post(path) == (422, {"message": "Assign firmware first to trigger OTA."})


@pytest.mark.parametrize("wait", ["31", "-1", "soon", "1.5", ""])
@pytest.mark.parametrize("suffix, body", [
    ("/reboot", None), ("/wifi-reset", None), ("/commands", {"payload": {"cmd": "x"}}),
    ("/command-buttons/relay_on/send", None),
])
async def test_wait_must_be_whole_seconds_from_0_to_30(api, device, suffix, body, wait):
    await api.post(buttons_of(device), json=RELAY_ON)
    base = f"/v1/user/devices/{device['uid']}"
    message = "The wait parameter must be an integer from 0 to 30."
    assert await api.post(f"{base}{suffix}?wait={wait}", json=body) == (
        422, {"message": message, "errors": {"wait": [message]}})
    assert await api.get(base + "/commands") == (200, {"data": []})
