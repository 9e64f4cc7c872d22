"""Notification channels and webhook deliveries (backend/webhooks.py; docs/api.md, Alarms and notifications) through
the HTTP API of a real app, against a real local HTTP receiver (an aiohttp server in the test), with MQTT clients
playing devices whose telemetry raises the alarms: the signature, retries with backoff, the delivery log, the test
endpoint, a hanging receiver that holds up neither ingest nor the API, a full queue."""

import asyncio
import hashlib
import hmac
import json
import logging
import socket

import pytest
from aiohttp import web
from mpfleet.backend import keys, webhooks

from .polling import eventually
from .test_alarms import alarm_where, make_rule, send
from .test_presence_health import devices  # noqa: F401  (a fixture: MQTT clients playing the user's devices)

SECRET = "s3cret-of-sixteen-or-more"
CHANNELS = "/v1/user/notifications/channels"


class Receiver:
    """An HTTP server that records every request (path, headers, body) and answers the statuses of `answers` in turn,
    then 200; with `release` (an asyncio.Event), each request waits until it is set: a receiver that hangs."""

    def __init__(self):
        self.requests = []
        self.answers = []
        self.release = None  # an asyncio.Event: requests wait for it (a receiver that hangs)
        self.waiting = 0  # requests held open now
        self.url = None
        self._runner = None

    async def start(self):
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def stop(self):
        if self.release is not None:
            self.release.set()
        await self._runner.cleanup()

    async def _handle(self, request):
        self.requests.append((request.path, dict(request.headers), await request.read()))
        if self.release is not None:
            self.waiting += 1
            try:
                await self.release.wait()
            finally:
                self.waiting -= 1
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def bodies(self, path):
        return [json.loads(body) for at, _, body in self.requests if at == path]


@pytest.fixture
async def receiver():
    made = Receiver()
    await made.start()
    yield made
    await made.stop()


async def make_channel(api, url, secret=SECRET, **fields):
    config = {"url": url, **({"secret": secret} if secret is not None else {})}
    status, answer = await api.post(CHANNELS, json={"name": "hook", "channel_type": "webhook", "config": config,
                                                    **fields})
    assert status == 201, answer
    return answer["data"]


async def deliveries(api, channel_id, count):
    """The channel's log, newest first, once it holds `count` attempts."""
    async def enough():
        status, body = await api.get(f"{CHANNELS}/{channel_id}/deliveries")
        assert status == 200, body
        return body["data"] if len(body["data"]) >= count else None
    return await eventually(enough, timeout=20)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- channels ---------------------------------------------------------------------------------------------


async def test_a_channel_is_made_shown_changed_and_deleted_and_its_secret_is_never_answered(api, receiver, caplog):
    caplog.set_level(logging.INFO)  # what `mpfleet serve` logs (aiosqlite's DEBUG lines hold every SQL parameter)
    channel = await make_channel(api, receiver.url + "/a")
    assert channel["config"] == {"url": receiver.url + "/a", "secret": "…" + SECRET[-4:]}
    assert (channel["name"], channel["channel_type"], channel["is_enabled"]) == ("hook", "webhook", True)
    path = f"{CHANNELS}/{channel['id']}"
    assert (await api.get(path))[1]["data"] == channel
    assert (await api.get(CHANNELS))[1]["data"] == [channel]
    status, changed = await api.call("PUT", path, json={"is_enabled": False, "config": {"url": receiver.url + "/b"}})
    assert status == 200 and changed["data"]["is_enabled"] is False
    assert changed["data"]["config"] == {"url": receiver.url + "/b", "secret": "…" + SECRET[-4:]}  # kept
    status, changed = await api.call("PUT", path, json={"config": {"url": receiver.url + "/b", "secret": None}})
    assert changed["data"]["config"]["secret"] is None
    assert (await api.post(f"{path}/test"))[0] == 200
    assert await api.delete(path) == (200, {"message": "Notification channel deleted."})
    assert (await api.get(path))[0] == 404
    assert caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("body, field", [
    ({"config": {"url": "ftp://example.test/x"}}, "config.url"),
    ({"config": {"url": "http://:80/x"}}, "config.url"),
    ({"config": {"url": "http://exa mple.test/"}}, "config.url"),
    ({"config": {"url": "http://example.test:99999/"}}, "config.url"),
    ({"config": {"url": "http://example.test/", "secret": "short"}}, "config.secret"),
    ({"config": {"url": "http://example.test/", "headers": {}}}, "config.headers"),
    ({"config": None}, "config"),
    ({"channel_type": "email"}, "channel_type"),
    ({"name": " "}, "name"),
])
async def test_a_bad_channel_is_refused_naming_its_field(api, body, field):
    full = {"name": "hook", "channel_type": "webhook", "config": {"url": "http://example.test/"}, **body}
    status, answer = await api.post(CHANNELS, json=full)
    assert status == 422 and field in answer["errors"], answer
    assert (await api.get(CHANNELS))[1]["data"] == []


