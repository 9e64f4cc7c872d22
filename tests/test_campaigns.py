"""OTA campaigns (POST /v1/user/campaigns and the rest of /v1/user/campaigns) through the HTTP API of a real app, with
MQTT clients playing the boards (tests/fake_device.py, as tests/test_ota_backend.py plays one through an OTA: its
`ota` reports, and its status on the md5 it runs after the reboot), and the live events over a real WebSocket."""

import asyncio
from datetime import datetime

import pytest
from mpfleet.backend import schemas
from mpfleet.backend.errors import ValidationError
from mpfleet.backend.storage import campaigns as storage_campaigns

from .polling import eventually
from .test_live_events import watch
from .test_ota_backend import NEW, OLD, Board, form, md5, ota_backend, start_backend  # noqa: F401: a fixture

CAMPAIGNS = "/v1/user/campaigns"


@pytest.fixture
def backend(ota_backend):
    """The app whose device listener boards reach (test_ota_backend's); conftest's `api` is its alice."""
    return ota_backend


@pytest.fixture
async def events(api):
    """The user's live events (a WebSocket), closed after the test however it ends."""
    ws = await watch(api)
    yield ws
    await ws.close()


@pytest.fixture
async def boards():
    """The boards a test made (closed after it)."""
    made = []
    yield made
    for board in made:
        await board.close()


async def board(api, boards, *, online=True, firmware=NEW, running=OLD):
    """A unix board with `firmware` uploaded (None: none), and, `online`, connected reporting `running`'s md5. Its
    target is not set: the campaign sets it."""
    made = Board(api, await api.register(platform="unix", board="unix"))
    boards.append(made)
    if firmware is not None:
        status, body = await api.post(made.path + "/firmwares", data=form(firmware, "release"))
        assert status == 201, body
    if online:
        await made.come_back(running)
    return made


async def start(api, target, expect=201, **fields):
    body = {"name": "release 2.0", "md5": md5(NEW), "target": target, **fields}
    if "wave_size" not in fields and "wave_percent" not in fields:
        body["wave_size"] = 1
    status, answer = await api.post(CAMPAIGNS, json=body)
    assert status == expect, answer
    return answer["data"] if expect == 201 else answer


async def show(api, campaign_id):
    status, body = await api.get(f"{CAMPAIGNS}/{campaign_id}")
    assert status == 200, body
    return body["data"]


async def devices(api, campaign_id, query=""):
    status, body = await api.get(f"{CAMPAIGNS}/{campaign_id}/devices{query}")
    assert status == 200, body
    return {d["uid"]: d for d in body["data"]}


async def in_state(api, campaign_id, state):
    async def check():
        campaign = await show(api, campaign_id)
        return campaign if campaign["state"] == state else None

    return await eventually(check, timeout=10)


def ota_commands(board):
    return [c for c in board.device.commands if c["type"] == "ota"]


async def ota_command(board):
    """The `ota` command the board was sent (waiting for it)."""
    async def sent():
        return (ota_commands(board) or [None])[-1]

    return await eventually(sent, timeout=10)


async def update(board):
    """The board goes through its OTA: verified, applying, and back on the new md5."""
    command = await ota_command(board)
    await board.device.report_ota(command["id"], "verified")
    await board.device.report_ota(command["id"], "applying")
    await board.job_in("applying")
    await board.come_back(NEW)
    await board.job_in("updated")
    return command


async def fail(board, error="md5 mismatch: got 0123, expected 4567"):
    command = await ota_command(board)
    await board.device.report_ota(command["id"], "failed", error=error)
    await board.job_in("failed")
    return command


async def event_where(ws, check, timeout=10):
    """The next campaign event for which check(event) is true (the others skipped)."""
    async def receive():
        while True:
            event = await ws.receive_json()
            if event["type"] == "campaign" and check(event):
                return event
    return await asyncio.wait_for(receive(), timeout)


def at(stamp):
    return datetime.fromisoformat(stamp).timestamp()


# --- waves ---------------------------------------------------------------------------------------


