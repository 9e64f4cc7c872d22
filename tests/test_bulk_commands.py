"""Bulk commands (POST /v1/user/commands, GET /v1/user/commands/bulk/{id}) and the offline queue (`ttl`), through
the HTTP API of a real app, with MQTT clients playing the devices (tests/fake_device.py) over the embedded broker."""

import asyncio
import traceback

import pytest
from mpfleet.backend import keys, schemas
from mpfleet.backend.bridge import BridgeUnavailable

from .fake_device import FakeDevice
from .polling import eventually, online_detail
from .test_command_pacing import backend  # noqa: F401: the app with a command timeout a test picks

BULK = "/v1/user/commands"
FINAL = ("done", "failed", "expired")


class Fleet:
    """Devices of one user: registered, and played by FakeDevice when connected."""

    def __init__(self, api, backend):
        self.api = api
        self.backend = backend
        self.playing = []

    async def add(self, name="board", *, connected=True, **kwargs):
        """A registered device ({"uid", "mqtt", ...}); with `connected`, its FakeDevice online (as "device")."""
        registered = await self.api.register(name=name, platform="unix", board="unix")
        if connected:
            registered["device"] = await self.connect(registered, **kwargs)
        return registered

    async def connect(self, registered, *, device_class=FakeDevice, **kwargs):
        device = device_class(registered["mqtt"], self.backend.client.app[keys.MQTT_PUBLIC].port, **kwargs)
        await device.connect()
        self.playing.append(device)
        await eventually(lambda: online_detail(self.api, device.uid))
        return device


@pytest.fixture
async def fleet(api, backend):  # noqa: F811
    fleet = Fleet(api, backend)
    yield fleet
    for device in fleet.playing:
        await device.close()


async def send(api, target, command, ttl=None, expect=202):
    body = {"target": target, "command": command, **({} if ttl is None else {"ttl": ttl})}
    status, answer = await api.post(BULK, json=body)
    assert status == expect, answer
    return answer["data"] if expect == 202 else answer


async def show(api, job_id, query=""):
    status, body = await api.get(f"{BULK}/bulk/{job_id}{query}")
    assert status == 200, body
    return body


async def finished(api, job_id, timeout=10.0):
    """The job once no device's command is open any more."""
    async def check():
        body = await show(api, job_id, "?limit=1000")
        return body["data"] if body["data"]["finished"] else None
    return await eventually(check, timeout=timeout)


def by_uid(job):
    return {d["uid"]: d for d in job["devices"]}


async def history(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}/commands?limit=500")
    return body["data"][::-1]


# --- targets and outcomes ------------------------------------------------------------------------------

async def test_uids_reach_every_online_device_and_the_offline_one_is_told_so(api, fleet):
    first, second, third = [await fleet.add(f"board-{i}", queue=4) for i in range(3)]
    away = await fleet.add("away", connected=False)
    uids = [first["uid"], away["uid"], second["uid"], third["uid"]]
    job = await send(api, {"uids": uids}, {"type": "reboot"})
    assert job["counts"] == {"queued": 3, "offline": 1} and job["device_count"] == 4 and not job["finished"]
    assert job["command"] == {"type": "reboot", "payload": None, "button": None}
    assert job["target"] == {"type": "uids"} and job["ttl"] is None

    done = await finished(api, job["id"])
    assert done["counts"] == {"done": 3, "offline": 1}
    assert [d["uid"] for d in done["devices"]] == uids  # the order given
    devices = by_uid(done)
    assert devices[away["uid"]] == {"uid": away["uid"], "state": "offline", "command_id": None, "result": None,
                                    "error": "Device is offline."}
    for board in (first, second, third):
        entry = devices[board["uid"]]
        assert (entry["state"], entry["result"], entry["error"]) == ("done", {"ok": True}, None)
        assert [(c["id"], c["type"]) for c in board["device"].commands] == [(entry["command_id"], "reboot")]
        # Each device's own command history has it, as a reboot sent to it alone.
        (command,) = await history(api, board["uid"])
        assert (command["id"], command["type"], command["state"]) == (entry["command_id"], "reboot", "done")
    assert await history(api, away["uid"]) == []


