"""Tags on devices and groups of devices (seed 001's paths under /v1/user/...), through the HTTP API of the real app on
a real SQLite file: each endpoint, its validation, isolation between two users, what a deleted device or group takes
with it, and the device list's `tag` and `group` filters."""

import pytest
from mpfleet.backend.schemas import TAG_RULE

from .fake_device import FakeDevice
from .polling import eventually

FLEET = [  # (name, platform, board)
    ("Kitchen sensor", "espressif8266", "esp07s"),
    ("attic", "espressif32", "esp32dev"),
    ("Boiler", "espressif32", "esp32-c3-devkitm-1"),
    ("garage", "unix", "unix"),
    ("cellar", "espressif8266", "d1_mini"),
]


async def register_fleet(api):
    """{name: uid} of FLEET, registered in order."""
    return {name: (await api.register(name=name, platform=platform, board=board))["uid"]
            for name, platform, board in FLEET}


def tags_path(uid, tag=None):
    return f"/v1/user/devices/{uid}/tags" + (f"/{tag}" if tag else "")


async def add_tags(api, uid, *tags):
    status, body = await api.post(tags_path(uid), json={"tags": list(tags)})
    assert status == 200, body
    return body["data"]


async def create_group(api, name, description=None):
    status, body = await api.post("/v1/user/groups", json={"name": name, "description": description})
    assert status == 201, body
    return body["data"]


async def add_members(api, group_id, *uids):
    status, body = await api.post(f"/v1/user/groups/{group_id}/devices", json={"uids": list(uids)})
    assert status == 200, body
    return body["data"]


async def names(api, path):
    status, body = await api.get(path)
    assert status == 200, body
    return [d["name"] for d in body["data"]], body["meta"]["total"]


# --- tags ------------------------------------------------------------------------------------------


async def test_tags_are_added_several_at_once_listed_sorted_and_removed(api, device):
    uid = device["uid"]
    status, body = await api.post(tags_path(uid), json={"tags": ["kitchen", "floor-2"]})
    assert (status, body) == (200, {"message": "Tags added.", "device_uid": uid, "data": ["floor-2", "kitchen"]})
    # One it has already, one twice, one new: no error, each once.
    assert await add_tags(api, uid, "kitchen", "site:berlin", "site:berlin", "v1.2_b") == [
        "floor-2", "kitchen", "site:berlin", "v1.2_b"]
    assert await api.get(tags_path(uid)) == (200, {"data": ["floor-2", "kitchen", "site:berlin", "v1.2_b"]})
    status, body = await api.delete(tags_path(uid, "site:berlin"))
    assert (status, body) == (200, {"message": "Tag removed.", "device_uid": uid,
                                    "data": ["floor-2", "kitchen", "v1.2_b"]})
    assert await api.delete(tags_path(uid, "site:berlin")) == (404, {"message": "Tag not found."})
    assert await api.delete(tags_path(uid, "Kitchen")) == (404, {"message": "Tag not found."})
    assert (await api.get(tags_path(uid)))[1]["data"] == ["floor-2", "kitchen", "v1.2_b"]


async def test_the_device_detail_shows_its_tags(api, device):
    path = f"/v1/user/devices/{device['uid']}"
    assert device["tags"] == []  # the registration answer
    await add_tags(api, device["uid"], "kitchen", "floor-2")
    assert (await api.get(path))[1]["data"]["tags"] == ["floor-2", "kitchen"]
    assert (await api.patch(path, json={"name": "renamed"}))[1]["data"]["tags"] == ["floor-2", "kitchen"]