async def test_waves_go_one_after_the_other_each_once_the_one_before_is_final(api, boards, events):
    fleet = [await board(api, boards) for _ in range(3)]
    ws = events
    campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_size=1)
    assert (campaign["state"], campaign["wave_count"], campaign["wave_size"]) == ("running", 3, 1)
    assert campaign["counts"] == {"pending": 3} and [w["size"] for w in campaign["waves"]] == [1, 1, 1]
    first = await ota_command(fleet[0])
    assert first["payload"]["md5"] == md5(NEW)
    # A step after the first job moved on has run: the second wave has not started while the first is open.
    await fleet[0].device.report_ota(first["id"], "downloading", progress=50)
    await event_where(ws, lambda e: e["counts"].get("downloading") == 1)
    members = await devices(api, campaign["id"])
    assert [members[b.uid]["state"] for b in fleet] == ["downloading", "pending", "pending"]
    assert members[fleet[0].uid]["job_id"] == first["id"] and members[fleet[0].uid]["wave"] == 1
    assert ota_commands(fleet[1]) == ota_commands(fleet[2]) == []
    target = (await api.get(fleet[0].path))[1]["data"]["target_firmware"]
    assert target["md5"] == md5(NEW)  # the campaign made the uploaded firmware its target, as set-target does

    await update(fleet[0])
    event = await event_where(ws, lambda e: e["wave"] == 2)
    assert event["state"] == "running" and event["counts"].get("updated") == 1
    await ota_command(fleet[1])
    assert ota_commands(fleet[2]) == [] and (await devices(api, campaign["id"]))[fleet[2].uid]["state"] == "pending"
    await update(fleet[1])
    await update(fleet[2])
    done = await in_state(api, campaign["id"], "completed")
    assert done["counts"] == {"updated": 3} and done["attempted"] == 3 and done["failures"] == 0
    assert done["ended_at"] is not None and done["wave"] == 3
    waves = done["waves"]
    assert all(w["counts"] == {"updated": 1} for w in waves)
    for before, after in zip(waves, waves[1:]):
        assert at(before["started_at"]) <= at(before["final_at"]) <= at(after["started_at"])
    await event_where(ws, lambda e: e["state"] == "completed")
    for b in fleet:  # each an ordinary OTA job, on the device's own history
        assert (await b.job())["state"] == "updated"


async def test_the_next_wave_waits_its_pause_after_the_one_before_is_final(api, boards):
    fleet = [await board(api, boards) for _ in range(2)]
    campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_size=1, pause_seconds=2)
    assert campaign["pause_seconds"] == 2
    await update(fleet[0])
    await ota_command(fleet[1])
    seen = datetime.now().timestamp()
    waves = (await show(api, campaign["id"]))["waves"]
    assert at(waves[1]["started_at"]) - at(waves[0]["final_at"]) >= 2
    assert seen - at(waves[0]["final_at"]) >= 2  # the board had nothing before the pause had passed


async def test_a_wave_percent_makes_waves_of_that_share_rounded_up(api, boards):
    fleet = [await board(api, boards) for _ in range(5)]
    campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_percent=50)
    assert (campaign["wave_size"], campaign["wave_percent"], campaign["wave_count"]) == (3, 50, 2)
    assert [w["size"] for w in campaign["waves"]] == [3, 2]
    for b in fleet[:3]:
        await ota_command(b)
    members = await devices(api, campaign["id"], "?wave=2")
    assert set(members) == {fleet[3].uid, fleet[4].uid} and {m["state"] for m in members.values()} == {"pending"}


async def test_devices_that_need_no_update_or_have_no_firmware_get_no_job(api, boards):
    current = await board(api, boards, running=NEW)
    bare = await board(api, boards, firmware=None)
    normal = await board(api, boards)
    campaign = await start(api, {"uids": [current.uid, bare.uid, normal.uid]}, wave_size=1)
    assert campaign["counts"] == {"pending": 1, "up_to_date": 1, "no_firmware": 1} and campaign["wave_count"] == 1
    members = await devices(api, campaign["id"])
    assert members[current.uid] == {"uid": current.uid, "wave": None, "job_id": None, "state": "up_to_date",
                                    "error": "The device runs this firmware already."}
    assert members[bare.uid]["error"] == "Firmware with the provided md5 was not found for this device."
    await update(normal)
    done = await in_state(api, campaign["id"], "completed")
    assert done["counts"] == {"updated": 1, "up_to_date": 1, "no_firmware": 1}
    assert ota_commands(current) == []


