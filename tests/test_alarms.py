"""Alarm rules and alarms (backend/alarms.py; docs/api.md, Alarms and notifications) through the HTTP API of a real
app, with MQTT clients playing devices on the embedded broker: offline, threshold, missing_data and reconnect_rate
alarms, their lifecycle and timeline, the live events, validation and isolation between users."""

import asyncio
import logging
import time
from urllib.parse import urlencode

import pytest
from mpfleet.backend import alarms as alarm_service
from mpfleet.backend import keys

from .polling import eventually
from .test_presence_health import devices  # noqa: F401  (a fixture: MQTT clients playing the user's devices)

PERIODIC = alarm_service.ROUND_SECONDS * 3  # how long a test waits for maintenance's evaluation


async def send(device, values, ts=None):
    """One telemetry message; stored (and handed to the alarm rules) once its QoS 1 publish is acknowledged."""
    await device.publish("telemetry", {"values": values, **({"ts": ts} if ts is not None else {})})


async def make_rule(api, **fields):
    body = {"name": "rule", "rule_type": "threshold", "config": {"key": "temp", "op": ">", "value": 30}, **fields}
    status, answer = await api.post("/v1/user/rules", json=body)
    assert status == 201, answer
    return answer["data"]


async def alarms_of(api, **query):
    status, body = await api.get(with_query("/v1/user/alarms", query))
    assert status == 200, body
    return body["data"]


def with_query(path, query):
    return f"{path}?{urlencode(query)}" if query else path


async def alarm_where(api, check, timeout=5.0, **query):
    """The first alarm of the list (with `query`) for which `check(alarm)` holds, once there is one."""
    async def found():
        return next((a for a in await alarms_of(api, **query) if check(a)), None)
    return await eventually(found, timeout=timeout)


async def detail(api, alarm_id):
    status, body = await api.get(f"/v1/user/alarms/{alarm_id}")
    assert status == 200, body
    return body["data"]


def events(alarm):
    return [(e["event"], e["status"], e["actor"]) for e in alarm["timeline"]]


async def probe(api, device):
    """Wait until every telemetry sent by `device` before this call has been evaluated: a rule on a key of its own
    fires on a sample sent after them, and batches are evaluated in order."""
    rule = await make_rule(api, name=f"probe {time.monotonic()}", scope_type="device", scope_device_id=device.uid,
                           config={"key": "probe", "op": ">", "value": 0})
    await send(device, {"probe": 1})
    await alarm_where(api, lambda a: a["rule_id"] == rule["id"])
    assert (await api.delete(f"/v1/user/rules/{rule['id']}"))[0] == 200


# --- rules -------------------------------------------------------------------------------------------


async def test_a_rule_is_made_shown_listed_changed_and_deleted(api, device):
    rule = await make_rule(api, name="Hot boiler", scope_type="device", scope_device_id=device["uid"],
                           config={"key": "temp", "op": ">=", "value": 80.5, "samples": 3}, severity="critical",
                           actions=["send_webhook"], cooldown_seconds=60, auto_resolve=False)
    assert {k: rule[k] for k in ("name", "rule_type", "scope_type", "scope_device_id", "scope_group_id", "scope_tag",
                                 "severity", "actions", "cooldown_seconds", "is_enabled", "auto_resolve")} == {
        "name": "Hot boiler", "rule_type": "threshold", "scope_type": "device", "scope_device_id": device["uid"],
        "scope_group_id": None, "scope_tag": None, "severity": "critical", "actions": ["create_alarm", "send_webhook"],
        "cooldown_seconds": 60, "is_enabled": True, "auto_resolve": False}
    assert rule["config"] == {"key": "temp", "op": ">=", "value": 80.5, "samples": 3}
    path = f"/v1/user/rules/{rule['id']}"
    assert (await api.get(path))[1]["data"] == rule
    status, changed = await api.call("PUT", path, json={"config": {"key": "temp", "op": "<", "value": 2, "seconds": 30},
                                                        "is_enabled": False, "description": "frost"})
    assert status == 200, changed
    assert changed["data"]["config"] == {"key": "temp", "op": "<", "value": 2, "seconds": 30}
    assert changed["data"]["is_enabled"] is False and changed["data"]["description"] == "frost"
    assert changed["data"]["severity"] == "critical"  # what the PUT did not name stays
    fleet = await make_rule(api, name="Gone", rule_type="offline", config={"seconds": 120})
    assert (fleet["scope_type"], fleet["severity"], fleet["actions"], fleet["cooldown_seconds"],
            fleet["auto_resolve"]) == ("fleet", "warning", ["create_alarm"], 300, True)
    assert [r["id"] for r in (await api.get("/v1/user/rules"))[1]["data"]] == [rule["id"], fleet["id"]]
    assert await api.delete(path) == (200, {"message": "Alarm rule deleted."})
    assert (await api.get(path))[0] == 404
    assert (await api.delete(path))[0] == 404