@pytest.mark.parametrize("body, field, message", [
    ({}, "tags", "The tags field is required."),
    ({"tags": None}, "tags", "The tags field is required."),
    ({"tags": "kitchen"}, "tags", "The tags field must be a list of tags."),
    ({"tags": {"kitchen": 1}}, "tags", "The tags field must be a list of tags."),
    ({"tags": []}, "tags", "The tags field must hold 1 to 32 tags."),
    ({"tags": [f"t{i}" for i in range(33)]}, "tags", "The tags field must hold 1 to 32 tags."),
    ({"tags": ["kitchen", "Kitchen"]}, "tags.1", f"The tags.1 field must be {TAG_RULE}."),
    ({"tags": ["-kitchen"]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
    ({"tags": ["floor 2"]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
    ({"tags": [""]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
    ({"tags": ["t" * 33]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
    ({"tags": ["küche"]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
    ({"tags": [7]}, "tags.0", f"The tags.0 field must be {TAG_RULE}."),
])
async def test_a_tag_body_that_breaks_a_rule_is_422_and_adds_nothing(api, device, body, field, message):
    await add_tags(api, device["uid"], "keep")
    status, answer = await api.post(tags_path(device["uid"]), json=body)
    assert (status, answer) == (422, {"message": message, "errors": {field: [message]}})
    assert (await api.get(tags_path(device["uid"])))[1]["data"] == ["keep"]


async def test_a_device_has_at_most_32_tags_those_it_has_counted(api, device):
    uid = device["uid"]
    await add_tags(api, uid, *(f"t{i:02d}" for i in range(30)))
    status, body = await api.post(tags_path(uid), json={"tags": ["t00", "new-1", "new-2", "new-3"]})
    message = "The tags field must not give the device more than 32 tags, those it has counted."
    assert (status, body) == (422, {"message": message, "errors": {"tags": [message]}})
    assert len((await api.get(tags_path(uid)))[1]["data"]) == 30  # nothing of it was added
    assert len(await add_tags(api, uid, "t00", "new-1", "new-2")) == 32
    assert len(await add_tags(api, uid, "t05")) == 32  # one it has: still no error


async def test_a_users_devices_have_at_most_1000_different_tags(api):
    uids = [(await api.register(name=f"d{i}", platform="unix", board="unix"))["uid"] for i in range(32)]
    for number, uid in enumerate(uids[:31]):
        await add_tags(api, uid, *(f"tag-{number}-{i}" for i in range(32)))  # 992 different tags
    await add_tags(api, uids[31], *(f"last-{i}" for i in range(8)))  # 1000
    status, body = await api.post(tags_path(uids[31]), json={"tags": ["one-more"]})
    message = "The tags field must not give your devices more than 1000 different tags in all."
    assert (status, body) == (422, {"message": message, "errors": {"tags": [message]}})
    # Tags the user has already are no new ones: another device may take them.
    assert await add_tags(api, uids[31], "tag-0-0", "tag-30-31") == sorted(
        [f"last-{i}" for i in range(8)] + ["tag-0-0", "tag-30-31"])
    assert len((await api.get("/v1/user/tags"))[1]["data"]) == 1000
    assert (await api.delete(tags_path(uids[31], "last-0")))[0] == 200
    assert "one-more" in await add_tags(api, uids[31], "one-more")  # room for one again


async def test_the_users_tags_with_their_device_counts(api, other_api):
    uids = await register_fleet(api)
    await add_tags(api, uids["attic"], "upstairs", "sensor")
    await add_tags(api, uids["Boiler"], "sensor", "heating")
    await add_tags(api, uids["cellar"], "sensor")
    theirs = await other_api.register(name="bob's", platform="unix", board="unix")
    await add_tags(other_api, theirs["uid"], "sensor", "bobs-only")
    assert await api.get("/v1/user/tags") == (200, {"data": [
        {"tag": "heating", "device_count": 1}, {"tag": "sensor", "device_count": 3},
        {"tag": "upstairs", "device_count": 1}]})
    assert (await other_api.get("/v1/user/tags"))[1]["data"] == [
        {"tag": "bobs-only", "device_count": 1}, {"tag": "sensor", "device_count": 1}]
    await api.delete(tags_path(uids["attic"], "upstairs"))  # a tag no device has is gone
    assert [t["tag"] for t in (await api.get("/v1/user/tags"))[1]["data"]] == ["heating", "sensor"]


async def test_another_users_device_tags_are_not_found_and_not_changed(api, other_api, device):
    uid = device["uid"]
    await add_tags(api, uid, "kitchen")
    not_found = (404, {"message": "Device not found."})
    assert await other_api.get(tags_path(uid)) == not_found
    assert await other_api.post(tags_path(uid), json={"tags": ["bobs"]}) == not_found
    assert await other_api.delete(tags_path(uid, "kitchen")) == not_found
    assert (await api.get(tags_path(uid)))[1]["data"] == ["kitchen"]
    assert (await other_api.get("/v1/user/tags"))[1]["data"] == []
    assert await api.get(tags_path("unix_nosuchdevice")) == not_found


# --- groups ------------------------------------------------------------------------------------------


async def test_a_group_is_created_listed_shown_edited_and_deleted(api):
    status, body = await api.post("/v1/user/groups", json={"name": "  Ground floor ", "description": "downstairs"})
    assert status == 201
    group = body["data"]
    assert group == {"id": group["id"], "name": "Ground floor", "description": "downstairs", "device_count": 0}
    path = f"/v1/user/groups/{group['id']}"
    assert await api.get(path) == (200, {"data": group})
    attic = await create_group(api, "attic")
    assert attic["description"] is None
    zone = await create_group(api, "Zone 9", "")
    assert zone["description"] is None  # empty is none
    listed = (await api.get("/v1/user/groups"))[1]["data"]
    assert [g["name"] for g in listed] == ["attic", "Ground floor", "Zone 9"]  # ASCII letters in any case

    status, body = await api.call("PUT", path, json={"name": "Downstairs"})
    assert (status, body) == (200, {"data": {**group, "name": "Downstairs"}})
    status, body = await api.call("PUT", path, json={"description": None})
    assert (status, body) == (200, {"data": {**group, "name": "Downstairs", "description": None}})
    assert (await api.call("PUT", path, json={}))[1]["data"]["name"] == "Downstairs"

    assert await api.delete(path) == (200, {"message": "Group deleted."})
    assert await api.get(path) == (404, {"message": "Group not found."})
    assert await api.delete(path) == (404, {"message": "Group not found."})
    assert await api.call("PUT", path, json={"name": "x"}) == (404, {"message": "Group not found."})
    assert [g["name"] for g in (await api.get("/v1/user/groups"))[1]["data"]] == ["attic", "Zone 9"]


async def test_group_names_are_one_a_group_per_user(api, other_api):
    first = await create_group(api, "Kitchen")
    second = await create_group(api, "Cellar")
    taken = (409, {"message": "A group with this name already exists."})
    assert await api.post("/v1/user/groups", json={"name": "kitchen"}) == taken
    assert await api.call("PUT", f"/v1/user/groups/{second['id']}", json={"name": "KITCHEN"}) == taken
    assert (await api.get(f"/v1/user/groups/{second['id']}"))[1]["data"]["name"] == "Cellar"
    assert (await api.call("PUT", f"/v1/user/groups/{first['id']}", json={"name": "kitchen"}))[0] == 200  # its own
    assert (await create_group(other_api, "Kitchen"))["name"] == "Kitchen"  # another user's names are theirs


@pytest.mark.parametrize("body, field, message", [
    ({}, "name", "The name field is required."),
    ({"name": " \t"}, "name", "The name field is required."),
    ({"name": 5}, "name", "The name field must be a string."),
    ({"name": "n" * 101}, "name", "The name field must not be greater than 100 characters."),
    ({"name": "ok", "description": "d" * 1001}, "description",
     "The description field must not be greater than 1000 characters."),
    ({"name": "ok", "description": ["x"]}, "description", "The description field must be a string."),
])
async def test_a_group_body_that_breaks_a_rule_is_422(api, body, field, message):
    status, answer = await api.post("/v1/user/groups", json=body)
    assert (status, answer) == (422, {"message": message, "errors": {field: [message]}})
    assert (await api.get("/v1/user/groups"))[1]["data"] == []
    group = await create_group(api, "kept")
    status, answer = await api.call("PUT", f"/v1/user/groups/{group['id']}", json=body or {"name": None})
    assert status == 422 and list(answer["errors"]) == [field]
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"] == group


async def test_a_user_has_at_most_1000_groups(api, backend):
    user = await backend.storage.users.for_token(api.token)
    for number in range(999):  # through storage: 1000 requests would take the token's writes of a minute
        await backend.storage.groups.create(user.id, f"g{number}", None, most=1000)
    await create_group(api, "the 1000th")
    assert await api.post("/v1/user/groups", json={"name": "one more"}) == (
        409, {"message": "A user can have at most 1000 groups."})
    assert len((await api.get("/v1/user/groups"))[1]["data"]) == 1000
    first = (await api.get("/v1/user/groups"))[1]["data"][0]
    assert (await api.delete(f"/v1/user/groups/{first['id']}"))[0] == 200
    await create_group(api, "one more")


@pytest.mark.parametrize("path", ["/v1/user/groups/9223372036854775808", "/v1/user/groups/99999",
                                  "/v1/user/groups/9223372036854775808/devices"])
async def test_a_group_id_that_is_none_is_404(api, path):
    assert await api.get(path) == (404, {"message": "Group not found."})


async def test_devices_are_added_several_at_once_and_removed_one_by_one(api):
    uids = await register_fleet(api)
    group = await create_group(api, "sensors")
    path = f"/v1/user/groups/{group['id']}/devices"
    status, body = await api.post(path, json={"uids": [uids["attic"], uids["Boiler"], uids["attic"]]})
    assert (status, body) == (200, {"message": "Devices added to the group.", "data": {**group, "device_count": 2}})
    assert (await add_members(api, group["id"], uids["Boiler"], uids["cellar"]))["device_count"] == 3  # one again
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 3
    assert (await api.get("/v1/user/groups"))[1]["data"][0]["device_count"] == 3

    status, body = await api.delete(f"{path}/{uids['Boiler']}")
    assert (status, body) == (200, {"message": "Device removed from the group.",
                                    "data": {**group, "device_count": 2}})
    assert await api.delete(f"{path}/{uids['Boiler']}") == (404, {"message": "The device is not in this group."})
    assert await api.delete(f"{path}/unix_nosuchdevice") == (404, {"message": "Device not found."})
    assert await api.delete(f"/v1/user/groups/99999/devices/{uids['attic']}") == (404, {"message": "Group not found."})
    assert (await names(api, path))[0] == ["attic", "cellar"]
    other = await create_group(api, "elsewhere")  # a device may be in several groups
    assert (await add_members(api, other["id"], uids["attic"]))["device_count"] == 1
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 2


async def test_adding_an_unknown_or_another_users_device_adds_nothing_and_names_it(api, other_api):
    uids = await register_fleet(api)
    theirs = (await other_api.register(name="bob's", platform="unix", board="unix"))["uid"]
    group = await create_group(api, "sensors")
    path = f"/v1/user/groups/{group['id']}/devices"
    status, body = await api.post(path, json={"uids": [uids["attic"], theirs, uids["cellar"], "unix_nosuchdevice"]})
    assert (status, body) == (404, {"message": f"Device not found: {theirs}, unix_nosuchdevice."})
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 0
    assert (await names(api, path))[1] == 0
    assert (await api.delete(f"{path}/{theirs}")) == (404, {"message": "Device not found."})
    unknown = [f"unix_unknown{i}" for i in range(5)]
    status, body = await api.post(path, json={"uids": [*unknown, uids["attic"], unknown[0]]})  # one named once
    assert (status, body) == (404, {"message": "Device not found: unix_unknown0, unix_unknown1, unix_unknown2"
                                               " (and 2 more)."})
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 0


@pytest.mark.parametrize("body, field, message", [
    ({}, "uids", "The uids field is required."),
    ({"uids": "unix_x"}, "uids", "The uids field must be a list of device uids."),
    ({"uids": []}, "uids", "The uids field must hold 1 to 1000 device uids."),
    ({"uids": ["unix_x"] * 1001}, "uids", "The uids field must hold 1 to 1000 device uids."),
    ({"uids": [None]}, "uids.0", "The uids.0 field must be a string."),
    ({"uids": ["unix_x", "u" * 78]}, "uids.1", "The uids.1 field must not be greater than 77 characters."),
])
async def test_a_members_body_that_breaks_a_rule_is_422(api, device, body, field, message):
    group = await create_group(api, "g")
    status, answer = await api.post(f"/v1/user/groups/{group['id']}/devices", json=body)
    assert (status, answer) == (422, {"message": message, "errors": {field: [message]}})


async def test_the_device_list_shows_each_devices_tags_and_groups(api, other_api):
    tagged, bare = await api.register(name="tagged"), await api.register(name="bare")
    assert (await api.post(f"/v1/user/devices/{tagged['uid']}/tags", json={"tags": ["b", "a"]}))[0] == 200
    groups = []
    for name in ("Upstairs", "attic"):
        status, body = await api.post("/v1/user/groups", json={"name": name})
        groups.append(body["data"]["id"])
        assert (await api.post(f"/v1/user/groups/{groups[-1]}/devices", json={"uids": [tagged["uid"]]}))[0] == 200
    await other_api.register(name="theirs")
    for path in ("/v1/user/devices", f"/v1/user/groups/{groups[0]}/devices"):
        _, body = await api.get(path)
        shown = {d["name"]: (d["tags"], d["groups"]) for d in body["data"]}
        assert shown["tagged"] == (["a", "b"], [{"id": groups[1], "name": "attic"},
                                                {"id": groups[0], "name": "Upstairs"}])
        if "bare" in shown:
            assert shown["bare"] == ([], [])


async def test_a_groups_devices_are_listed_with_the_device_lists_filters_sort_and_pages(api):
    uids = await register_fleet(api)
    group = await create_group(api, "most")
    await add_members(api, group["id"], *(uids[name] for name in ("Kitchen sensor", "attic", "Boiler", "cellar")))
    path = f"/v1/user/groups/{group['id']}/devices"
    status, body = await api.get(path)
    assert status == 200 and list(body) == ["data", "meta"]
    assert body["meta"] == {"total": 4, "limit": 50, "offset": 0}
    assert [d["name"] for d in body["data"]] == ["Kitchen sensor", "attic", "Boiler", "cellar"]  # registration order
    assert await names(api, path + "?sort=-name&limit=2") == (["Kitchen sensor", "cellar"], 4)
    assert await names(api, path + "?platform=espressif32&sort=name") == (["attic", "Boiler"], 2)
    assert await names(api, path + "?platform=unix") == ([], 0)  # garage is not in it
    await add_tags(api, uids["cellar"], "damp")
    await add_tags(api, uids["garage"], "damp")
    assert await names(api, path + "?tag=damp&search=ce") == (["cellar"], 1)
    assert await names(api, path + "?limit=1&offset=3") == (["cellar"], 4)
    status, body = await api.get(path + f"?group={group['id']}&tag=damp")  # the path names the group
    assert (status, body) == (422, {"message": "The group parameter is not known.",
                                    "errors": {"group": ["The group parameter is not known."]}})


# --- the device list's tag and group filters -------------------------------------------------------------


async def test_the_device_list_filters_by_tag_and_by_group(api, other_api):
    uids = await register_fleet(api)
    await add_tags(api, uids["Kitchen sensor"], "kitchen", "sensor")
    await add_tags(api, uids["Boiler"], "kitchen")
    await add_tags(api, uids["cellar"], "sensor")
    upstairs = await create_group(api, "upstairs")
    await add_members(api, upstairs["id"], uids["attic"], uids["Kitchen sensor"])
    assert await names(api, "/v1/user/devices?tag=kitchen") == (["Kitchen sensor", "Boiler"], 2)
    assert await names(api, "/v1/user/devices?tag=sensor&sort=-name") == (["Kitchen sensor", "cellar"], 2)
    assert await names(api, "/v1/user/devices?tag=none-has-it") == ([], 0)
    assert await names(api, f"/v1/user/devices?group={upstairs['id']}") == (["Kitchen sensor", "attic"], 2)
    assert await names(api, f"/v1/user/devices?group={upstairs['id']}&tag=kitchen") == (["Kitchen sensor"], 1)
    assert await names(api, f"/v1/user/devices?group={upstairs['id']}&platform=espressif32") == (["attic"], 1)
    assert await names(api, "/v1/user/devices?tag=kitchen&limit=1") == (["Kitchen sensor"], 2)  # counted past it
    assert await names(api, "/v1/user/devices?tag=kitchen&limit=1&offset=1") == (["Boiler"], 2)

    # Another user's tag is not theirs to find; their group is no group of this user's.
    theirs = (await other_api.register(name="bob's kitchen", platform="unix", board="unix"))["uid"]
    await add_tags(other_api, theirs, "kitchen")
    bobs = await create_group(other_api, "bob's")
    await add_members(other_api, bobs["id"], theirs)
    assert await names(other_api, "/v1/user/devices?tag=kitchen") == (["bob's kitchen"], 1)
    assert await names(api, "/v1/user/devices?tag=kitchen") == (["Kitchen sensor", "Boiler"], 2)
    status, body = await api.get(f"/v1/user/devices?group={bobs['id']}")
    assert (status, body) == (422, {"message": "The selected group is invalid.",
                                    "errors": {"group": ["The selected group is invalid."]}})
    assert await names(other_api, f"/v1/user/devices?group={bobs['id']}") == (["bob's kitchen"], 1)


async def test_the_filters_follow_a_device_that_comes_online(api):
    """A tag and a group filter combined with the status a real MQTT session sets."""
    registered = await api.register(name="online one", platform="unix", board="unix")
    await api.register(name="offline one", platform="unix", board="unix")
    group = await create_group(api, "both")
    uids = [d["uid"] for d in (await api.get("/v1/user/devices"))[1]["data"]]
    await add_members(api, group["id"], *uids)
    for uid in uids:
        await add_tags(api, uid, "lab")
    device = FakeDevice(registered["mqtt"], registered["port"])
    await device.connect()
    try:
        async def online():
            return (await names(api, f"/v1/user/devices?tag=lab&group={group['id']}&online=true"))[0]
        assert await eventually(online) == ["online one"]
        assert await names(api, f"/v1/user/groups/{group['id']}/devices?status=pending&tag=lab") == (["offline one"], 1)
    finally:
        await device.close()


# --- isolation, and what deletions take with them ----------------------------------------------------------


async def test_another_users_group_is_not_found_and_not_changed(api, other_api, device):
    group = await create_group(api, "mine", "kept")
    await add_members(api, group["id"], device["uid"])
    path = f"/v1/user/groups/{group['id']}"
    theirs = (await other_api.register(name="bob's", platform="unix", board="unix"))["uid"]
    not_found = (404, {"message": "Group not found."})
    assert await other_api.get(path) == not_found
    assert await other_api.call("PUT", path, json={"name": "bob's now"}) == not_found
    assert await other_api.delete(path) == not_found
    assert await other_api.get(path + "/devices") == not_found
    assert await other_api.post(path + "/devices", json={"uids": [theirs]}) == not_found
    assert await other_api.delete(path + f"/devices/{device['uid']}") == not_found
    assert (await other_api.get("/v1/user/groups"))[1]["data"] == []
    assert await api.get(path) == (200, {"data": {**group, "device_count": 1}})
    assert await names(api, path + "/devices") == (["test"], 1)
    # Nor may their device join a group of this user's, nor this user's device one of theirs.
    bobs = await create_group(other_api, "bob's")
    status, body = await other_api.post(f"/v1/user/groups/{bobs['id']}/devices", json={"uids": [device["uid"]]})
    assert (status, body) == (404, {"message": f"Device not found: {device['uid']}."})


async def test_deleting_a_device_takes_its_tags_and_memberships_with_it(api, backend):
    uids = await register_fleet(api)
    await add_tags(api, uids["attic"], "upstairs", "sensor")
    await add_tags(api, uids["cellar"], "sensor")
    group = await create_group(api, "sensors")
    await add_members(api, group["id"], uids["attic"], uids["cellar"])
    user = await backend.storage.users.for_token(api.token)
    device_id = (await backend.storage.devices.get(user.id, uids["attic"])).id
    assert (await api.delete(f"/v1/user/devices/{uids['attic']}"))[0] == 200
    assert (await api.get("/v1/user/tags"))[1]["data"] == [{"tag": "sensor", "device_count": 1}]
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 1
    assert await names(api, f"/v1/user/groups/{group['id']}/devices") == (["cellar"], 1)
    db = backend.storage.db
    assert (await db.fetch_one("SELECT count(*) FROM device_tags WHERE device_id = ?", (device_id,)))[0] == 0
    assert (await db.fetch_one("SELECT count(*) FROM group_members WHERE device_id = ?", (device_id,)))[0] == 0


async def test_deleting_a_group_leaves_its_devices(api):
    uids = await register_fleet(api)
    await add_tags(api, uids["attic"], "upstairs")
    group = await create_group(api, "doomed")
    await add_members(api, group["id"], uids["attic"], uids["garage"])
    assert (await api.delete(f"/v1/user/groups/{group['id']}"))[0] == 200
    assert (await names(api, "/v1/user/devices"))[1] == len(FLEET)
    assert (await api.get(f"/v1/user/devices/{uids['attic']}"))[1]["data"]["tags"] == ["upstairs"]
    again = await create_group(api, "doomed")  # the name is free again, and the new group empty
    assert again["device_count"] == 0 and (await names(api, f"/v1/user/groups/{again['id']}/devices"))[1] == 0


async def test_tags_and_groups_outlive_a_restart(api, backend):
    uid = (await api.register(name="kept", platform="unix", board="unix"))["uid"]
    await add_tags(api, uid, "kitchen")
    group = await create_group(api, "kept")
    await add_members(api, group["id"], uid)
    await backend.restart()
    assert (await api.get(tags_path(uid)))[1]["data"] == ["kitchen"]
    assert (await api.get(f"/v1/user/groups/{group['id']}"))[1]["data"]["device_count"] == 1