# --- halting -------------------------------------------------------------------------------------


async def test_failures_above_the_threshold_halt_the_campaign_and_the_next_wave_never_starts(api, boards):
    fleet = [await board(api, boards) for _ in range(6)]
    await asyncio.gather(*(api.post(b.path + "/tags", json={"tags": ["kitchen"]}) for b in fleet))
    campaign = await start(api, {"tag": "kitchen"}, wave_size=5)  # max_failure_percent 10 by default
    assert campaign["max_failure_percent"] == 10 and campaign["wave_count"] == 2
    assert campaign["target"] == {"type": "tag", "tag": "kitchen"}
    order = [uid for uid in await devices(api, campaign["id"])]  # registration order
    wave_1 = [b for b in fleet if b.uid in order[:5]]
    for b in wave_1:
        await ota_command(b)
    await fail(wave_1[0])  # 1 of 5 given a job: 20 % > 10 %
    halted = await in_state(api, campaign["id"], "halted")
    assert halted["reason"] == ("1 of the 5 devices given the OTA failed, rolled back or expired (20 %), more than the"
                                " campaign's 10 %.")
    assert halted["ended_at"] is not None and halted["counts"]["skipped"] == 1
    last = next(b for b in fleet if b.uid == order[5])
    member = (await devices(api, campaign["id"]))[last.uid]
    assert member["state"] == "skipped" and member["error"] == "The campaign was halted before this device got its OTA."
    # The jobs under way go on, and the campaign shows how they end; it stays halted.
    for b in wave_1[1:]:
        await update(b)
    after = await show(api, campaign["id"])
    assert after["state"] == "halted" and after["counts"] == {"updated": 4, "failed": 1, "skipped": 1}
    assert ota_commands(last) == []
    status, body = await api.post(f"{CAMPAIGNS}/{campaign['id']}/resume")
    assert status == 409 and body["message"] == "Only a paused campaign can be resumed; this one is halted."


async def test_failures_within_the_threshold_or_before_the_minimum_count_do_not_halt(api, boards):
    fleet = [await board(api, boards) for _ in range(2)]
    campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_size=1, max_failure_percent=0)
    command = await ota_command(fleet[0])  # it rolls back: 1 of 1 failed, but fewer than 5 were tried
    await fleet[0].device.report_ota(command["id"], "verified")
    await fleet[0].device.report_ota(command["id"], "applying")
    await fleet[0].job_in("applying")
    await fleet[0].come_back(OLD)
    await fleet[0].job_in("rolled_back")
    await update(fleet[1])
    done = await in_state(api, campaign["id"], "completed")
    assert done["counts"] == {"updated": 1, "rolled_back": 1} and done["failures"] == 1 and done["reason"] is None
    assert (await devices(api, campaign["id"]))[fleet[0].uid]["error"] == "the device came back on its previous" \
                                                                          " firmware"


# --- pause, resume, cancel -----------------------------------------------------------------------


async def test_a_paused_campaign_starts_no_wave_until_resumed_and_a_cancelled_one_skips_the_rest(api, boards,
                                                                                                  events):
    fleet = [await board(api, boards) for _ in range(3)]
    ws = events
    campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_size=1)
    path = f"{CAMPAIGNS}/{campaign['id']}"
    await ota_command(fleet[0])
    status, body = await api.post(path + "/pause")
    assert status == 200 and body["message"] == "Campaign paused." and body["data"]["state"] == "paused"
    assert await api.post(path + "/pause") == (409, {"message": "Only a running campaign can be paused; this one is"
                                                                " paused."})
    await update(fleet[0])  # the job under way goes on
    event = await event_where(ws, lambda e: e["counts"].get("updated") == 1)
    assert event["state"] == "paused" and event["wave"] == 1
    assert ota_commands(fleet[1]) == [] and (await devices(api, campaign["id"]))[fleet[1].uid]["state"] == "pending"

    status, body = await api.post(path + "/resume")
    assert status == 200 and body["message"] == "Campaign resumed." and body["data"]["state"] == "running"
    await ota_command(fleet[1])
    status, body = await api.post(path + "/cancel")
    assert status == 200 and body["message"] == "Campaign cancelled." and body["data"]["state"] == "cancelled"
    members = await devices(api, campaign["id"])
    assert members[fleet[2].uid]["state"] == "skipped"
    assert members[fleet[2].uid]["error"] == "The campaign was cancelled before this device got its OTA."
    await update(fleet[1])  # an OTA already sent is not taken back
    cancelled = await show(api, campaign["id"])
    assert cancelled["state"] == "cancelled" and cancelled["counts"] == {"updated": 2, "skipped": 1}
    assert ota_commands(fleet[2]) == []
    for action in ("pause", "resume", "cancel"):
        status, body = await api.post(f"{path}/{action}")
        assert status == 409 and body["message"].endswith("this one is cancelled."), body
    await event_where(ws, lambda e: e["state"] == "cancelled")