async def test_a_tag_targets_the_devices_that_have_it(api, fleet):
    tagged = [await fleet.add(f"kitchen-{i}") for i in range(2)]
    other = await fleet.add("hall")
    for board in tagged:
        await api.post(f"/v1/user/devices/{board['uid']}/tags", json={"tags": ["kitchen"]})
    job = await send(api, {"tag": "kitchen"}, {"type": "wifi_reset"})
    assert job["target"] == {"type": "tag", "tag": "kitchen"} and job["device_count"] == 2
    done = await finished(api, job["id"])
    assert sorted(by_uid(done)) == sorted(b["uid"] for b in tagged)
    assert [c["type"] for b in tagged for c in b["device"].commands] == ["wifi_reset", "wifi_reset"]
    assert other["device"].commands == []


async def test_a_group_targets_its_devices_and_an_empty_or_foreign_group_nothing(api, other_api, fleet):
    members = [await fleet.add(f"member-{i}") for i in range(2)]
    outsider = await fleet.add("outsider")
    group = (await api.post("/v1/user/groups", json={"name": "Ground floor"}))[1]["data"]
    await api.post(f"/v1/user/groups/{group['id']}/devices", json={"uids": [m["uid"] for m in members]})
    job = await send(api, {"group": group["id"]}, {"type": "custom", "payload": {"cmd": "ping"}})
    assert job["target"] == {"type": "group", "group": group["id"]}
    done = await finished(api, job["id"])
    assert done["counts"] == {"done": 2}
    assert [c["payload"] for m in members for c in m["device"].commands] == [{"cmd": "ping"}] * 2
    assert outsider["device"].commands == []

    empty = (await api.post("/v1/user/groups", json={"name": "Attic"}))[1]["data"]
    message = "The target matches no device."
    assert await send(api, {"group": empty["id"]}, {"type": "reboot"}, expect=422) == {
        "message": message, "errors": {"target": [message]}}
    assert await send(other_api, {"group": group["id"]}, {"type": "reboot"}, expect=404) == {
        "message": "Group not found."}


async def test_a_filter_targets_what_the_device_list_lists(api, fleet):
    online = [await fleet.add(f"online-{i}") for i in range(3)]
    away = await fleet.add("away", connected=False)
    for board in (online[0], online[1], away):
        await api.post(f"/v1/user/devices/{board['uid']}/tags", json={"tags": ["floor-2"]})
    _, listed = await api.get("/v1/user/devices?online=true&tag=floor-2")
    job = await send(api, {"filter": {"online": True, "tag": "floor-2"}}, {"type": "reboot"})
    assert job["target"] == {"type": "filter", "filter": {"online": True, "tag": "floor-2"}}
    done = await finished(api, job["id"])
    assert [d["uid"] for d in done["devices"]] == [d["uid"] for d in listed["data"]] == [online[0]["uid"],
                                                                                          online[1]["uid"]]
    assert online[2]["device"].commands == []

    # The empty filter is every device of the caller's, in registration order.
    job = await send(api, {"filter": {}}, {"type": "custom", "payload": {"cmd": "ping"}})
    done = await finished(api, job["id"])
    assert [d["uid"] for d in done["devices"]] == [b["uid"] for b in (*online, away)]
    assert done["counts"] == {"done": 3, "offline": 1}


async def test_a_custom_payload_and_the_devices_own_outcomes(api, fleet):
    good = await fleet.add("good")
    bad = await fleet.add("bad", handler=lambda command: ("failed", None, "ValueError: no relay"))
    silent = await fleet.add("silent", handler=lambda command: None)  # accepts, never finishes
    payload = {"cmd": "relay", "on": True}
    job = await send(api, {"uids": [good["uid"], bad["uid"], silent["uid"]]}, {"type": "custom", "payload": payload})
    assert job["command"] == {"type": "custom", "payload": payload, "button": None}

    async def settled():
        body = await show(api, job["id"])
        return body["data"] if body["data"]["counts"] == {"accepted": 1, "done": 1, "failed": 1} else None

    devices = by_uid(await eventually(settled))
    assert devices[bad["uid"]]["error"] == "ValueError: no relay" and devices[bad["uid"]]["state"] == "failed"
    assert devices[silent["uid"]]["state"] == "accepted"
    assert [c["payload"] for c in good["device"].commands] == [payload]


