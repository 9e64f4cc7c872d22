"""Desired configuration (docs/api.md, Configuration; docs/protocol.md, `config` and `config_report`): each endpoint
through the HTTP API of the real app on a real SQLite file, its validation and isolation between users, the merge of
a device's groups and its own settings; then, on both brokers (the embedded one and Mosquitto), a real MQTT client
playing the board: it gets its settings retained (also when it connects after the change), reports what it applied,
and the API shows it."""

import asyncio
import json
import secrets

import aiomqtt
import pytest
from mpfleet.backend import keys
from mpfleet.backend.config_schemas import KEY_RULE, PERIOD_MAX, PERIOD_MIN
from mpfleet.backend.mqtt_client import MqttClient

from .conftest import Backend
from .fake_device import tls_context
from .polling import eventually
from .test_online import mosquitto  # noqa: F401  (a fixture: one Mosquitto for the module)

NONE = {"desired": {}, "own": {}, "version": 0, "reported": None, "in_sync": True}


def device_path(uid):
    return f"/v1/user/devices/{uid}/configuration"


def group_path(group_id):
    return f"/v1/user/groups/{group_id}/configuration"


async def put(api, path, settings, status=200):
    answer_status, body = await api.call("PUT", path, json={"settings": settings})
    assert answer_status == status, body
    return body


async def configuration(api, uid):
    status, body = await api.get(device_path(uid))
    assert status == 200, body
    return body["data"]


async def new_group(api, name, settings=None, *uids):
    status, body = await api.post("/v1/user/groups", json={"name": name})
    assert status == 201, body
    group_id = body["data"]["id"]
    if settings is not None:
        await put(api, group_path(group_id), settings)
    if uids:
        status, body = await api.post(f"/v1/user/groups/{group_id}/devices", json={"uids": list(uids)})
        assert status == 200, body
    return group_id


# --- the API ---------------------------------------------------------------------------------------


async def test_a_device_without_settings_has_none_and_is_in_sync(api, device):
    assert await api.get(device_path(device["uid"])) == (200, {"data": NONE})


async def test_a_put_replaces_the_devices_own_settings_and_raises_the_version_only_on_a_change(api, device):
    path = device_path(device["uid"])
    body = await put(api, path, {"telemetry_period": 30, "greeting": "hi", "threshold": 21.5, "on": True})
    settings = {"greeting": "hi", "on": True, "telemetry_period": 30, "threshold": 21.5}
    assert body == {"data": {"desired": settings, "own": settings, "version": 1, "reported": None, "in_sync": False}}
    assert (await put(api, path, {"on": True, "threshold": 21.5, "greeting": "hi", "telemetry_period": 30}))[
        "data"]["version"] == 1  # the same settings in another order: nothing new for the board
    assert (await put(api, path, {"telemetry_period": 30, "greeting": "hi", "threshold": 21.5, "on": 1}))[
        "data"]["version"] == 2  # 1 is not true
    body = await put(api, path, {"greeting": "hello"})
    assert body["data"] == {"desired": {"greeting": "hello"}, "own": {"greeting": "hello"}, "version": 3,
                            "reported": None, "in_sync": False}
    body = await put(api, path, {})
    assert body["data"] == {"desired": {}, "own": {}, "version": 4, "reported": None, "in_sync": False}
    assert await configuration(api, device["uid"]) == body["data"]


_VALUE_RULE = "must be true or false, a number, or a string of at most 64 characters."


