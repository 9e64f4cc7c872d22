"""GET /v1/user/events: a real WebSocket client (aiohttp's) watching MQTT clients that play devices on the embedded
broker; the hub's bound on a slow subscriber (backend/events.py)."""

import asyncio

import aiohttp
import pytest
from mpfleet.backend import keys
from mpfleet.backend.events import GOING_AWAY, TOO_SLOW, EventHub
from mpfleet.backend.handlers.events import NOT_A_WEBSOCKET

from .fake_device import FakeDevice
from .polling import eventually, online_detail

PATH = "/v1/user/events"


async def watch(api, **kw):
    return await api.client.ws_connect(PATH, headers={"Authorization": f"Bearer {api.token}"}, **kw)


async def next_of(ws, kind, timeout=5.0):
    """The next message of `type` kind (others skipped)."""
    async def receive():
        while True:
            message = await ws.receive_json()
            if message["type"] == kind:
                return message
    return await asyncio.wait_for(receive(), timeout)


async def online(backend, api, registered, **kw):
    device = FakeDevice(registered["mqtt"], backend.client.app[keys.MQTT_PUBLIC].port, **kw)
    await device.connect()
    await eventually(lambda: online_detail(api, registered["uid"]))
    return device


async def test_a_device_coming_online_and_going_offline_is_seen_live(backend, api):
    registered = await api.register()
    ws = await watch(api)
    device = await online(backend, api, registered)
    event = await next_of(ws, "device_status_update")
    assert {k: event[k] for k in ("uid", "old_status", "new_status", "reason")} == {
        "uid": registered["uid"], "old_status": "pending", "new_status": "online", "reason": "first_seen"}
    assert event["timestamp"].endswith("+00:00")
    await device.disconnect()
    event = await next_of(ws, "device_status_update")
    assert (event["old_status"], event["new_status"], event["reason"]) == ("online", "offline", "disconnected")
    await ws.close()


async def test_command_acks_are_seen_live(backend, api):
    registered = await api.register()
    device = await online(backend, api, registered)
    ws = await watch(api)
    status, body = await api.post(f"/v1/user/devices/{registered['uid']}/commands", json={"payload": {"cmd": "x"}})
    assert status == 200, body
    states = [(await next_of(ws, "command_update"))["state"] for _ in range(2)]
    assert states == ["accepted", "done"]
    await ws.close()
    await device.close()


async def test_a_user_sees_only_their_own_devices(backend, api, other_api):
    mine, theirs = await api.register(name="mine"), await other_api.register(name="theirs")
    ws = await watch(other_api)
    await online(backend, api, mine)
    device = await online(backend, other_api, theirs)
    event = await next_of(ws, "device_status_update")  # bob's first event is his own device's
    assert event["uid"] == theirs["uid"]
    await ws.close()
    await device.close()


async def test_the_token_may_come_as_a_query_parameter_and_a_wrong_one_is_refused(backend, api):
    ws = await api.client.ws_connect(f"{PATH}?token={api.token}")
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.client.ws_connect(f"{PATH}?token=mpf_wrong")
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.client.ws_connect(PATH)
    assert refused.value.status == 401


async def test_a_plain_get_is_told_to_upgrade(api):
    status, body = await api.get(PATH)
    assert status == 400 and body == {"message": NOT_A_WEBSOCKET}


async def test_a_stopping_server_closes_its_websockets_going_away(backend, api):
    async with aiohttp.ClientSession() as session:  # (not the test client's: stopping the app closes that first)
        ws = await session.ws_connect(api.client.make_url(PATH), headers={"Authorization": f"Bearer {api.token}"})
        await backend.stop()
        message = await asyncio.wait_for(ws.receive(), 5)
        assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, *GOING_AWAY)
    await backend.start()  # (the fixture stops it)


async def test_a_subscriber_that_falls_behind_is_cut_off_and_holds_nothing():
    hub = EventHub(limit=3)
    slow, fast = hub.subscribe(1), hub.subscribe(1)
    for n in range(3):
        hub.publish(1, {"n": n})
        assert await fast.next() == {"n": n}
    hub.publish(1, {"n": 3})  # the slow one has 3 waiting: it is cut off, its events dropped
    assert await slow.next() == TOO_SLOW and slow.ended == TOO_SLOW
    hub.publish(1, {"n": 4})  # nothing more is queued for it
    assert slow._queue.empty()
    assert [await fast.next() for _ in range(2)] == [{"n": 3}, {"n": 4}]
    hub.publish(2, {"n": 5})  # another user's: none of theirs
    assert fast._queue.empty()