async def test_a_button_sends_each_device_its_own_and_one_without_it_is_told_so(api, fleet):
    boards = [await fleet.add(f"relay-{i}") for i in range(3)]
    for channel, board in enumerate(boards[:2], start=1):
        await api.post(f"/v1/user/devices/{board['uid']}/command-buttons",
                       json={"id": "relay_on", "label": "On", "payload": {"cmd": "on", "channel": channel}})
    job = await send(api, {"uids": [b["uid"] for b in boards]}, {"type": "button", "button": "relay_on"})
    assert job["counts"] == {"queued": 2, "no_button": 1}
    assert job["command"] == {"type": "button", "payload": None, "button": "relay_on"}
    devices = by_uid(await finished(api, job["id"]))
    assert [c["payload"] for c in boards[0]["device"].commands] == [{"cmd": "on", "channel": 1}]
    assert [c["payload"] for c in boards[1]["device"].commands] == [{"cmd": "on", "channel": 2}]
    assert [c["type"] for c in boards[0]["device"].commands] == ["custom"]  # as the button's own send
    assert boards[2]["device"].commands == []
    assert devices[boards[2]["uid"]] == {"uid": boards[2]["uid"], "state": "no_button", "command_id": None,
                                         "result": None, "error": "Command button not found."}


async def test_a_disabled_device_gets_nothing_even_with_a_ttl(api, fleet):
    board = await fleet.add("board")
    off = await fleet.add("off", connected=False)
    await api.patch(f"/v1/user/devices/{off['uid']}", json={"enabled": False})
    job = await send(api, {"uids": [board["uid"], off["uid"]]}, {"type": "reboot"}, ttl=600)
    assert job["counts"] == {"queued": 1, "disabled": 1}
    devices = by_uid(await finished(api, job["id"]))
    assert (devices[off["uid"]]["state"], devices[off["uid"]]["error"]) == ("disabled", "Device is disabled.")
    assert await history(api, off["uid"]) == []


async def test_an_unpublished_command_fails_its_device(api, fleet, backend, monkeypatch):  # noqa: F811
    boards = [await fleet.add(f"board-{i}") for i in range(2)]

    async def no_broker(uid, command):
        raise BridgeUnavailable("connection lost")

    monkeypatch.setattr(backend.bridge, "send_command", no_broker)
    job = await send(api, {"uids": [b["uid"] for b in boards]}, {"type": "reboot"})
    done = await finished(api, job["id"])
    assert done["counts"] == {"failed": 2}
    assert {d["error"] for d in done["devices"]} == {"not published: connection lost"}


# --- one transaction for the job, one claim for its devices --------------------------------------------

class SilentDevice(FakeDevice):
    """A device that takes its commands and never acks them: nothing of its own reaches the database."""

    async def _run(self, command):
        pass


async def test_a_job_is_one_transaction_and_one_claim(api, fleet, backend, monkeypatch):  # noqa: F811
    devices = [(await fleet.add(f"silent-{i}", device_class=SilentDevice, queue=4))["device"] for i in range(20)]
    database = backend.storage.db
    opened = []  # the write transactions of the request and what it started (maintenance's expiry rounds aside)
    transaction = database.transaction

    def counted():
        if "expire_commands" not in {frame.name for frame in traceback.extract_stack()}:
            opened.append(1)
        return transaction()

    monkeypatch.setattr(database, "transaction", counted)
    job = await send(api, {"filter": {"online": True}}, {"type": "reboot"})

    async def all_received():
        return all(len(d.commands) == 1 for d in devices)

    await eventually(all_received)
    await asyncio.sleep(0.2)  # anything late
    assert len(opened) == 2  # the job with its 20 commands; then one claim of all of them (not 20 claims)
    assert (await show(api, job["id"]))["data"]["counts"] == {"sent": 20}


# --- the offline queue (ttl) -----------------------------------------------------------------------------