@pytest.mark.parametrize("body, field, message", [
    ({}, "settings", "The settings field is required."),
    ({"settings": None}, "settings", "The settings field is required."),
    ({"settings": [1]}, "settings", "The settings field must be a JSON object."),
    ({"settings": "x=1"}, "settings", "The settings field must be a JSON object."),
    ({"settings": {f"k{i}": i for i in range(17)}}, "settings", "The settings field must not have more than 16 keys."),
    ({"settings": {f"k{i}": "x" * 60 for i in range(8)}}, "settings",
     "The settings field must not be larger than 512 bytes as compact JSON."),
    ({"settings": {"Greeting": 1}}, "settings", f'The settings field\'s keys must be {KEY_RULE}: "Greeting" is not.'),
    ({"settings": {"2nd": 1}}, "settings", f'The settings field\'s keys must be {KEY_RULE}: "2nd" is not.'),
    ({"settings": {"a-b": 1}}, "settings", f'The settings field\'s keys must be {KEY_RULE}: "a-b" is not.'),
    ({"settings": {"": 1}}, "settings", f'The settings field\'s keys must be {KEY_RULE}: "" is not.'),
    ({"settings": {"k" * 33: 1}}, "settings", f'The settings field\'s keys must be {KEY_RULE}: "{"k" * 33}" is not.'),
    ({"settings": {"period": 30}}, "settings.period", "The settings.period key is the board's own and cannot be set."),
    ({"settings": {"user": "x"}}, "settings.user", "The settings.user key is the board's own and cannot be set."),
    ({"settings": {"config_v": 1}}, "settings.config_v",
     "The settings.config_v key is the board's own and cannot be set."),
    ({"settings": {"ota_url": "x"}}, "settings.ota_url",
     "The settings.ota_url key is the board's own and cannot be set."),
    *(({"settings": {"telemetry_period": value}}, "settings.telemetry_period",
       f"The settings.telemetry_period field must be an integer from {PERIOD_MIN} to {PERIOD_MAX}.")
      for value in (PERIOD_MIN - 1, PERIOD_MAX + 1, 30.5, True, "30", None)),
    ({"settings": {"greeting": None}}, "settings.greeting", f"The settings.greeting field {_VALUE_RULE}"),
    ({"settings": {"greeting": ["hi"]}}, "settings.greeting", f"The settings.greeting field {_VALUE_RULE}"),
    ({"settings": {"greeting": {"text": "hi"}}}, "settings.greeting", f"The settings.greeting field {_VALUE_RULE}"),
    ({"settings": {"greeting": "x" * 65}}, "settings.greeting", f"The settings.greeting field {_VALUE_RULE}"),
])
async def test_settings_that_break_a_rule_are_422_naming_the_key_and_change_nothing(api, device, body, field,
                                                                                   message):
    path = device_path(device["uid"])
    kept = (await put(api, path, {"keep": 1}))["data"]
    status, answer = await api.call("PUT", path, json=body)
    assert (status, answer) == (422, {"message": message, "errors": {field: [message]}})
    group_id = await new_group(api, "g")
    status, answer = await api.call("PUT", group_path(group_id), json=body)
    assert (status, answer) == (422, {"message": message, "errors": {field: [message]}})
    assert await configuration(api, device["uid"]) == kept
    assert await api.get(group_path(group_id)) == (200, {"data": {"settings": {}}})


async def test_a_body_that_is_no_json_object_is_400(api, device):
    for raw, message in ((b"{", "The request body must be valid JSON."),
                         (b"[]", "The request body must be a JSON object.")):
        status, body = await api.call("PUT", device_path(device["uid"]), raw=raw,
                                      headers={"Content-Type": "application/json"})
        assert (status, body) == (400, {"message": message})


async def test_the_limits_hold_at_their_edges(api, device):
    path = device_path(device["uid"])
    await put(api, path, {f"k{i}": i for i in range(16)})
    await put(api, path, {"telemetry_period": PERIOD_MIN, "k" * 32: "x" * 64})
    await put(api, path, {"telemetry_period": PERIOD_MAX})
    big = {f"k{i}": "x" * 58 for i in range(7)}
    big["last"] = "y" * (512 - len(json.dumps(big, separators=(",", ":"))) - len(',"last":""'))
    assert (await put(api, path, big))["data"]["desired"] == big  # 512 bytes exactly