@pytest.mark.parametrize("body, field, message", [
    ({"rule_type": "offline", "config": None}, "config", "The config field is required."),
    ({"rule_type": "flood", "config": {}}, "rule_type", "The selected rule_type is invalid."),
    ({"rule_type": "offline", "config": {"seconds": 0}}, "config.seconds",
     "The config.seconds field must be an integer from 1 to 604800."),
    ({"rule_type": "offline", "config": {"seconds": 5, "key": "temp"}}, "config.key",
     "The config.key field is not known to offline rules."),
    ({"config": {"key": "temp", "op": ">", "value": 1, "samples": 2, "seconds": 5}}, "config.samples",
     "The config field must have samples or seconds, not both."),
    ({"config": {"key": "temp", "op": "==", "value": 1}}, "config.op", "The config.op field must be one of >, <, >=,"
     " <=."),
    ({"config": {"key": "temp", "op": ">", "value": "hot"}}, "config.value", "The config.value field must be a"
     " number."),
    ({"config": {"key": "temp", "op": ">", "value": 1, "samples": None}}, "config.samples",
     "The config.samples field must be an integer from 1 to 100."),
    ({"config": {"key": "bad key", "op": ">", "value": 1}}, "config.key", "The config.key field must be a telemetry"
     " key: 1 to 32 letters, digits, dots, dashes or underscores."),
    ({"rule_type": "reconnect_rate", "config": {"disconnects": 3}}, "config.seconds",
     "The config.seconds field is required for reconnect_rate rules."),
    ({"scope_type": "device"}, "scope_device_id", "The scope_device_id field is required when scope_type is device."),
    ({"scope_type": "tag", "scope_tag": "Kitchen"}, "scope_tag", "The scope_tag field must be 1 to 32 lowercase"
     " letters, digits, dots, colons, dashes or underscores, the first a letter or a digit."),
    ({"scope_group_id": 3}, "scope_group_id", "The scope_group_id field must be null unless scope_type is group."),
    ({"severity": "fatal"}, "severity", "The selected severity is invalid."),
    ({"actions": ["page_me"]}, "actions.0", "The actions.0 field must be one of create_alarm, send_webhook."),
    ({"cooldown_seconds": -1}, "cooldown_seconds", "The cooldown_seconds field must be an integer from 0 to 604800."),
    ({"auto_resolve": "yes"}, "auto_resolve", "The auto_resolve field must be true or false."),
])
async def test_a_bad_rule_is_refused_naming_its_field(api, body, field, message):
    full = {"name": "rule", "rule_type": "threshold", "config": {"key": "temp", "op": ">", "value": 30}, **body}
    status, answer = await api.post("/v1/user/rules", json=full)
    assert status == 422, answer
    assert answer["errors"][field] == [message]
    assert (await api.get("/v1/user/rules"))[1]["data"] == []


async def test_a_rule_change_keeps_its_type_and_scope_and_its_type_checks_the_config(api):
    rule = await make_rule(api, rule_type="offline", config={"seconds": 60})
    path = f"/v1/user/rules/{rule['id']}"
    status, answer = await api.call("PUT", path, json={"config": {"key": "temp", "op": ">", "value": 1}})
    assert status == 422 and set(answer["errors"]) == {"config.key", "config.op", "config.value", "config.seconds"}
    status, answer = await api.call("PUT", path, json={"rule_type": "threshold", "scope_type": "tag"})
    assert status == 422, answer
    assert answer["errors"]["rule_type"] == ["The rule_type field cannot be changed: create another rule."]
    assert "scope_type" in answer["errors"]
    assert (await api.get(path))[1]["data"] == rule


async def test_a_user_has_at_most_100_rules(api):
    for n in range(100):
        await make_rule(api, name=f"r{n}")
    status, answer = await api.post("/v1/user/rules", json={"name": "one more", "rule_type": "offline",
                                                            "config": {"seconds": 5}})
    assert (status, answer) == (409, {"message": "A user can have at most 100 alarm rules."})