async def test_with_a_ttl_an_offline_device_gets_its_commands_in_order_when_it_comes_back(api, fleet):
    away = await fleet.add("away", connected=False)
    base = f"/v1/user/devices/{away['uid']}"
    status, first = await api.post(base + "/commands?ttl=600", json={"payload": {"i": 0}})
    assert (status, first["message"], first["state"]) == (200, "Command sent.", "queued")  # the seed's message
    job = await send(api, {"uids": [away["uid"]]}, {"type": "custom", "payload": {"i": 1}}, ttl=600)
    assert job["counts"] == {"queued": 1} and job["ttl"] == 600
    await api.post(base + "/command-buttons", json={"id": "two", "label": "2", "payload": {"i": 2}})
    status, button = await api.post(base + "/command-buttons/two/send?ttl=600")
    assert (status, button["state"]) == (200, "queued")
    status, reboot = await api.post(base + "/reboot?ttl=600")
    assert (status, reboot["message"], reboot["state"]) == (200, "Reboot command sent.", "queued")
    await asyncio.sleep(0.5)
    assert [c["state"] for c in await history(api, away["uid"])] == ["queued"] * 4

    device = await fleet.connect(away, queue=1)  # one at a time: each waits for the one before

    async def all_done():
        commands = await history(api, away["uid"])
        return commands if [c["state"] for c in commands] == ["done"] * 4 else None

    commands = await eventually(all_done)
    assert [c.get("payload", {}).get("i") for c in device.commands] == [0, 1, 2, None]
    assert device.ran == [c["id"] for c in commands] and device.busy == []
    assert (await finished(api, job["id"]))["counts"] == {"done": 1}


async def test_a_command_whose_ttl_passes_expires(api, fleet):
    away = await fleet.add("away", connected=False)
    _, single = await api.post(f"/v1/user/devices/{away['uid']}/reboot?ttl=1")
    job = await send(api, {"uids": [away["uid"]]}, {"type": "reboot"}, ttl=1)
    done = await finished(api, job["id"], timeout=5)
    assert done["counts"] == {"expired": 1} and done["devices"][0]["error"] == "not sent within its ttl"
    _, body = await api.get(f"/v1/user/devices/{away['uid']}/commands/{single['id']}")
    assert (body["data"]["state"], body["data"]["error"]) == ("expired", "not sent within its ttl")


@pytest.mark.parametrize("backend", [2.0], indirect=True)
async def test_queued_commands_with_a_ttl_wait_while_the_device_is_away(api, fleet):
    board = await fleet.add("board", queue=1, handler=lambda command: None)  # takes the first, never finishes
    path = f"/v1/user/devices/{board['uid']}/commands"
    at_board = (await api.post(path, json={"payload": {"i": 0}}))[1]
    without = (await api.post(path, json={"payload": {"i": 1}}))[1]
    waiting = (await api.post(path + "?ttl=600", json={"payload": {"i": 2}}))[1]
    assert (without["state"], waiting["state"]) == ("queued", "queued")
    await board["device"].disconnect()

    async def states():
        return {c["id"]: (c["state"], c["error"]) for c in await history(api, board["uid"])}

    async def gone_offline():
        now = await states()
        return now if now[without["id"]] == ("expired", "not sent: the device went offline") else None

    assert (await eventually(gone_offline))[waiting["id"]] == ("queued", None)
    device = await fleet.connect(board, queue=1)  # the first expires unanswered (2 s), then the held one goes

    async def delivered():
        return (await states())[waiting["id"]] == ("done", None)

    await eventually(delivered, timeout=10)
    assert [c["payload"] for c in device.commands] == [{"i": 2}]
    assert (await states())[at_board["id"]] == ("expired", "no acknowledgement in time")


@pytest.mark.parametrize("ttl", ["0", "604801", "-1", "1.5", "soon", ""])
@pytest.mark.parametrize("suffix, body", [
    ("/reboot", None), ("/wifi-reset", None), ("/commands", {"payload": {"cmd": "x"}}),
    ("/command-buttons/relay_on/send", None),
])
async def test_ttl_must_be_whole_seconds_up_to_a_week(api, fleet, suffix, body, ttl):
    away = await fleet.add("away", connected=False)
    base = f"/v1/user/devices/{away['uid']}"
    await api.post(base + "/command-buttons", json={"id": "relay_on", "label": "On", "payload": {"cmd": "on"}})
    message = "The ttl parameter must be an integer from 1 to 604800."
    assert await api.post(f"{base}{suffix}?ttl={ttl}", json=body) == (
        422, {"message": message, "errors": {"ttl": [message]}})
    assert await history(api, away["uid"]) == []


# --- isolation ---------------------------------------------------------------------------------------------