async def test_another_users_device_and_group_are_not_found(api, other_api, device):
    await put(api, device_path(device["uid"]), {"greeting": "mine"})
    group_id = await new_group(api, "mine", {"greeting": "ours"})
    not_found = {"message": "Device not found."}
    assert await other_api.get(device_path(device["uid"])) == (404, not_found)
    assert await other_api.call("PUT", device_path(device["uid"]), json={"settings": {"greeting": "theirs"}}) == (
        404, not_found)
    assert await other_api.get(group_path(group_id)) == (404, {"message": "Group not found."})
    assert await other_api.call("PUT", group_path(group_id), json={"settings": {}}) == (
        404, {"message": "Group not found."})
    assert await api.get(group_path(group_id + 1)) == (404, {"message": "Group not found."})
    assert (await configuration(api, device["uid"]))["own"] == {"greeting": "mine"}
    assert (await api.get(group_path(group_id)))[1]["data"] == {"settings": {"greeting": "ours"}}


async def test_groups_merge_in_ascending_id_and_the_devices_own_keys_override_them(api, device):
    uid = device["uid"]
    first = await new_group(api, "first", {"a": 1, "b": 1, "c": 1})
    second = await new_group(api, "second", {"b": 2, "c": 2})
    assert first < second
    await put(api, device_path(uid), {"c": 3})
    # Added to the later group first: the order is the groups' ids, not when the device joined.
    for group_id in (second, first):
        assert (await api.post(f"/v1/user/groups/{group_id}/devices", json={"uids": [uid]}))[0] == 200
    data = await configuration(api, uid)
    assert (data["desired"], data["own"], data["version"]) == ({"a": 1, "b": 2, "c": 3}, {"c": 3}, 3)
    assert (await put(api, group_path(first), {"a": 1, "b": 1, "c": 1, "d": 1}))["data"] == {
        "settings": {"a": 1, "b": 1, "c": 1, "d": 1}}
    assert (await configuration(api, uid))["desired"] == {"a": 1, "b": 2, "c": 3, "d": 1}
    await put(api, group_path(second), {"b": 2, "c": 2})  # the same: no new version
    assert (await configuration(api, uid))["version"] == 4
    assert (await api.delete(f"/v1/user/groups/{second}/devices/{uid}"))[0] == 200
    assert (await configuration(api, uid))["desired"] == {"a": 1, "b": 1, "c": 3, "d": 1}
    assert (await api.delete(f"/v1/user/groups/{first}"))[0] == 200
    data = await configuration(api, uid)
    assert (data["desired"], data["version"]) == ({"c": 3}, 6)


async def test_settings_that_would_be_too_many_with_a_devices_groups_are_refused_whole(api, device):
    uid = device["uid"]
    await put(api, device_path(uid), {f"own{i}": i for i in range(10)})
    group_id = await new_group(api, "many", {f"group{i}": i for i in range(6)}, uid)  # 16: room for no more
    message = (f"The settings field would give device {uid} more than 16 keys of settings, those of its groups and"
               " its own together.")
    status, body = await api.call("PUT", group_path(group_id), json={"settings": {f"group{i}": i for i in range(7)}})
    assert (status, body) == (422, {"message": message, "errors": {"settings": [message]}})
    status, body = await api.call("PUT", device_path(uid), json={"settings": {f"own{i}": i for i in range(11)}})
    assert (status, body) == (422, {"message": message, "errors": {"settings": [message]}})
    other = await new_group(api, "other", {"extra": 1})
    status, body = await api.post(f"/v1/user/groups/{other}/devices", json={"uids": [uid]})
    message = message.replace("The settings field", "The uids field")
    assert (status, body) == (422, {"message": message, "errors": {"uids": [message]}})
    assert (await api.get(f"/v1/user/groups/{other}"))[1]["data"]["device_count"] == 0  # not added
    data = await configuration(api, uid)
    assert (len(data["desired"]), data["version"]) == (16, 2)