async def test_another_users_rules_devices_and_groups_are_not_found(api, other_api, device):
    theirs = await make_rule(other_api)
    path = f"/v1/user/rules/{theirs['id']}"
    assert (await api.get(path))[0] == 404
    assert (await api.call("PUT", path, json={"name": "mine"}))[0] == 404
    assert (await api.delete(path))[0] == 404
    assert (await api.get("/v1/user/rules"))[1]["data"] == []
    status, answer = await other_api.post("/v1/user/rules", json={
        "name": "x", "rule_type": "offline", "config": {"seconds": 5}, "scope_type": "device",
        "scope_device_id": device["uid"]})
    assert (status, answer) == (404, {"message": "Device not found."})
    group = (await api.post("/v1/user/groups", json={"name": "mine"}))[1]["data"]
    status, answer = await other_api.post("/v1/user/rules", json={
        "name": "x", "rule_type": "offline", "config": {"seconds": 5}, "scope_type": "group",
        "scope_group_id": group["id"]})
    assert (status, answer) == (404, {"message": "Group not found."})
    assert (await other_api.get(path))[1]["data"] == theirs


async def test_a_devices_rules_and_alarms_go_with_it(api, device):
    rule = await make_rule(api, rule_type="offline", config={"seconds": 5}, scope_type="device",
                           scope_device_id=device["uid"])
    assert (await api.delete(f"/v1/user/devices/{device['uid']}"))[0] == 200
    assert (await api.get(f"/v1/user/rules/{rule['id']}"))[0] == 404


# --- offline, and the lifecycle ---------------------------------------------------------------------------


async def test_an_offline_device_raises_an_alarm_seen_live_acknowledged_and_resolved_by_its_return(
        backend, api, devices, device):
    rule = await make_rule(api, name="Gone", rule_type="offline", config={"seconds": 1}, scope_type="device",
                           scope_device_id=device["uid"], severity="critical")
    board = await devices.connect(device)
    ws = await api.client.ws_connect("/v1/user/events", headers={"Authorization": f"Bearer {api.token}"})
    await board.disconnect()
    alarm = await alarm_where(api, lambda a: a["status"] == "active", timeout=PERIODIC)
    assert (alarm["rule_id"], alarm["rule_name"], alarm["device_uid"], alarm["severity"], alarm["condition_holds"]) == (
        rule["id"], "Gone", device["uid"], "critical", True)
    assert alarm["message"].startswith("offline for more than 1 s (since ")
    event = await _next_alarm_event(ws)
    assert (event["event"], event["alarm"]["id"], event["alarm"]["status"]) == ("triggered", alarm["id"], "active")

    status, answer = await api.post(f"/v1/user/alarms/{alarm['id']}/acknowledge", json={"note": "on it"})
    assert status == 200 and answer["message"] == "Alarm acknowledged." and answer["data"]["status"] == "acknowledged"
    assert answer["data"]["timeline"][-1]["note"] == "on it"
    assert (await _next_alarm_event(ws))["event"] == "acknowledged"
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/acknowledge"))[1] == {
        "message": "The alarm is already acknowledged."}

    await devices.connect(device)  # back: the rule resolves it on its own
    resolved = await alarm_where(api, lambda a: a["status"] == "resolved", timeout=PERIODIC)
    assert resolved["id"] == alarm["id"] and resolved["condition_holds"] is False
    assert events(await detail(api, alarm["id"])) == [
        ("triggered", "active", "rule"), ("acknowledged", "acknowledged", "user"), ("resolved", "resolved", "rule")]
    assert (await _next_alarm_event(ws))["event"] == "resolved"
    await ws.close()


async def _next_alarm_event(ws, timeout=10.0):
    async def receive():
        while True:
            message = await ws.receive_json()
            if message["type"] == "alarm":
                return message
    return await asyncio.wait_for(receive(), timeout)


async def test_a_condition_back_within_the_cooldown_reopens_the_alarm_and_after_it_opens_another(api, devices, device):
    board = await devices.connect(device)
    reopening = await make_rule(api, name="reopens", scope_type="device", scope_device_id=device["uid"])
    fresh = await make_rule(api, name="fresh", scope_type="device", scope_device_id=device["uid"], cooldown_seconds=0)
    for value in (31, 20, 32):
        await send(board, {"temp": value})
    await probe(api, board)
    first = (await alarms_of(api, rule=reopening["id"]))
    assert len(first) == 1 and first[0]["status"] == "active"
    assert events(await detail(api, first[0]["id"])) == [
        ("triggered", "active", "rule"), ("resolved", "resolved", "rule"), ("reopened", "active", "rule")]
    assert first[0]["message"] == "temp > 30: 32"
    again = await alarms_of(api, rule=fresh["id"])
    assert [a["status"] for a in again] == ["active", "resolved"]  # newest first


