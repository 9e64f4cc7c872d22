"""Home Assistant MQTT discovery (docs/home-assistant.md) on both brokers: a real MQTT client plays Home Assistant
(tests/home_assistant_player.py), logged in over verified TLS with the account `mpfleet ha-account --json` prints,
and an emulated board (the real MicroPython unix port running the firmware) plays the device. Real backend, real
embedded broker or Mosquitto, real SQLite.
"""

import asyncio
import io
import json
import os
import ssl
import stat
import subprocess

import pytest
from mpfleet.backend import keys
from mpfleet.backend.broker.endpoint import BrokerEndpoint
from mpfleet.backend.mqtt_client import MqttClient, Refused
from mpfleet.backend.storage import Storage

from .conftest import Backend
from .fake_device import FakeDevice
from .firmware.conftest import built_flash, umqtt_cache  # noqa: F401: fixtures
from .firmware.device_harness import Board, make_flash
from .firmware.test_ota_end_to_end import bundle_v2  # noqa: F401: fixture
from .home_assistant_player import HomeAssistantPlayer
from .polling import eventually, final_command, online_detail
from .server_process import MPFLEET, ServerProcess, free_port

pytestmark = pytest.mark.network

PING = {"id": "ping", "label": "Ping", "payload": {"cmd": "ping"}, "confirm": False}
FIXED = {("button", "reboot"), ("button", "wifi_reset"), ("button", "button_ping"), ("update", "firmware")}
OTA_TIMEOUT = 90.0


def ha_settings(mosquitto=None):
    """A backend's settings with Home Assistant discovery for user `maker`, on the embedded broker or `mosquitto`."""
    settings = {"public_host": "127.0.0.1", "device_http_port": free_port(), "mqtt_tls_port": free_port(),
                "ha_discovery": True, "ha_user": "maker"}
    if mosquitto is not None:
        tls = mosquitto.tls
        settings.update(mosquitto.backend_settings(), device_cert_file=str(tls.server_cert),
                        device_key_file=str(tls.server_key))
    return settings


@pytest.fixture(params=["embedded", "mosquitto"])
async def ha_backend(request, tmp_path):
    mosquitto = request.getfixturevalue("mosquitto") if request.param == "mosquitto" else None
    backend = Backend(tmp_path / "var", **ha_settings(mosquitto))
    await backend.start()
    yield backend
    await backend.stop()