# --- offline devices, restarts -------------------------------------------------------------------


@pytest.mark.parametrize("few_waiting", [200, 0], ids=["among the waiting", "among the online"])
async def test_a_device_offline_at_its_wave_gets_the_ota_when_it_returns(api, boards, monkeypatch, few_waiting):
    monkeypatch.setattr(storage_campaigns, "_FEW_WAITING", few_waiting)  # how the step looks for devices back
    away = await board(api, boards, online=False)
    here = await board(api, boards)
    campaign = await start(api, {"uids": [away.uid, here.uid]}, wave_size=2)
    await update(here)

    async def waiting():
        member = (await devices(api, campaign["id"]))[away.uid]
        return member if member["state"] == "waiting" else None

    member = await eventually(waiting)
    assert member["error"] == "Device is offline." and member["job_id"] is None
    running = await show(api, campaign["id"])
    assert running["state"] == "running" and running["counts"] == {"waiting": 1, "updated": 1}
    await away.come_back(OLD)
    command = await update(away)
    done = await in_state(api, campaign["id"], "completed")
    assert done["counts"] == {"updated": 2}
    assert (await devices(api, campaign["id"]))[away.uid]["job_id"] == command["id"]


async def test_a_backend_restart_mid_campaign_loses_nothing(tmp_path, boards):
    backend = await start_backend(tmp_path)
    try:
        api = await backend.api_for("alice")
        fleet = [await board(api, boards) for _ in range(2)]
        campaign = await start(api, {"uids": [b.uid for b in fleet]}, wave_size=1)
        command = await ota_command(fleet[0])
        await fleet[0].device.report_ota(command["id"], "downloading", progress=30)
        await fleet[0].job_in("downloading")
        for b in fleet:
            await b.device.close()
        await backend.restart()
        for b in fleet:
            await b.come_back(OLD)
        assert (await show(api, campaign["id"]))["state"] == "running"
        await fleet[0].device.report_ota(command["id"], "verified")
        await fleet[0].device.report_ota(command["id"], "applying")
        await fleet[0].job_in("applying")
        await fleet[0].come_back(NEW)
        await update(fleet[1])  # the second wave starts after the restart
        done = await in_state(api, campaign["id"], "completed")
        assert done["counts"] == {"updated": 2}
        assert (await devices(api, campaign["id"]))[fleet[0].uid]["job_id"] == command["id"]
    finally:
        await backend.stop()


# --- isolation and validation --------------------------------------------------------------------


async def test_another_users_campaigns_and_devices_are_never_reached(api, backend, boards):
    mine = await board(api, boards)
    await api.post(mine.path + "/tags", json={"tags": ["kitchen"]})
    campaign = await start(api, {"uids": [mine.uid]})
    bob = await backend.api_for("bob")
    path = f"{CAMPAIGNS}/{campaign['id']}"
    for method, suffix in (("GET", ""), ("GET", "/devices"), ("POST", "/pause"), ("POST", "/resume"),
                           ("POST", "/cancel")):
        assert await bob.call(method, path + suffix) == (404, {"message": "Campaign not found."})
    assert await bob.get(CAMPAIGNS) == (200, {"data": [], "meta": {"total": 0, "limit": 50, "offset": 0}})
    answer = await start(bob, {"uids": [mine.uid]}, expect=404)
    assert answer == {"message": f"Device not found: {mine.uid}."}
    answer = await start(bob, {"tag": "kitchen"}, expect=422)
    assert answer["errors"] == {"target": ["The target matches no device."]}
    status, body = await api.get(CAMPAIGNS)
    assert status == 200 and [c["id"] for c in body["data"]] == [campaign["id"]] and body["meta"]["total"] == 1
    assert (await api.get(CAMPAIGNS + "?state=cancelled"))[1]["data"] == []