async def test_a_deleted_group_or_device_takes_its_settings_with_it(api, device):
    group_id = await new_group(api, "g", {"a": 1}, device["uid"])
    assert (await api.delete(f"/v1/user/groups/{group_id}"))[0] == 200
    group_id = await new_group(api, "g", None, device["uid"])  # the same name again: a new group
    assert await api.get(group_path(group_id)) == (200, {"data": {"settings": {}}})
    await put(api, device_path(device["uid"]), {"a": 2})
    assert (await api.delete(f"/v1/user/devices/{device['uid']}"))[0] == 200
    assert await api.get(device_path(device["uid"])) == (404, {"message": "Device not found."})


# --- boards on both brokers ------------------------------------------------------------------------


class Board:
    """An MQTT client with a device's own credentials over verified TLS, as a board connects: it subscribes to its
    `config` topic (QoS 1) and keeps every message it gets; it reports what it applied."""

    def __init__(self, registered, port):
        self.mqtt, self.port, self.uid = registered["mqtt"], port, registered["uid"]
        self.configs = asyncio.Queue()  # each `config` payload, parsed (b"" as it is)
        self._client = self._task = None

    def topic(self, kind):
        return f"mpfleet/v1/{self.uid}/{kind}"

    async def connect(self):
        self._client = aiomqtt.Client(
            "127.0.0.1", self.port, username=self.uid, password=self.mqtt["password"], identifier=self.uid,
            tls_context=tls_context(self.mqtt["ca_cert"]), clean_session=True,
            will=aiomqtt.Will(self.topic("status"), b'{"online":false}', qos=1, retain=True))
        await self._client.__aenter__()
        await self._client.subscribe(self.topic("config"), qos=1)
        await self._client.publish(self.topic("status"), b'{"online":true}', qos=1, retain=True)
        self._task = asyncio.create_task(self._receive())
        return self

    async def _receive(self):
        async for message in self._client.messages:
            self.configs.put_nowait(json.loads(message.payload) if message.payload else b"")

    async def next_config(self, timeout=5):
        return await asyncio.wait_for(self.configs.get(), timeout)

    async def report(self, payload):
        raw = payload if isinstance(payload, bytes) else json.dumps(payload)
        await self._client.publish(self.topic("config_report"), raw, qos=1)

    async def close(self):
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client:
            try:
                await self._client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass  # cut by the broker already
        self._client = self._task = None


@pytest.fixture(params=["embedded", "mosquitto"])
async def brokers_backend(request, tmp_path):
    overrides = {}
    if request.param == "mosquitto":
        broker = request.getfixturevalue("mosquitto")
        overrides.update(broker.backend_settings())
    backend = Backend(tmp_path / "var", **overrides)
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def boards(brokers_backend):
    """board(registered) → a connected Board; all closed at the end."""
    opened = []

    async def board(registered):
        opened.append(await Board(registered, brokers_backend.client.app[keys.MQTT_PUBLIC].port).connect())
        return opened[-1]

    yield board
    for each in opened:
        await each.close()


@pytest.fixture
async def owner(brokers_backend):
    return await brokers_backend.api_for("alice")


async def registered_device(api, name="board"):
    return await api.register(name=name, platform="unix", board="unix")


async def reported(api, uid, version):
    """The device's configuration once its report of `version` is shown, else None (for eventually())."""
    data = await configuration(api, uid)
    return data if data["reported"] and data["reported"]["v"] == version else None