async def test_an_alarm_resolved_by_hand_while_its_condition_holds_stays_resolved_until_it_clears_and_returns(
        api, devices, device):
    board = await devices.connect(device)
    rule = await make_rule(api, scope_type="device", scope_device_id=device["uid"])
    await send(board, {"temp": 40})
    alarm = await alarm_where(api, lambda a: a["rule_id"] == rule["id"])
    status, answer = await api.post(f"/v1/user/alarms/{alarm['id']}/resolve")  # no body: no note
    assert status == 200 and answer["data"]["status"] == "resolved" and answer["data"]["timeline"][-1]["note"] is None
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/resolve"))[1] == {
        "message": "The alarm is already resolved."}
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/acknowledge"))[1] == {
        "message": "A resolved alarm cannot be acknowledged."}
    await send(board, {"temp": 41})  # still holds: nothing new
    await probe(api, board)
    assert [(a["id"], a["status"]) for a in await alarms_of(api, rule=rule["id"])] == [(alarm["id"], "resolved")]
    await send(board, {"temp": 10})  # cleared
    await send(board, {"temp": 42})  # and back, within the cooldown
    reopened = await alarm_where(api, lambda a: a["status"] == "active", rule=rule["id"])
    assert reopened["id"] == alarm["id"]
    assert events(await detail(api, alarm["id"]))[-2:] == [("resolved", "resolved", "user"),
                                                           ("reopened", "active", "rule")]


async def test_without_auto_resolve_a_cleared_condition_is_on_the_timeline_and_the_alarm_stays(api, devices, device):
    board = await devices.connect(device)
    rule = await make_rule(api, scope_type="device", scope_device_id=device["uid"], auto_resolve=False)
    for value in (35, 25, 36):
        await send(board, {"temp": value})
    await probe(api, board)
    (alarm,) = await alarms_of(api, rule=rule["id"])
    assert alarm["status"] == "active" and alarm["condition_holds"] is True
    timeline = (await detail(api, alarm["id"]))["timeline"]
    assert [(e["event"], e["status"]) for e in timeline] == [
        ("triggered", "active"), ("cleared", "active"), ("returned", "active")]
    assert timeline[1]["reason"] == "temp is 25, no longer > 30"


# --- threshold ----------------------------------------------------------------------------------------


async def test_a_threshold_of_samples_in_a_row_on_a_tag_watches_only_the_tagged_devices(api, devices):
    tagged, other = await api.register(name="tagged"), await api.register(name="other")
    assert (await api.post(f"/v1/user/devices/{tagged['uid']}/tags", json={"tags": ["boiler"]}))[0] == 200
    rule = await make_rule(api, scope_type="tag", scope_tag="boiler", config={"key": "temp", "op": ">", "value": 30,
                                                                              "samples": 2})
    hot, elsewhere = await devices.connect(tagged), await devices.connect(other)
    await send(elsewhere, {"temp": 99})
    await send(elsewhere, {"temp": 99})
    for value in (31, 29, 31):  # never two in a row
        await send(hot, {"temp": value})
    await probe(api, hot)
    assert await alarms_of(api, rule=rule["id"]) == []
    await send(hot, {"temp": 32.5})
    alarm = await alarm_where(api, lambda a: True, rule=rule["id"])
    assert alarm["device_uid"] == tagged["uid"] and alarm["message"] == "temp > 30: 32.5, 2 samples in a row"
    await send(hot, {"temp": 30})
    await alarm_where(api, lambda a: a["status"] == "resolved", rule=rule["id"])
    assert [a["device_uid"] for a in await alarms_of(api)] == [tagged["uid"]]


async def test_a_threshold_for_seconds_counts_by_the_samples_times(api, devices, device):
    board = await devices.connect(device)
    rule = await make_rule(api, scope_type="device", scope_device_id=device["uid"],
                           config={"key": "temp", "op": "<", "value": 0, "seconds": 60})
    now = time.time()
    await send(board, {"temp": -1}, ts=now - 120)
    await send(board, {"temp": -2}, ts=now - 90)  # 30 s of frost: not yet
    await probe(api, board)
    assert await alarms_of(api, rule=rule["id"]) == []
    await send(board, {"temp": -3}, ts=now - 55)  # 65 s
    alarm = await alarm_where(api, lambda a: True, rule=rule["id"])
    assert alarm["message"] == "temp < 0 for 60 s: -3"


