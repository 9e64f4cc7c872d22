"""A device's presence history (GET .../presence), its health (GET .../health, backend/health.py's formula) and the
user's fleet in figures (GET /v1/user/stats), with MQTT clients playing devices on the embedded broker over TLS."""

import time

import pytest
from mpfleet.backend import keys
from mpfleet.backend.health import health
from mpfleet.backend.storage import PresenceEvent

from .fake_device import FakeDevice
from .polling import eventually, online_detail

MD5 = "0123456789abcdef0123456789abcdef"


class Devices:
    """Devices of one user on the test backend, connected as boards are."""

    def __init__(self, backend, api):
        self.backend, self.api = backend, api
        self.connected = []

    async def connect(self, registered, **status):
        port = self.backend.client.app[keys.MQTT_PUBLIC].port
        device = await FakeDevice(registered["mqtt"], port, status=status).connect()
        self.connected.append(device)
        await eventually(lambda: online_detail(self.api, registered["uid"]))
        return device

    async def close(self):
        for device in self.connected:
            try:
                await device.close()
            except Exception:
                pass


@pytest.fixture
async def devices(backend, api):
    made = Devices(backend, api)
    yield made
    await made.close()


async def presence(api, uid, count):
    """The device's presence events, oldest first, once there are `count` of them."""
    async def enough():
        status, body = await api.get(f"/v1/user/devices/{uid}/presence")
        assert status == 200, body
        return body["data"][::-1] if len(body["data"]) >= count else None
    return await eventually(enough)


def reasons(events):
    return [(e["previous"], e["status"], e["reason"], e["boot"]) for e in events]


async def test_each_change_of_status_is_recorded_with_its_reason(backend, api, devices):
    registered = await api.register()
    uid = registered["uid"]
    board = await devices.connect(registered, boot=1)
    await board.disconnect()
    board = await devices.connect(registered, boot=1)  # the same boot: a new session
    await board.publish("status", {**board.status, "boot": 2}, retain=True)  # reset and back before its will
    await presence(api, uid, 4)
    await board.disconnect()
    await devices.connect(registered, boot=3)
    assert (await api.patch(f"/v1/user/devices/{uid}", json={"enabled": False}))[0] == 200
    assert (await api.patch(f"/v1/user/devices/{uid}", json={"enabled": True}))[0] == 200
    events = await presence(api, uid, 8)
    assert reasons(events) == [
        ("pending", "online", "first_seen", 1),
        ("online", "offline", "disconnected", None),
        ("offline", "online", "reconnected", 1),
        ("online", "online", "rebooted", 2),
        ("online", "offline", "disconnected", None),
        ("offline", "online", "booted", 3),
        ("online", "disabled", "disabled", None),
        ("disabled", "offline", "enabled", None),
    ]
    ats = [e["at"] for e in events]
    assert ats == sorted(ats)
    status, body = await api.get(f"/v1/user/devices/{uid}/presence?limit=2")
    assert status == 200 and reasons(body["data"]) == reasons(events[-2:][::-1])


async def test_a_backend_restart_is_no_disconnect_of_the_device(backend, api, devices):
    registered = await api.register()
    await devices.connect(registered, boot=1)
    await backend.restart()  # the embedded broker starts again: everyone offline
    events = await presence(api, registered["uid"], 2)
    assert reasons(events)[-1] == ("online", "offline", "backend_restart", None)
    _, body = await api.get(f"/v1/user/devices/{registered['uid']}/health")
    assert body["data"]["components"]["stability"]["disconnects"] == 0


async def test_a_device_never_seen_has_no_score(api):
    registered = await api.register()
    status, body = await api.get(f"/v1/user/devices/{registered['uid']}/health")
    assert status == 200 and body["data"] == {"score": None, "status": "pending", "components": None}


async def test_health_falls_with_a_disconnect_and_with_safe_mode_and_rises_with_fresh_data(api, devices):
    registered = await api.register()
    uid = registered["uid"]
    board = await devices.connect(registered, boot=1)
    now = time.time()
    await board.publish("telemetry", {"ts": now - 20, "values": {"t": 1}})
    await board.publish("telemetry", {"ts": now - 10, "values": {"t": 2}})
    await board.publish("telemetry", {"ts": now, "values": {"t": 3}})

    async def fresh():
        _, body = await api.get(f"/v1/user/devices/{uid}/health")
        return body["data"] if body["data"]["components"]["freshness"]["score"] == 100 else None

    data = await eventually(fresh)
    assert data["components"]["freshness"]["period_seconds"] == 10.0
    assert data["components"]["stability"] == {"score": 100, "disconnects": 0, "boots": 0, "safe_mode": False}
    assert data["components"]["alarms"] == {"score": 100, "open": {"critical": 0, "warning": 0, "info": 0}}
    assert data["components"]["uptime"]["score"] == 100
    assert data["score"] == 100
    await board.disconnect()
    board = await devices.connect(registered, boot=1, safe_mode=True)
    _, body = await api.get(f"/v1/user/devices/{uid}/health")
    stability = body["data"]["components"]["stability"]
    assert stability == {"score": 40, "disconnects": 1, "boots": 0, "safe_mode": True}
    assert body["data"]["components"]["uptime"]["score"] < 100
    assert body["data"]["score"] < 100