@pytest.mark.parametrize("body, errors", [
    ({"md5": md5(NEW), "target": {"tag": "x"}, "wave_size": 1}, {"name": ["The name field is required."]}),
    ({"name": "r", "md5": "xyz", "target": {"tag": "x"}, "wave_size": 1},
     {"md5": ["The md5 field must be 32 hexadecimal characters."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}},
     {"wave_size": ["The campaign must have exactly one of the wave_size and wave_percent fields."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}, "wave_size": 2, "wave_percent": 10},
     {"wave_size": ["The campaign must have exactly one of the wave_size and wave_percent fields."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}, "wave_size": 0},
     {"wave_size": ["The wave_size field must be an integer from 1 to 10000."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}, "wave_percent": 101},
     {"wave_percent": ["The wave_percent field must be an integer from 1 to 100."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}, "wave_size": 1, "pause_seconds": -1},
     {"pause_seconds": ["The pause_seconds field must be an integer from 0 to 604800."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x"}, "wave_size": 1, "max_failure_percent": 10.5},
     {"max_failure_percent": ["The max_failure_percent field must be an integer from 0 to 100."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"tag": "x", "group": 1}, "wave_size": 1},
     {"target": ["The target field must have exactly one of uids, tag, group, filter."]}),
    ({"name": "r", "md5": md5(NEW), "target": {"filter": {"colour": "red"}}, "wave_size": 1},
     {"target.filter.colour": ["The target.filter.colour field is not known."]}),
])
async def test_a_bad_campaign_is_422_naming_each_field_and_stores_nothing(api, body, errors):
    status, answer = await api.post(CAMPAIGNS, json=body)
    assert status == 422 and answer["errors"] == errors, answer
    assert (await api.get(CAMPAIGNS))[1]["meta"]["total"] == 0


async def test_a_target_without_the_firmware_or_a_group_not_yours_is_refused(api, boards):
    bare = await board(api, boards, firmware=None, online=False)
    assert await start(api, {"uids": [bare.uid]}, expect=404) == {
        "message": "No device of the target has a firmware with this md5: upload it to each device that is to get it."}
    assert await start(api, {"group": 12345}, expect=404) == {"message": "Group not found."}
    answer = await start(api, {"filter": {"group": 12345}}, expect=422)
    assert answer["errors"] == {"target.filter.group": ["The selected target.filter.group is invalid."]}
    assert (await api.get(CAMPAIGNS))[1]["meta"]["total"] == 0


async def test_the_lists_query_parameters_are_checked(api, boards):
    campaign = await start(api, {"uids": [(await board(api, boards)).uid]})
    for path, name, message in (
            (CAMPAIGNS + "?state=done", "state", "The selected state is invalid."),
            (CAMPAIGNS + "?limit=0", "limit", "The limit parameter must be an integer from 1 to 100."),
            (f"{CAMPAIGNS}/{campaign['id']}/devices?state=done", "state", "The selected state is invalid."),
            (f"{CAMPAIGNS}/{campaign['id']}/devices?wave=0", "wave", "The wave parameter must be an integer from 1"
                                                                     " to 100.")):
        status, body = await api.get(path)
        assert status == 422 and body["errors"] == {name: [message]}, path


def test_waves_are_at_most_a_hundred():
    assert schemas.campaign_wave_size(300, wave_size=3, wave_percent=None) == 3
    assert schemas.campaign_wave_size(250, wave_size=None, wave_percent=1) == 3  # 2.5 rounded up
    with pytest.raises(ValidationError) as refused:
        schemas.campaign_wave_size(250, wave_size=2, wave_percent=None)
    assert refused.value.errors == {"wave_size": ["The wave_size field must be at least 3 for the 250 devices to"
                                                  " update: a campaign has at most 100 waves."]}