async def test_a_group_scope_and_a_disabled_rule(api, devices, device):
    group = (await api.post("/v1/user/groups", json={"name": "basement"}))[1]["data"]
    assert (await api.post(f"/v1/user/groups/{group['id']}/devices", json={"uids": [device["uid"]]}))[0] == 200
    watching = await make_rule(api, scope_type="group", scope_group_id=group["id"])
    off = await make_rule(api, name="off", is_enabled=False)
    board = await devices.connect(device)
    await send(board, {"temp": 50})
    await alarm_where(api, lambda a: True, rule=watching["id"])
    await probe(api, board)
    assert await alarms_of(api, rule=off["id"]) == []
    assert (await api.delete(f"/v1/user/groups/{group['id']}"))[0] == 200  # its rules go with it, and their alarms
    assert (await api.get(f"/v1/user/rules/{watching['id']}"))[0] == 404
    assert await alarms_of(api, rule=watching["id"]) == []


# --- missing_data and reconnect_rate ---------------------------------------------------------------------


async def test_missing_data_of_a_key_raises_an_alarm_and_its_data_resolves_it(api, devices, device):
    board = await devices.connect(device)
    rule = await make_rule(api, rule_type="missing_data", config={"seconds": 1, "key": "temp"})
    await send(board, {"humidity": 40})  # another key does not count
    alarm = await alarm_where(api, lambda a: True, timeout=PERIODIC, rule=rule["id"])
    assert alarm["message"] == "no telemetry of temp for more than 1 s"

    async def sending():  # as a device does, every period
        while True:
            await send(board, {"temp": 21})
            await asyncio.sleep(0.2)

    task = asyncio.create_task(sending())
    try:
        resolved = await alarm_where(api, lambda a: a["status"] == "resolved", timeout=PERIODIC, rule=rule["id"])
    finally:
        task.cancel()
    assert (await detail(api, resolved["id"]))["timeline"][-1]["reason"] == "telemetry of temp again within 1 s"


async def test_reconnects_past_the_rate_raise_an_alarm(api, devices, device):
    rule = await make_rule(api, rule_type="reconnect_rate", config={"disconnects": 1, "seconds": 3600},
                           scope_type="device", scope_device_id=device["uid"])
    for _ in range(2):
        board = await devices.connect(device)
        await board.disconnect()
        await eventually(lambda: _status_is(api, device["uid"], "offline"))
    alarm = await alarm_where(api, lambda a: True, timeout=PERIODIC, rule=rule["id"])
    assert alarm["message"] == "2 disconnects in the last 3600 s, more than 1"


async def _status_is(api, uid, status):
    return (await api.get(f"/v1/user/devices/{uid}"))[1]["data"]["status"] == status


# --- the alarm list, and isolation -------------------------------------------------------------------------


async def test_the_alarm_list_filters_and_pages(api, devices):
    first, second = await api.register(name="first"), await api.register(name="second")
    hot = await make_rule(api, name="hot", severity="critical")
    warm = await make_rule(api, name="warm", config={"key": "temp", "op": ">", "value": 20}, severity="info")
    one, two = await devices.connect(first), await devices.connect(second)
    await send(one, {"temp": 40})
    await send(two, {"temp": 25})
    await eventually(lambda: _count(api, 3))
    assert {(a["device_uid"], a["rule_name"]) for a in await alarms_of(api)} == {
        (first["uid"], "hot"), (first["uid"], "warm"), (second["uid"], "warm")}
    assert {a["rule_name"] for a in await alarms_of(api, device=first["uid"])} == {"hot", "warm"}
    assert [a["rule_id"] for a in await alarms_of(api, severity="critical")] == [hot["id"]]
    assert len(await alarms_of(api, rule=warm["id"], status="open")) == 2
    assert await alarms_of(api, status="resolved") == await alarms_of(api, device="unix_nosuchdevice") == []
    status, page = await api.get(with_query("/v1/user/alarms", {"limit": 2, "offset": 1}))
    assert status == 200 and len(page["data"]) == 2 and page["meta"] == {"total": 3, "limit": 2, "offset": 1}
    all_ids = [a["id"] for a in await alarms_of(api)]
    assert all_ids == sorted(all_ids, reverse=True) and [a["id"] for a in page["data"]] == all_ids[1:]
    for query, name in (({"status": "closed"}, "status"), ({"colour": "red"}, "colour"), ({"limit": "0"}, "limit"),
                        ({"rule": "x"}, "rule")):
        status, answer = await api.get(with_query("/v1/user/alarms", query))
        assert status == 422 and name in answer["errors"], answer