async def test_another_users_devices_tags_and_jobs_are_invisible(api, other_api, fleet):
    mine = await fleet.add("mine")
    await api.post(f"/v1/user/devices/{mine['uid']}/tags", json={"tags": ["kitchen"]})
    job = await send(api, {"uids": [mine["uid"]]}, {"type": "reboot"})
    assert await other_api.get(f"{BULK}/bulk/{job['id']}") == (404, {"message": "Bulk command not found."})
    assert await api.get(f"{BULK}/bulk/nosuchjob") == (404, {"message": "Bulk command not found."})

    theirs = await other_api.register(name="theirs", platform="unix", board="unix")
    assert await send(other_api, {"uids": [theirs["uid"], mine["uid"]]}, {"type": "reboot"}, expect=404) == {
        "message": f"Device not found: {mine['uid']}."}
    message = "The target matches no device."
    assert await send(other_api, {"tag": "kitchen"}, {"type": "reboot"}, expect=422) == {
        "message": message, "errors": {"target": [message]}}
    everything = await send(other_api, {"filter": {}}, {"type": "reboot"}, ttl=60)
    assert everything["counts"] == {"queued": 1}
    assert [d["uid"] for d in (await show(other_api, everything["id"]))["data"]["devices"]] == [theirs["uid"]]
    await finished(api, job["id"])
    assert len(mine["device"].commands) == 1  # the one of its own user's job


# --- validation and limits -----------------------------------------------------------------------------------

REBOOT = {"type": "reboot"}
EVERY = {"filter": {}}  # every device of the caller's
ONE_KIND = "The target field must have exactly one of uids, tag, group, filter."
AN_ID = "must be an integer from 1 to 9223372036854775807."


def targeting(chosen, **errors):
    """(a body of the target `chosen` and a reboot, the errors {field: [message]} it is answered: target_uids_1 is
    the field target.uids.1)."""
    return {"target": chosen, "command": REBOOT}, {field.replace("_", "."): [m] for field, m in errors.items()}


def commanding(chosen, **errors):
    return {"target": EVERY, "command": chosen}, {field.replace("_", "."): [m] for field, m in errors.items()}


@pytest.mark.parametrize("body, errors", [
    ({}, {"target": ["The target field is required."], "command": ["The command field is required."]}),
    ({"target": [], "command": 5}, {"target": ["The target field must be a JSON object."],
                                    "command": ["The command field must be a JSON object."]}),
    targeting({"uids": ["a"], "tag": "t"}, target=ONE_KIND),
    targeting({"devices": ["a"]}, target=ONE_KIND),
    targeting({"uids": []}, target_uids="The target.uids field must hold 1 to 10000 device uids."),
    targeting({"uids": "a"}, target_uids="The target.uids field must be a list of device uids."),
    targeting({"uids": ["a", 5, {}]}, target_uids_1="The target.uids.1 field must be a string.",
              target_uids_2="The target.uids.2 field must be a string."),
    targeting({"tag": "Bad Tag"}, target_tag=f"The target.tag field must be {schemas.TAG_RULE}."),
    targeting({"group": 0}, target_group=f"The target.group field {AN_ID}"),
    targeting({"group": "1"}, target_group=f"The target.group field {AN_ID}"),
    targeting({"filter": []}, target_filter="The target.filter field must be a JSON object."),
    targeting({"filter": {"colour": "red", "sort": "name"}},
              target_filter_colour="The target.filter.colour field is not known.",
              target_filter_sort="The target.filter.sort field is not known."),
    targeting({"filter": {"status": "sleeping", "board": "nope"}},
              target_filter_status="The selected target.filter.status is invalid.",
              target_filter_board="The selected target.filter.board is invalid."),
    targeting({"filter": {"online": "true"}},
              target_filter_online="The target.filter.online field must be true or false."),
    targeting({"filter": {"search": 5, "firmware": ""}},
              target_filter_search="The target.filter.search field must be a string.",
              target_filter_firmware="The target.filter.firmware field must be an md5 or a version of 1 to 64"
              " characters."),
    targeting({"filter": {"group": True}}, target_filter_group=f"The target.filter.group field {AN_ID}"),
    targeting({"filter": {"group": 12345}}, target_filter_group="The selected target.filter.group is invalid."),
    commanding({}, command_type="The command.type field is required."),
    commanding({"type": "explode"}, command_type="The selected command.type is invalid."),
    commanding({"type": "custom"}, command_payload="The command.payload field is required."),
    commanding({"type": "custom", "payload": {"x": "y" * 4096}},
               command_payload="The command.payload field must not be larger than 4096 bytes as JSON."),
    commanding({"type": "button"}, command_button="The command.button field is required."),
    commanding({"type": "button", "button": "Relay On"}, command_button="The command.button field must contain only"
               " lowercase letters, digits, dashes and underscores."),
    *[({"target": EVERY, "command": REBOOT, "ttl": ttl},
       {"ttl": ["The ttl field must be an integer from 1 to 604800."]}) for ttl in (0, 604801, "60", 1.5, True, None)],
])
async def test_a_bad_request_is_422_naming_each_field_and_sends_nothing(api, fleet, body, errors):
    board = await fleet.add("board")
    status, answer = await api.post(BULK, json=body)
    first = next(iter(errors.values()))[0]
    more = sum(len(m) for m in errors.values()) - 1
    assert (status, answer["errors"]) == (422, errors)
    assert answer["message"] == first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    assert await history(api, board["uid"]) == [] and board["device"].commands == []