async def test_a_board_that_was_offline_gets_its_settings_retained_and_its_report_is_shown(owner, boards):
    registered = await registered_device(owner)
    uid = registered["uid"]
    await put(owner, device_path(uid), {"telemetry_period": 30, "greeting": "hi", "threshold": 21.5})
    board = await boards(registered)  # connects after the PUT
    settings = {"greeting": "hi", "telemetry_period": 30, "threshold": 21.5}
    assert await board.next_config() == {"v": 1, "settings": settings}
    await board.report({"v": 1, "applied": settings, "errors": {}})
    data = await eventually(lambda: reported(owner, uid, 1))
    assert data["in_sync"] is True
    assert data["reported"]["applied"] == settings and data["reported"]["errors"] == {}
    assert data["reported"]["reported_at"].endswith("+00:00")
    # Online, a change comes at once; a report that says a key could not be applied is no sync.
    await put(owner, device_path(uid), {"telemetry_period": 2 * PERIOD_MAX // 2, "greeting": "hello"})
    assert await board.next_config() == {"v": 2, "settings": {"greeting": "hello", "telemetry_period": PERIOD_MAX}}
    await board.report({"v": 2, "applied": {"greeting": "hello"},
                        "errors": {"telemetry_period": "not applied: the board refuses it"}})
    data = await eventually(lambda: reported(owner, uid, 2))
    assert data["in_sync"] is False
    assert data["reported"]["errors"] == {"telemetry_period": "not applied: the board refuses it"}
    # The same report again (a board resends it at every connect) changes nothing.
    await board.report({"v": 2, "applied": {"greeting": "hello", "telemetry_period": PERIOD_MAX}})
    data = await eventually(lambda: _in_sync(owner, uid))
    assert data["reported"]["errors"] == {}


async def _in_sync(api, uid):
    data = await configuration(api, uid)
    return data if data["in_sync"] else None


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", b"{}", {"v": 0, "applied": {}}, {"v": "1", "applied": {}}, {"v": True, "applied": {}},
    {"v": 1}, {"v": 1, "applied": []}, {"v": 1, "applied": {"Bad Key": 1}}, {"v": 1, "applied": {"a": [1]}},
    {"v": 1, "applied": {}, "errors": {"a": 1}}, {"v": 1, "applied": {}, "errors": []},
    {"v": 1, "applied": {f"k{i}": i for i in range(17)}}, b"{" + b" " * 3000 + b"}",
])
async def test_a_malformed_report_is_dropped_and_counted_and_breaks_nothing_later(brokers_backend, owner, boards,
                                                                                   payload):
    registered = await registered_device(owner)
    await put(owner, device_path(registered["uid"]), {"greeting": "hi"})
    board = await boards(registered)
    assert (await board.next_config())["v"] == 1
    stats = brokers_backend.bridge.stats
    before = stats["config_report_malformed"]
    await board.report(payload)
    await board.report({"v": 1, "applied": {"greeting": "hi"}})  # after it, in order
    data = await eventually(lambda: reported(owner, registered["uid"], 1))
    assert data["in_sync"] is True
    assert stats["config_report_malformed"] == before + 1


async def test_a_group_change_reaches_every_member_whose_settings_change_in_one_pass(owner, boards):
    devices = [await registered_device(owner, f"d{i}") for i in range(3)]
    first, second, third = [await boards(registered) for registered in devices]
    group_id = await new_group(owner, "g", None, *(d["uid"] for d in devices))
    await put(owner, device_path(devices[2]["uid"]), {"greeting": "own"})
    assert await third.next_config() == {"v": 1, "settings": {"greeting": "own"}}
    await put(owner, group_path(group_id), {"greeting": "group", "telemetry_period": 20})
    for board in (first, second):
        assert await board.next_config() == {"v": 1, "settings": {"greeting": "group", "telemetry_period": 20}}
    assert await third.next_config() == {"v": 2, "settings": {"greeting": "own", "telemetry_period": 20}}
    # A change that leaves the third's settings as they are sends it nothing (the next it gets is v3).
    await put(owner, group_path(group_id), {"greeting": "group 2", "telemetry_period": 20})
    for board in (first, second):
        assert await board.next_config() == {"v": 2, "settings": {"greeting": "group 2", "telemetry_period": 20}}
    # Taken out of the group, a device gets its own settings alone; added again, the group's.
    assert (await owner.delete(f"/v1/user/groups/{group_id}/devices/{devices[2]['uid']}"))[0] == 200
    assert await third.next_config() == {"v": 3, "settings": {"greeting": "own"}}
    assert (await owner.post(f"/v1/user/groups/{group_id}/devices", json={"uids": [devices[2]["uid"]]}))[0] == 200
    assert await third.next_config() == {"v": 4, "settings": {"greeting": "own", "telemetry_period": 20}}
    assert (await owner.delete(f"/v1/user/groups/{group_id}"))[0] == 200
    assert await first.next_config() == {"v": 3, "settings": {}}