async def test_stats_count_the_callers_devices_only(backend, api, other_api, devices):
    seen = await api.register(name="seen", platform="espressif32", board="esp32dev")
    await api.register(name="pending")
    await other_api.register(name="bob's")
    board = await devices.connect(seen, boot=1, fw={"md5": MD5, "version": "1.2.0"})
    await board.publish("telemetry", {"values": {"t": 21.5, "h": 40}})

    async def counted():
        _, body = await api.get("/v1/user/stats")
        return body["data"] if body["data"]["telemetry_values_24h"] == 2 else None

    data = await eventually(counted)
    assert data == {
        "total_devices": 2, "online_devices": 1, "online_percent": 50.0,
        "by_status": {"pending": 1, "online": 1, "offline": 0, "disabled": 0},
        "by_platform": {"espressif32": 1, "espressif8266": 1},
        "by_board": {"esp07s": 1, "esp32dev": 1},
        "by_firmware": [{"md5": MD5, "version": "1.2.0", "devices": 1}],
        "telemetry_values_24h": 2,
    }
    _, body = await other_api.get("/v1/user/stats")
    assert body["data"]["total_devices"] == 1 and body["data"]["telemetry_values_24h"] == 0


async def test_another_users_device_has_no_presence_and_no_health(api, other_api):
    registered = await api.register()
    for path in ("presence", "health"):
        status, body = await other_api.get(f"/v1/user/devices/{registered['uid']}/{path}")
        assert status == 404 and body == {"message": "Device not found."}


async def test_presence_limit_is_checked(api):
    registered = await api.register()
    status, body = await api.get(f"/v1/user/devices/{registered['uid']}/presence?limit=0")
    assert status == 422 and "limit" in body["errors"]


# --- the formula, on events of the test's own


class Device:
    status = "online"
    first_seen_at = "2026-01-01T00:00:00+00:00"
    meta = {}


def event(at, status, previous, reason="reconnected"):
    return PresenceEvent(at=at, status=status, previous=previous, boot=None, reason=reason)


def test_uptime_is_the_share_of_the_window_online():
    now = 1_900_000_000.0
    day = 86400
    events = [event(now - day / 2, "offline", "online", "disconnected"), event(now - day / 4, "online", "offline")]
    before = event(now - 2 * day, "online", "pending", "first_seen")
    uptime = health(Device(), events=events, before=before, sample_times=[now], open_alarms={}, now=now)["components"]["uptime"]
    assert uptime == {"score": 75, "online_share": 0.75, "window_seconds": day}
    # No event before the window: what the first one changed from
    uptime = health(Device(), events=events, before=None, sample_times=[now], open_alarms={}, now=now)["components"]["uptime"]
    assert uptime["online_share"] == 0.75


def test_freshness_falls_linearly_from_2_to_10_periods():
    now = 1_900_000_000.0
    samples = [now - 600 - 60 * n for n in range(5)]  # a 60 s period, the last sample 10 periods old
    scores = []
    for age_periods in (1, 2, 6, 10, 20):
        times = [t + 600 - 60 * age_periods for t in samples]
        scores.append(health(Device(), events=[], before=None, sample_times=times, open_alarms={}, now=now)
                      ["components"]["freshness"]["score"])
    assert scores == [100, 100, 50, 0, 0]


def test_the_score_weighs_its_four_components():
    now = 1_900_000_000.0
    times = [now - 20, now - 10, now]
    data = health(Device(), events=[], before=None, sample_times=times, open_alarms={"critical": 1, "info": 1}, now=now)
    assert data["components"]["alarms"] == {"score": 40, "open": {"critical": 1, "warning": 0, "info": 1}}
    assert data["score"] == round(0.3 * 100 + 0.25 * 100 + 0.25 * 100 + 0.2 * 40)  # 88
    flooded = health(Device(), events=[], before=None, sample_times=times, open_alarms={"critical": 3}, now=now)
    assert flooded["components"]["alarms"]["score"] == 0
