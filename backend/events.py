"""Live events for the user API's WebSocket (GET /v1/user/events, handlers/events.py; docs/api.md, Live events).

    hub = EventHub()
    subscription = hub.subscribe(user_id)     # a bounded queue of that user's events
    event = await subscription.next()         # a dict; once it ended, why: TOO_SLOW or GOING_AWAY
    hub.publish(user_id, {"type": ...})       # never waits: a subscriber whose queue is full is cut off

LiveEvents stands between the bridge and the service layer (lifecycle.service_ctx): each device report the bridge
hands on goes to the service first, then, as an event, to the device owner's subscribers:

    device_status_update  {"type", "uid", "old_status", "new_status", "timestamp", "reason"} (seed 003's shape; the
                          reason as the presence history has it)
    command_update        {"type", "uid", "command_id", "state", "result", "error", "timestamp"} (the device's acks)
    ota_progress          {"type", "uid", "job_id", "state", "progress", "error", "timestamp"} (its `ota` reports)
    device_config_update  {"type", "uid", "desired", "own", "version", "reported", "in_sync", "timestamp"} (its
                          `config_report`s: GET .../configuration's data as it is then)

Publishing puts a dict on each queue and returns: a slow WebSocket client never slows the bridge, and never holds
more than QUEUE_LIMIT events; past that it is cut off (closed with code 1008) and reconnects when it can.
"""

import asyncio
from datetime import datetime, timezone

from . import configuration

QUEUE_LIMIT = 1000  # events waiting for one subscriber before it is cut off


# Why a subscription ended: a WebSocket close code and its reason (next() returns one in place of an event).
TOO_SLOW = (1008, "too slow: events were dropped; connect again")
GOING_AWAY = (1001, "the server is shutting down")


class Subscription:
    def __init__(self, hub, user_id, limit):
        self._hub, self.user_id, self._limit = hub, user_id, limit
        self._queue = asyncio.Queue(limit + 1)  # one place more: for the end
        self.ended = None  # TOO_SLOW or GOING_AWAY once it ended

    def offer(self, event):
        if self.ended is None:
            if self._queue.qsize() >= self._limit:  # too slow: what it has not taken goes
                self.end(TOO_SLOW)
            else:
                self._queue.put_nowait(event)

    def end(self, why):
        """No more events: next() returns `why` (a close code and reason) at once."""
        if self.ended is None:
            self.ended = why
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(why)

    async def next(self):
        """The next event (a dict), or, once the subscription ended, why (a tuple: close code, reason)."""
        return await self._queue.get()

    def close(self):
        self._hub._subscribers.get(self.user_id, set()).discard(self)


class EventHub:
    def __init__(self, limit=QUEUE_LIMIT):
        self._limit = limit
        self._subscribers = {}  # user id -> set of Subscription

    def subscribe(self, user_id):
        subscription = Subscription(self, user_id, self._limit)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        return subscription

    def publish(self, user_id, event):
        for subscription in list(self._subscribers.get(user_id, ())):
            subscription.offer(event)

    def watching(self, user_id=None):
        """Whether the user (or, without one, anyone) has a subscription open."""
        if user_id is None:
            return any(self._subscribers.values())
        return bool(self._subscribers.get(user_id))

    def end_all(self):
        """Every subscription ends (GOING_AWAY): the server is stopping, its WebSockets close."""
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.end(GOING_AWAY)


class LiveEvents:
    """The bridge's events (bridge.StorageEvents' interface): handed to `inner` (the service), then published."""

    def __init__(self, inner, storage, hub):
        self.inner, self.storage, self.hub = inner, storage, hub

    async def device_status(self, uid, report):
        if not self.hub.watching():  # nobody watches: no read on the bridge's path
            return await self.inner.device_status(uid, report)
        before = await self.storage.presence.status_of(uid)
        await self.inner.device_status(uid, report)
        if before is None or not self.hub.watching(before.user_id):
            return
        after = await self.storage.presence.status_of(uid)
        if after is not None and after.status != before.status:
            self.hub.publish(after.user_id, {
                "type": "device_status_update", "uid": uid, "old_status": before.status,
                "new_status": after.status, "timestamp": after.changed_at or _now(), "reason": after.reason})

    async def command_ack(self, uid, command_id, state, result, error):
        await self.inner.command_ack(uid, command_id, state, result, error)
        await self._publish(uid, {"type": "command_update", "uid": uid, "command_id": command_id, "state": state,
                                  "result": result, "error": error})

    async def ota_report(self, uid, job_id, state, progress, error):
        await self.inner.ota_report(uid, job_id, state, progress, error)
        await self._publish(uid, {"type": "ota_progress", "uid": uid, "job_id": job_id, "state": state,
                                  "progress": progress, "error": error})

    async def config_report(self, uid, version, applied, errors):
        kept = await self.inner.config_report(uid, version, applied, errors)
        if kept is not None and self.hub.watching(kept[0]):
            self.hub.publish(kept[0], {"type": "device_config_update", "uid": uid, **configuration.as_json(kept[1]),
                                       "timestamp": _now()})
        return kept

    async def _publish(self, uid, event):
        if not self.hub.watching():
            return
        owner = await self.storage.presence.status_of(uid)
        if owner is not None and self.hub.watching(owner.user_id):
            self.hub.publish(owner.user_id, {**event, "timestamp": _now()})


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