async def test_a_deleted_devices_retained_settings_are_cleared(brokers_backend, owner, boards):
    gone, kept = await registered_device(owner, "gone"), await registered_device(owner, "kept")
    for registered in (gone, kept):
        await put(owner, device_path(registered["uid"]), {"greeting": registered["uid"]})
    board = await boards(gone)
    assert (await board.next_config())["v"] == 1
    assert (await owner.delete(f"/v1/user/devices/{gone['uid']}"))[0] == 200
    # A new subscriber gets the kept device's retained settings, and none of the deleted one's before them.
    retained = await retained_configs(brokers_backend, [gone["uid"], kept["uid"]])
    assert retained == [(kept["uid"], {"v": 1, "settings": {"greeting": kept["uid"]}})]


async def retained_configs(backend, uids):
    """[(uid, parsed payload)] of the retained `config` messages a new subscriber to the topics of `uids` (each in
    its own SUBSCRIBE, in order) gets, until the last uid's arrives."""
    seen, last = [], asyncio.get_running_loop().create_future()

    def on_message(topic, payload, retained=False):
        uid = topic.split("/")[2]
        if payload:
            seen.append((uid, json.loads(payload)))
        if uid == uids[-1] and not last.done():
            last.set_result(None)

    client = await MqttClient.connect(backend.client.app[keys.BROKER_ENDPOINT], f"test-{secrets.token_hex(4)}",
                                      on_message, with_retain=True)
    try:
        for uid in uids:
            await client.subscribe([(f"mpfleet/v1/{uid}/config", 1)])
        await asyncio.wait_for(last, 5)
        return seen
    finally:
        client.close()


async def test_a_report_is_a_live_event(brokers_backend, owner, boards):
    registered = await registered_device(owner)
    await put(owner, device_path(registered["uid"]), {"greeting": "hi"})
    board = await boards(registered)
    await board.next_config()
    ws = await owner.client.ws_connect("/v1/user/events", headers={"Authorization": f"Bearer {owner.token}"})
    try:
        await board.report({"v": 1, "applied": {}, "errors": {"greeting": "not applied: no room"}})
        event = await asyncio.wait_for(_next_of(ws, "device_config_update"), 5)
    finally:
        await ws.close()
    assert event["uid"] == registered["uid"] and event["version"] == 1 and event["in_sync"] is False
    assert event["reported"]["errors"] == {"greeting": "not applied: no room"}


async def _next_of(ws, kind):
    while True:
        message = await ws.receive_json()
        if message["type"] == kind:
            return message


async def test_after_a_restart_of_the_embedded_broker_a_board_still_gets_its_settings(tmp_path):
    backend = Backend(tmp_path / "var")
    await backend.start()
    board = None
    try:
        api = await backend.api_for("alice")
        registered = await registered_device(api)
        await put(api, device_path(registered["uid"]), {"greeting": "kept"})
        await backend.restart()  # the embedded broker starts again with no retained message
        await backend.bridge.wait_connected(10)
        board = await Board(registered, backend.client.app[keys.MQTT_PUBLIC].port).connect()
        assert await board.next_config() == {"v": 1, "settings": {"greeting": "kept"}}
    finally:
        if board:
            await board.close()
        await backend.stop()


async def test_a_change_made_while_the_bridge_is_away_reaches_the_board_once_it_is_back(backend, api, caplog):
    registered = await registered_device(api)
    backend.bridge._client.close()  # its session ends; the bridge connects again within a second
    settings = (await put(api, device_path(registered["uid"]), {"greeting": "late"}))["data"]
    assert settings["desired"] == {"greeting": "late"}  # kept, though not published
    assert "could not publish the config of 1 devices now" in caplog.text
    board = await Board(registered, backend.client.app[keys.MQTT_PUBLIC].port).connect()
    try:
        assert await board.next_config(timeout=10) == {"v": 1, "settings": {"greeting": "late"}}
    finally:
        await board.close()