async def _count(api, n):
    return len(await alarms_of(api)) == n


async def test_another_users_alarms_are_not_found_and_not_listed(api, other_api, devices, device):
    board = await devices.connect(device)
    await make_rule(api)
    await send(board, {"temp": 99})
    alarm = await alarm_where(api, lambda a: True)
    for method, path in (("GET", ""), ("POST", "/acknowledge"), ("POST", "/resolve")):
        assert await other_api.call(method, f"/v1/user/alarms/{alarm['id']}{path}") == (
            404, {"message": "Alarm not found."})
    assert await alarms_of(other_api) == await alarms_of(other_api, device=device["uid"]) == []
    assert (await detail(api, alarm["id"]))["status"] == "active"
    assert (await api.get("/v1/user/alarms/9223372036854775808"))[0] == 404


async def test_resolved_alarms_go_after_the_retention_and_open_ones_stay(backend, api, devices, device):
    board = await devices.connect(device)
    gone, kept = await make_rule(api, name="gone"), await make_rule(api, name="kept", config={"key": "temp", "op": ">",
                                                                                              "value": 10})
    await send(board, {"temp": 40})
    old = await alarm_where(api, lambda a: True, rule=gone["id"])
    assert (await api.post(f"/v1/user/alarms/{old['id']}/resolve"))[0] == 200
    open_one = await alarm_where(api, lambda a: True, rule=kept["id"])
    days = backend.settings.telemetry_retention_days
    assert await backend.storage.alarms.prune(days, now=time.time() + days * 86400 + 60) == 1
    assert (await api.get(f"/v1/user/alarms/{old['id']}"))[0] == 404
    assert (await detail(api, open_one["id"]))["status"] == "active"


# --- the telemetry path never waits ---------------------------------------------------------------------


async def test_batches_beyond_the_evaluation_queue_are_skipped_counted_and_logged(backend, api, caplog):
    await make_rule(api)
    service = backend.client.app[keys.ALARMS]
    await service._threshold_rules()  # (so that it knows there are threshold rules)
    with caplog.at_level(logging.WARNING, logger="mpfleet.backend.alarms"):
        for _ in range(alarm_service.BATCH_QUEUE + 3):  # no await between: the evaluation cannot take any
            service.telemetry_stored([("unix_x", "temp", time.time(), 99)])
    assert service.stats["threshold_batches_skipped"] == 3
    assert "batches were not evaluated" in caplog.text


# --- the health score's alarms component ----------------------------------------------------------------


async def test_open_alarms_lower_the_devices_health_until_resolved(api, devices):
    registered = await api.register()
    uid = registered["uid"]
    board = await devices.connect(registered)
    path = f"/v1/user/devices/{uid}/health"
    _, body = await api.get(path)
    assert body["data"]["components"]["alarms"] == {"score": 100, "open": {"critical": 0, "warning": 0, "info": 0}}
    await make_rule(api, severity="critical", auto_resolve=False)
    await make_rule(api, name="also", severity="warning", auto_resolve=False)
    await send(board, {"temp": 40})
    alarm = await alarm_where(api, lambda a: a["severity"] == "critical")
    await alarm_where(api, lambda a: a["severity"] == "warning")
    _, body = await api.get(path)
    assert body["data"]["components"]["alarms"] == {"score": 25, "open": {"critical": 1, "warning": 1, "info": 0}}
    parts = body["data"]["components"]
    assert body["data"]["score"] == round(0.3 * parts["uptime"]["score"] + 0.25 * parts["stability"]["score"]
                                          + 0.25 * parts["freshness"]["score"] + 0.2 * 25)
    # Acknowledged is still open; resolved is not.
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/acknowledge", json={}))[0] == 200
    _, body = await api.get(path)
    assert body["data"]["components"]["alarms"]["open"]["critical"] == 1
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/resolve", json={}))[0] == 200
    _, body = await api.get(path)
    assert body["data"]["components"]["alarms"] == {"score": 75, "open": {"critical": 0, "warning": 1, "info": 0}}