async def ha_account(data_dir):
    """`mpfleet ha-account --json` of the data dir, parsed."""
    done = await asyncio.to_thread(subprocess.run, [MPFLEET, "ha-account", "--json", "--data", str(data_dir)],
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def board_online(api, built_flash, tmp_path):  # noqa: F811: the fixture's value
    registration = await api.register(name="bench board", platform="unix", board="unix")
    uid = registration["uid"]
    status, body = await api.post(f"/v1/user/devices/{uid}/command-buttons", json=PING)
    assert status == 201, body
    board = Board(make_flash(built_flash, tmp_path / "board", registration, period=2))
    board.start()
    await eventually(lambda: online_detail(api, uid), timeout=30)
    return uid, board


async def telemetry_keys(api, uid):
    _, body = await api.get(f"/v1/user/devices/{uid}/telemetry/latest")
    return set(body["data"])


async def settled(check, timeout=20.0):
    async def poll():
        return check()

    return await eventually(poll, timeout=timeout, interval=0.05)


async def next_event(ws, kind, state):
    """The next live event of `kind` in `state` (others skipped)."""
    while True:
        event = await ws.receive_json()
        if event["type"] == kind and event.get("state") == state:
            return event


async def booted_again(api, uid, boots):
    """The device's detail once it is online after more than `boots` boots, else None."""
    detail = await online_detail(api, uid)
    return detail if detail and detail["meta"].get("boot", {}).get("count", 0) > boots else None


async def command_done(api, uid, type_):
    """The newest command of `type_` once it is final."""
    _, body = await api.get(f"/v1/user/devices/{uid}/commands")
    mine = [c for c in body["data"] if c["type"] == type_]
    return mine[0] if mine and mine[0]["state"] in ("done", "failed", "expired") else None


async def test_home_assistant_finds_presses_updates_and_loses_an_emulated_board(ha_backend, built_flash, tmp_path,
                                                                                bundle_v2):  # noqa: F811
    api = await ha_backend.api_for("maker")
    uid, board = await board_online(api, built_flash, tmp_path)
    account = await ha_account(ha_backend.settings.data_dir)
    assert set(account) == {"host", "port", "username", "password", "ca_cert", "discovery_prefix"}
    assert (account["host"], account["port"], account["discovery_prefix"]) == (
        "127.0.0.1", ha_backend.client.app[keys.MQTT_PUBLIC].port, "homeassistant")
    assert stat.S_IMODE(os.stat(ha_backend.settings.data_dir / "home-assistant.json").st_mode) == 0o600
    player = await HomeAssistantPlayer.connect(account)
    try:
        # The entities: the fixed ones and a sensor per telemetry key the board sent.
        keys_seen = await eventually(lambda: telemetry_keys(api, uid), timeout=20)
        wanted = FIXED | {("sensor", f"t_{key}") for key in keys_seen}
        entities = await settled(lambda: (found := player.entities(uid)) and set(found) >= wanted and found)
        assert set(entities) - FIXED == {("sensor", f"t_{key}") for key in await telemetry_keys(api, uid)}
        assert entities[("button", "button_ping")]["name"] == "Ping"
        for (component, object_id), config in entities.items():
            assert config["unique_id"] == f"mpfleet_{uid}_{object_id}"
            assert config["device"]["identifiers"] == [f"mpfleet_{uid}"] and config["device"]["name"] == "bench board"
            assert config["availability_topic"] == f"mpfleet/ha/{uid}/availability"
            if component in ("button", "update"):
                assert config["command_topic"] == f"mpfleet/ha/{uid}/command"
        await player.follow(uid)
        availability = f"mpfleet/ha/{uid}/availability"
        await settled(lambda: player.state(availability) == "online")
        sensor = entities[("sensor", f"t_{sorted(keys_seen)[0]}")]
        await settled(lambda: player.json_state(sensor["state_topic"]))

        # A saved button and reboot: tracked commands the board runs.
        await player.press(entities[("button", "button_ping")])
        ping = await eventually(lambda: command_done(api, uid, "custom"), timeout=20)
        assert ping["state"] == "done" and ping["payload"] == {"cmd": "ping"} and "uptime" in ping["result"]
        boots = (await online_detail(api, uid))["meta"]["boot"]["count"]
        await player.press(entities[("button", "reboot")])
        reboot = await eventually(lambda: command_done(api, uid, "reboot"), timeout=20)
        assert reboot["state"] == "done"
        await eventually(lambda: booted_again(api, uid, boots), timeout=30)

        # The update: latest = the target; install is an OTA job through to `updated`.
        update = entities[("update", "firmware")]
        status, body = await api.post(f"/v1/user/devices/{uid}/firmwares",
                                      data={"file": io.BytesIO(bundle_v2), "name": "build", "version": "0.2.0"})
        assert status == 201, body
        assert (await api.post(f"/v1/user/devices/{uid}/firmwares/set-target", json={"md5": body["data"]["md5"]}))[0] \
            == 200
        before = await settled(lambda: (s := player.json_state(update["state_topic"])) and
                               s["latest_version"] == "0.2.0" and s)
        assert before["installed_version"] == "unknown" and before["in_progress"] is False  # the board says none
        await player.install(update)
        after = await settled(lambda: (s := player.json_state(update["state_topic"])) and
                              s["installed_version"] == "0.2.0" and not s["in_progress"] and s, timeout=OTA_TIMEOUT)
        assert after["latest_version"] == "0.2.0" and after["update_percentage"] is None
        _, job = await api.get(f"/v1/user/devices/{uid}/ota")
        assert job["data"]["state"] == "updated", board.log()
        seen = [json.loads(p) for t, p in player.state_log if t == update["state_topic"]]
        assert any(s["in_progress"] and s["update_percentage"] is not None for s in seen), seen
        assert (await eventually(lambda: final_command(api, uid, job["data"]["id"]), timeout=30))["state"] == "done"

        # The device's firmware is in its configs; nothing more comes unless something changes.
        await settled(lambda: all(c["device"].get("sw_version") == "0.2.0" for c in player.entities(uid).values()))
        await asyncio.sleep(1)
        quiet = len(player.config_log)
        await asyncio.sleep(2.5)  # more than a round
        assert player.config_log[quiet:] == []
        # Home Assistant restarts: its birth message brings every config again.
        await player.birth()
        await settled(lambda: {t for t, _, retained in player.config_log[quiet:] if not retained} >=
                      {t for t in player.configs if f"/mpfleet_{uid}/" in t})

        # The board goes away: unavailable.
        await board.stop()
        await settled(lambda: player.state(availability) == "offline", timeout=30)
    finally:
        await board.stop()
        player.close()


async def test_home_assistant_may_publish_on_its_command_topics_only(ha_backend):
    api = await ha_backend.api_for("maker")
    registered = await api.register(name="fake", platform="unix", board="unix")
    uid = registered["uid"]
    device = FakeDevice(registered["mqtt"], registered["mqtt"]["port"], handler=lambda command: ("done", None, None))
    await device.connect()
    player = await HomeAssistantPlayer.connect(await ha_account(ha_backend.settings.data_dir))
    try:
        await eventually(lambda: online_detail(api, uid))
        await settled(lambda: player.entities(uid))
        # Straight to the device's cmd topic: the broker drops it; the device never sees it.
        await player.client.publish(f"mpfleet/v1/{uid}/cmd", b'{"id": "x", "type": "reboot", "payload": {}}', qos=1)
        await player.client.publish(f"homeassistant/button/mpfleet_{uid}/fake/config", b'{"name": "fake"}', qos=1)
        # Through its command topic: a tracked command the device gets (and shows the device does receive), on the
        # live events as any other.
        events = await api.client.ws_connect("/v1/user/events", headers={"Authorization": f"Bearer {api.token}"})
        try:
            await player.press(player.entities(uid)[("button", "reboot")])
            done = await eventually(lambda: command_done(api, uid, "reboot"), timeout=10)
            assert done["state"] == "done"
            assert [c["id"] for c in device.commands] == [done["id"]]
            update = await asyncio.wait_for(next_event(events, "command_update", "done"), 5)
            assert (update["uid"], update["command_id"]) == (uid, done["id"])
        finally:
            await events.close()
        assert f"homeassistant/button/mpfleet_{uid}/fake/config" not in player.configs
        # Nor may it read a device's own topics.
        with pytest.raises(Refused):
            await player.client.subscribe([(f"mpfleet/v1/{uid}/status", 0)])
    finally:
        player.close()
        await device.close()


async def test_a_deleted_devices_entities_are_removed(ha_backend):
    api = await ha_backend.api_for("maker")
    uid = (await api.register(name="gone soon", platform="unix", board="unix"))["uid"]
    player = await HomeAssistantPlayer.connect(await ha_account(ha_backend.settings.data_dir))
    try:
        # Reboot, Wi-Fi reset, firmware: no buttons, no telemetry yet.
        topics = await settled(lambda: len(mine := {t for t in player.configs if f"/mpfleet_{uid}/" in t}) == 3
                               and mine)
        assert (await api.delete(f"/v1/user/devices/{uid}"))[0] == 200
        await settled(lambda: topics <= player.cleared)
    finally:
        player.close()
    again = await HomeAssistantPlayer.connect(await ha_account(ha_backend.settings.data_dir))
    try:
        await asyncio.sleep(1)
        assert not again.entities(uid)  # nothing of it stays retained
    finally:
        again.close()


async def test_another_users_devices_stay_out_of_home_assistant(ha_backend):
    maker, other = await ha_backend.api_for("maker"), await ha_backend.api_for("someone")
    mine = (await maker.register(name="mine", platform="unix", board="unix"))["uid"]
    theirs = (await other.register(name="theirs", platform="unix", board="unix"))["uid"]
    player = await HomeAssistantPlayer.connect(await ha_account(ha_backend.settings.data_dir))
    try:
        await settled(lambda: player.entities(mine))
        await asyncio.sleep(2.5)  # a round later still nothing of theirs
        assert not player.entities(theirs)
        # A press for their device is ignored.
        await player.client.publish(f"mpfleet/ha/{theirs}/command", b"reboot", qos=1)
        await asyncio.sleep(1)
        _, body = await other.get(f"/v1/user/devices/{theirs}/commands")
        assert body["data"] == []
    finally:
        player.close()


async def test_without_ha_discovery_nothing_is_published_and_there_is_no_account(tmp_path):
    backend = Backend(tmp_path / "var")
    await backend.start()
    try:
        api = await backend.api_for("admin")
        await api.register(name="plain", platform="unix", board="unix")
        seen = []
        client = await MqttClient.connect(backend.client.app[keys.BROKER_ENDPOINT], "observer",
                                          lambda topic, payload: seen.append(topic))
        try:
            await client.subscribe([("homeassistant/#", 0), ("mpfleet/ha/#", 0)])
            await asyncio.sleep(2.5)  # more than a round
        finally:
            client.close()
        assert seen == []
        done = await asyncio.to_thread(subprocess.run, [MPFLEET, "ha-account", "--data", str(tmp_path / "var")],
                                       capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "mpfleet serve --ha-discovery" in done.stderr
    finally:
        await backend.stop()


async def test_serve_ha_discovery_makes_the_account_once_and_home_assistant_sees_the_admins_devices(tmp_path):
    server = ServerProcess(tmp_path / "var", ["--mqtt-port", "0", "--mqtt-tls-port", str(free_port()),
                                              "--public-host", "127.0.0.1", "--ha-discovery"])
    await asyncio.to_thread(server.start)
    try:
        uid = server.register("served")["uid"]
        first = await ha_account(server.data_dir)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        account = await ha_account(server.data_dir)
        assert account == first and account["username"] == "mpfleet-home-assistant"  # made once, kept
        player = await HomeAssistantPlayer.connect(account)
        try:
            await settled(lambda: set(player.entities(uid)) == {("button", "reboot"), ("button", "wifi_reset"),
                                                                ("update", "firmware")})
        finally:
            player.close()
        with pytest.raises(Refused):  # the password is the account's
            await HomeAssistantPlayer.connect(account, password="not-" + account["password"])
    finally:
        await asyncio.to_thread(server.stop)


async def test_on_mosquitto_a_device_deleted_while_the_backend_was_down_loses_its_entities_at_its_next_start(
        tmp_path, mosquitto):
    backend = Backend(tmp_path / "var", **ha_settings(mosquitto))
    await backend.start()
    api = await backend.api_for("maker")
    registered = await api.register(name="kept", platform="unix", board="unix")
    kept = registered["uid"]
    gone = (await api.register(name="gone", platform="unix", board="unix"))["uid"]
    account = await ha_account(backend.settings.data_dir)
    player = await HomeAssistantPlayer.connect(account)
    device = FakeDevice(registered["mqtt"], registered["mqtt"]["port"])
    await device.connect()
    try:
        await settled(lambda: player.entities(kept) and player.entities(gone))
        await player.follow(kept)
        await settled(lambda: player.state(f"mpfleet/ha/{kept}/availability") == "online")
        await backend.stop()  # the backend's last word: unavailable, since nobody keeps it true while it is away
        storage = Storage(backend.settings.data_dir)  # as if deleted by another backend of this data dir
        await storage.open()
        try:
            (maker_id,) = await storage.db.fetch_one("SELECT id FROM users WHERE name = 'maker'")
            await storage.devices.delete(maker_id, gone)
        finally:
            await storage.close()
        topics = {t for t in player.configs if f"/mpfleet_{gone}/" in t}
        assert player.state(f"mpfleet/ha/{kept}/availability") == "offline"
        await backend.start()
        await settled(lambda: topics <= player.cleared)
        assert set(player.entities(kept)) == {("button", "reboot"), ("button", "wifi_reset"), ("update", "firmware")}
        await settled(lambda: player.state(f"mpfleet/ha/{kept}/availability") == "online")  # on Mosquitto throughout
        assert await ha_account(backend.settings.data_dir) == account  # the same password, set again
        again = await HomeAssistantPlayer.connect(account)  # which Mosquitto still takes
        again.close()
        # An account file removed is made again, with a new password, which Mosquitto is given.
        await backend.stop()
        (backend.settings.data_dir / "home-assistant.json").unlink()
        await backend.start()
        renewed = await ha_account(backend.settings.data_dir)
        assert renewed["password"] != account["password"]
        (await HomeAssistantPlayer.connect(renewed)).close()
        with pytest.raises(Refused):
            await HomeAssistantPlayer.connect(account)
    finally:
        player.close()
        await device.close()
        await backend.stop()


def test_a_telemetry_key_with_a_dot_is_a_sensor_of_its_own_and_versions_read_as_versions():
    from mpfleet.backend import ha_discovery
    from mpfleet.backend.storage.home_assistant import FleetDevice

    assert ha_discovery.sensor_object_id("temp_1") == "t_temp_1"
    dotted = ha_discovery.sensor_object_id("temp.1")
    assert dotted.startswith("t_temp_1_") and dotted != ha_discovery.sensor_object_id("temp_1")
    device = FleetDevice("unix_x", "d", "unix", True, "1.0", "a" * 32, None, "1.0", "b" * 32,
                         telemetry={"temp.1": 20.5, "state": "idle"})
    assert ha_discovery.latest_version(device) == "1.0 (bbbbbbb)"  # the same version, another build
    sensors = {object_id: config for (component, object_id), config in ha_discovery.components(device).items()
               if component == "sensor"}
    assert sensors[dotted]["value_template"] == '{{ value_json["temp.1"] }}'
    assert sensors[dotted]["state_class"] == "measurement" and "state_class" not in sensors["t_state"]


async def test_on_the_embedded_broker_home_assistant_cannot_take_a_devices_client_id(tmp_path):
    backend = Backend(tmp_path / "var", **ha_settings())
    await backend.start()
    try:
        api = await backend.api_for("maker")
        registered = await api.register(name="fake", platform="unix", board="unix")
        device = FakeDevice(registered["mqtt"], registered["mqtt"]["port"])
        if os.environ.get("DEV"):
            await device.connect()
        account = await ha_account(backend.settings.data_dir)
        context = ssl.create_default_context(cadata=account["ca_cert"])
        endpoint = BrokerEndpoint(account["host"], account["port"], account["username"], account["password"], context)
        with pytest.raises(Refused):  # a session under the device's client id would end the device's
            await MqttClient.connect(endpoint, registered["uid"], lambda topic, payload: None)
        await asyncio.sleep(0.5)
        if os.environ.get("DEV"):
            assert (await online_detail(api, registered["uid"])) is not None
            await device.close()
        await asyncio.sleep(float(os.environ.get("EXTRA", "0")))
    finally:
        await backend.stop()