async def test_a_user_has_at_most_20_channels_and_another_users_are_not_found(api, other_api, receiver):
    theirs = await make_channel(other_api, receiver.url)
    for _ in range(20):
        await make_channel(api, receiver.url)
    status, answer = await api.post(CHANNELS, json={"name": "x", "channel_type": "webhook",
                                                    "config": {"url": receiver.url}})
    assert (status, answer) == (409, {"message": "A user can have at most 20 notification channels."})
    path = f"{CHANNELS}/{theirs['id']}"
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/test"), ("GET", "/deliveries")):
        body = {"name": "mine"} if method == "PUT" else None
        assert await api.call(method, path + suffix, json=body) == (
            404, {"message": "Notification channel not found."}), (method, suffix)
    assert receiver.requests == []
    assert (await other_api.get(path))[1]["data"] == theirs


# --- deliveries ---------------------------------------------------------------------------------------------


async def test_each_alarm_change_is_posted_signed_to_every_enabled_webhook_of_its_user(
        api, other_api, devices, device, receiver):
    signed = await make_channel(api, receiver.url + "/signed")
    unsigned = await make_channel(api, receiver.url + "/unsigned", secret=None)
    disabled = await make_channel(api, receiver.url + "/disabled", is_enabled=False)
    await make_channel(other_api, receiver.url + "/other")
    quiet = await make_rule(api, name="quiet")  # no send_webhook
    rule = await make_rule(api, name="loud", actions=["send_webhook"])
    board = await devices.connect(device)
    await send(board, {"temp": 40})
    alarm = await alarm_where(api, lambda a: a["rule_id"] == rule["id"])
    assert (await api.post(f"/v1/user/alarms/{alarm['id']}/acknowledge", json={"note": "seen"}))[0] == 200
    await eventually(lambda: _arrived(receiver, "/signed", 2))
    await eventually(lambda: _arrived(receiver, "/unsigned", 2))

    for at, headers, body in [r for r in receiver.requests if r[0] == "/signed"]:
        assert headers["X-Mpfleet-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["Content-Type"] == "application/json" and headers["X-Mpfleet-Delivery"]
    assert [r[1]["X-Mpfleet-Event"] for r in receiver.requests if r[0] == "/signed"] == [
        "alarm.triggered", "alarm.acknowledged"]
    assert not any("X-Mpfleet-Signature" in r[1] for r in receiver.requests if r[0] == "/unsigned")
    triggered, acknowledged = receiver.bodies("/signed")
    assert (triggered["type"], triggered["event"], triggered["actor"]) == ("alarm", "triggered", "rule")
    assert triggered["alarm"]["id"] == alarm["id"] and triggered["alarm"]["device_uid"] == device["uid"]
    assert triggered["alarm"]["message"] == "temp > 30: 40"
    assert (acknowledged["event"], acknowledged["note"], acknowledged["alarm"]["status"]) == (
        "acknowledged", "seen", "acknowledged")
    assert {body["alarm"]["rule_id"] for body in receiver.bodies("/signed")} == {rule["id"]}  # not `quiet`'s
    assert quiet["id"] != rule["id"]
    assert receiver.bodies("/disabled") == receiver.bodies("/other") == []
    log = await deliveries(api, signed["id"], 2)
    assert [(d["event"], d["attempt"], d["status_code"], d["outcome"]) for d in log] == [
        ("alarm.acknowledged", 1, 200, "delivered"), ("alarm.triggered", 1, 200, "delivered")]
    assert log[1]["alarm_id"] == alarm["id"] and log[1]["error"] is None
    assert (await api.get(f"{CHANNELS}/{disabled['id']}/deliveries"))[1]["data"] == []
    assert unsigned["config"]["secret"] is None


async def _arrived(receiver, path, count):
    return len([r for r in receiver.requests if r[0] == path]) >= count


async def test_a_receiver_that_fails_is_tried_again_with_backoff_and_the_log_shows_each_attempt(
        api, devices, device, receiver):
    channel = await make_channel(api, receiver.url + "/flaky")
    receiver.answers = [500, 503]
    await make_rule(api, actions=["send_webhook"])
    board = await devices.connect(device)
    await send(board, {"temp": 40})
    log = await deliveries(api, channel["id"], 3)
    assert [(d["attempt"], d["status_code"], d["error"], d["outcome"]) for d in log] == [
        (3, 200, None, "delivered"), (2, 503, "answered 503", "retrying"), (1, 500, "answered 500", "retrying")]
    assert len({d["delivery_id"] for d in log}) == 1
    assert len({body for _, _, body in receiver.requests}) == 1  # the same body each time
    assert len({headers["X-Mpfleet-Delivery"] for _, headers, _ in receiver.requests}) == 1


async def test_retries_end_after_five_attempts(api, devices, device, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "BACKOFF_SECONDS", 0.01)
    failing = await make_channel(api, receiver.url + "/down")
    unreachable = await make_channel(api, f"http://127.0.0.1:{closed_port()}/")
    receiver.answers = [500] * 10
    await make_rule(api, actions=["send_webhook"])
    board = await devices.connect(device)
    await send(board, {"temp": 40})
    log = await deliveries(api, failing["id"], 5)
    assert [(d["attempt"], d["outcome"]) for d in log] == [(5, "failed")] + [(n, "retrying") for n in (4, 3, 2, 1)]
    log = await deliveries(api, unreachable["id"], 5)
    assert log[0]["outcome"] == "failed" and log[0]["status_code"] is None
    assert log[0]["error"].startswith("cannot connect: ")
    await asyncio.sleep(0.2)  # (a sixth attempt would be in the log by now)
    assert len((await api.get(f"{CHANNELS}/{failing['id']}/deliveries"))[1]["data"]) == 5


async def test_a_receiver_that_hangs_holds_up_neither_ingest_nor_the_api_nor_the_alarms(
        api, devices, device, receiver):
    receiver.release = asyncio.Event()
    channel = await make_channel(api, receiver.url + "/hangs")
    rule = await make_rule(api, actions=["send_webhook"])
    board = await devices.connect(device)
    await send(board, {"temp": 40})
    await eventually(lambda: _waiting(receiver))  # the first delivery is held open

    await send(board, {"temp": 12})  # ingest: acknowledged once stored
    status, latest = await api.get(f"/v1/user/devices/{device['uid']}/telemetry/latest")
    assert status == 200 and latest["data"]["temp"]["value"] == 12
    resolved = await alarm_where(api, lambda a: a["status"] == "resolved", rule=rule["id"])  # evaluation goes on
    status, log = await api.get(f"{CHANNELS}/{channel['id']}/deliveries")
    assert status == 200 and log["data"] == []  # its attempt is not over
    assert receiver.waiting == 1  # all of it while the receiver still hangs

    receiver.release.set()
    log = await deliveries(api, channel["id"], 2)
    assert [d["event"] for d in log] == ["alarm.resolved", "alarm.triggered"]
    assert log[0]["alarm_id"] == resolved["id"]


async def _waiting(receiver):
    return receiver.waiting == 1


async def test_a_full_channel_queue_drops_what_comes_logged_and_counted(
        backend, api, devices, device, receiver, monkeypatch, caplog):
    monkeypatch.setattr(webhooks, "CHANNEL_QUEUE", 2)
    receiver.release = asyncio.Event()
    await make_channel(api, receiver.url + "/slow")
    await make_rule(api, actions=["send_webhook"], cooldown_seconds=0)
    board = await devices.connect(device)
    with caplog.at_level(logging.WARNING, logger="mpfleet.backend.webhooks"):
        for value in (40, 10, 40, 10, 40):  # five changes: triggered, resolved, triggered, ...
            await send(board, {"temp": value})
        sender = backend.client.app[keys.WEBHOOKS]
        await eventually(lambda: _dropped(sender))
    assert sender.stats["webhooks_dropped"] == 3  # one held open at the receiver and one waiting: the rest dropped
    assert "deliveries dropped, its queue is full" in caplog.text
    receiver.release.set()


async def _dropped(sender):
    return sender.stats["webhooks_dropped"] >= 3


# --- the test endpoint ------------------------------------------------------------------------------------


async def test_the_test_endpoint_posts_once_and_answers_how_it_went(api, receiver):
    channel = await make_channel(api, receiver.url + "/test")
    path = f"{CHANNELS}/{channel['id']}/test"
    status, answer = await api.post(path)
    assert status == 200 and answer["message"] == "Test notification delivered."
    assert (answer["data"]["event"], answer["data"]["status_code"], answer["data"]["outcome"]) == (
        "test", 200, "delivered")
    (_, headers, body), = receiver.requests
    assert json.loads(body)["type"] == "test" and json.loads(body)["channel_id"] == channel["id"]
    assert headers["X-Mpfleet-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    receiver.answers = [500]
    status, answer = await api.post(path)
    assert status == 200 and answer["message"] == "Test notification failed."
    assert (answer["data"]["status_code"], answer["data"]["error"]) == (500, "answered 500")
    assert len(receiver.requests) == 2  # no retry
    log = (await api.get(f"{CHANNELS}/{channel['id']}/deliveries"))[1]
    assert [(d["event"], d["outcome"]) for d in log["data"]] == [("test", "failed"), ("test", "delivered")]
    assert log["meta"] == {"total": 2, "limit": 50, "offset": 0}
    status, page = await api.get(f"{CHANNELS}/{channel['id']}/deliveries?limit=1&offset=1")
    assert status == 200 and [d["outcome"] for d in page["data"]] == ["delivered"]
    assert (await api.get(f"{CHANNELS}/{channel['id']}/deliveries?limit=0"))[0] == 422
