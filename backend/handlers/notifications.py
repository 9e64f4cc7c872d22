"""/v1/user/notifications/channels: the caller's webhook channels, made, listed, shown, changed, deleted, tested,
and their delivery log (webhooks.py; docs/api.md, Alarms and notifications). A channel's secret is never answered:
only that there is one, and its last characters."""

from .. import alarm_schemas, jsonvalues, keys
from ..responses import json_response
from ..storage.alarms import iso
from ..storage.notifications import NOT_FOUND
from . import common
from .alarms import path_id

SECRET_SHOWN = 4  # the last characters of a secret an answer shows


async def list_channels(request):
    channels = await common.storage(request).channels.list(common.user(request).id)
    return json_response({"data": [channel_payload(c) for c in channels]})


async def create_channel(request):
    channel = alarm_schemas.new_channel(await common.json_object(request))
    created = await common.storage(request).channels.create(common.user(request).id, channel,
                                                            most=alarm_schemas.CHANNELS_PER_USER)
    return json_response({"data": channel_payload(created)}, status=201)


async def show_channel(request):
    return json_response({"data": channel_payload(await _channel(request))})


async def update_channel(request):
    channel_id = path_id(request, "channel_id", NOT_FOUND)
    changes = alarm_schemas.channel_update(await common.json_object(request))
    channel = await common.storage(request).channels.update(common.user(request).id, channel_id, changes)
    return json_response({"data": channel_payload(channel)})


async def delete_channel(request):
    await common.storage(request).channels.delete(common.user(request).id, path_id(request, "channel_id", NOT_FOUND))
    return json_response({"message": "Notification channel deleted."})


async def test_channel(request):
    """One test event posted now (at most webhooks.TEST_TIMEOUT_SECONDS), answered with how it went; also when the
    receiver refused it or did not answer (200: the test ran)."""
    attempt = await request.app[keys.WEBHOOKS].test(await _channel(request))
    message = "Test notification delivered." if attempt.outcome == "delivered" else "Test notification failed."
    return json_response({"message": message, "data": attempt_payload(attempt)})


async def list_deliveries(request):
    """?limit= &offset=: the channel's delivery attempts, newest first, with `meta` {total, limit, offset}."""
    channel = await _channel(request)
    limit = common.int_query(request, "limit", default=alarm_schemas.DELIVERY_PAGE_DEFAULT, low=1,
                             high=alarm_schemas.DELIVERY_PAGE_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    attempts, total = await common.storage(request).channels.deliveries(channel, limit=limit, offset=offset)
    return json_response({"data": [attempt_payload(a) for a in attempts],
                          "meta": {"total": total, "limit": limit, "offset": offset}})


async def _channel(request):
    return await common.storage(request).channels.get(common.user(request).id,
                                                      path_id(request, "channel_id", NOT_FOUND))


def channel_payload(channel):
    secret = None if channel.secret is None else "…" + channel.secret[-SECRET_SHOWN:]
    return {"id": channel.id, "name": channel.name, "channel_type": channel.channel_type,
            "config": {"url": channel.url, "secret": secret}, "is_enabled": channel.is_enabled,
            "created_at": iso(channel.created_at)}


def attempt_payload(attempt):
    return {"delivery_id": attempt.delivery, "event": attempt.event, "alarm_id": attempt.alarm_id,
            "attempt": attempt.attempt, "at": iso(attempt.at), "status_code": attempt.status_code,
            "error": attempt.error, "outcome": attempt.outcome, "duration_ms": attempt.duration_ms}