async def test_a_job_takes_at_most_its_limit_of_devices(api, fleet, monkeypatch):
    boards = [await fleet.add(f"board-{i}") for i in range(3)]
    uids = [f"unix_{i:012d}" for i in range(schemas.BULK_MAX_DEVICES + 1)]
    message = "The target.uids field must hold 1 to 10000 device uids."
    assert await send(api, {"uids": uids}, REBOOT, expect=422) == {
        "message": message, "errors": {"target.uids": [message]}}
    monkeypatch.setattr(schemas, "BULK_MAX_DEVICES", 2)  # a filter that selects more than a job takes
    message = "The target must not match more than 2 devices."
    assert await send(api, {"filter": {}}, REBOOT, expect=422) == {"message": message, "errors": {"target": [message]}}
    assert [await history(api, b["uid"]) for b in boards] == [[], [], []]
    assert (await send(api, {"uids": [b["uid"] for b in boards[:2]]}, REBOOT))["device_count"] == 2


async def test_a_uid_named_twice_is_commanded_once(api, fleet):
    board = await fleet.add("board")
    job = await send(api, {"uids": [board["uid"], board["uid"]]}, REBOOT)
    assert job["device_count"] == 1
    await finished(api, job["id"])
    assert len(board["device"].commands) == 1


# --- the job's devices, page by page ---------------------------------------------------------------------------

async def test_the_devices_come_in_pages_and_by_state(api, fleet):
    online = [await fleet.add(f"online-{i}") for i in range(3)]
    away = [await fleet.add(f"away-{i}", connected=False) for i in range(2)]
    uids = [b["uid"] for b in (online[0], away[0], online[1], away[1], online[2])]
    job = await send(api, {"uids": uids}, REBOOT)
    await finished(api, job["id"])

    body = await show(api, job["id"], "?limit=2")
    assert [d["uid"] for d in body["data"]["devices"]] == uids[:2]
    assert body["meta"] == {"total": 5, "limit": 2, "offset": 0}
    assert body["data"]["counts"] == {"done": 3, "offline": 2}  # the whole job's, whatever the page
    body = await show(api, job["id"], "?limit=2&offset=4")
    assert [d["uid"] for d in body["data"]["devices"]] == uids[4:]
    body = await show(api, job["id"], "?state=offline")
    assert [d["uid"] for d in body["data"]["devices"]] == [away[0]["uid"], away[1]["uid"]]
    assert body["meta"] == {"total": 2, "limit": 100, "offset": 0}
    body = await show(api, job["id"], "?state=expired")
    assert body["data"]["devices"] == [] and body["meta"]["total"] == 0

    for query, name, message in [
        ("?state=asleep", "state", "The selected state is invalid."),
        ("?limit=0", "limit", "The limit parameter must be an integer from 1 to 1000."),
        ("?limit=1001", "limit", "The limit parameter must be an integer from 1 to 1000."),
        ("?offset=-1", "offset", "The offset parameter must be an integer from 0 to 9223372036854775807."),
    ]:
        answer = await api.get(f"{BULK}/bulk/{job['id']}{query}")
        assert answer == (422, {"message": message, "errors": {name: [message]}})
