"""Notification channels and their delivery log (migrations/010_alarms_notifications.sql): a user's webhooks,
made, listed, changed, deleted; the enabled ones an alarm change goes to; every attempt of every delivery, the newest
DELIVERIES_KEPT of a channel kept."""

import time
from dataclasses import dataclass

from .errors import Conflict, NotFound

NOT_FOUND = "Notification channel not found."
TOO_MANY = "A user can have at most {} notification channels."
DELIVERIES_KEPT = 200

_SELECT = "SELECT id, user_id, name, channel_type, url, secret, is_enabled, created_at FROM notification_channels"


@dataclass(frozen=True)
class Channel:
    id: int
    user_id: int
    name: str
    channel_type: str
    url: str
    secret: str | None  # never answered in full (handlers/notifications.py shows its end)
    is_enabled: bool
    created_at: float


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery, as the log keeps it."""

    delivery: str  # the delivery's id, the same on each of its attempts
    event: str  # alarm.<timeline event>, or test
    alarm_id: int | None
    attempt: int  # 1, 2, ...
    at: float
    status_code: int | None  # the receiver's answer, None when there was none
    error: str | None  # why it failed, when it did
    outcome: str  # delivered, retrying, failed
    duration_ms: int


def _channel(row):
    fields = list(row)
    fields[6] = bool(fields[6])
    return Channel(*fields)


class ChannelStore:
    def __init__(self, db):
        self.db = db

    async def list(self, user_id):
        rows = await self.db.fetch_all(_SELECT + " WHERE user_id = ? ORDER BY id", (user_id,))
        return [_channel(row) for row in rows]

    async def get(self, user_id, channel_id):
        """The user's channel. Raises NotFound, also for another user's."""
        row = await self.db.fetch_one(_SELECT + " WHERE id = ? AND user_id = ?", (channel_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        return _channel(row)

    async def find(self, channel_id):
        """The channel of any user, or None (deleted)."""
        row = await self.db.fetch_one(_SELECT + " WHERE id = ?", (channel_id,))
        return None if row is None else _channel(row)

    async def enabled_webhooks(self, user_id):
        """The ids of the user's enabled webhook channels."""
        rows = await self.db.fetch_all(
            "SELECT id FROM notification_channels WHERE user_id = ? AND channel_type = 'webhook' AND is_enabled"
            " ORDER BY id", (user_id,))
        return [row[0] for row in rows]

    async def create(self, user_id, channel, *, most):
        """A new channel of validated `channel` (alarm_schemas.new_channel). Raises Conflict past `most`."""
        async with self.db.transaction() as tx:
            (count,), = await tx.execute_fetchall("SELECT count(*) FROM notification_channels WHERE user_id = ?",
                                                  (user_id,))
            if count >= most:
                raise Conflict(TOO_MANY.format(most))
            cursor = await tx.execute(
                "INSERT INTO notification_channels (user_id, name, channel_type, url, secret, is_enabled, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, channel["name"], channel["channel_type"], channel["url"], channel["secret"],
                 channel["is_enabled"], time.time()))
        return await self.get(user_id, cursor.lastrowid)

    async def update(self, user_id, channel_id, changes):
        """Change the fields in `changes` (alarm_schemas.channel_update). Returns the channel. Raises NotFound."""
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            async with self.db.transaction() as tx:
                cursor = await tx.execute(
                    f"UPDATE notification_channels SET {assignments} WHERE id = ? AND user_id = ?",
                    (*changes.values(), channel_id, user_id))
                if cursor.rowcount == 0:
                    raise NotFound(NOT_FOUND)
        return await self.get(user_id, channel_id)

    async def delete(self, user_id, channel_id):
        """Delete the channel and its log. Raises NotFound."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM notification_channels WHERE id = ? AND user_id = ?",
                                      (channel_id, user_id))
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)

    async def log(self, channel_id, attempt):
        """Add an Attempt to the channel's log, keeping its newest DELIVERIES_KEPT (nothing for a deleted one)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhook_deliveries (channel_id, delivery, event, alarm_id, attempt, at, status_code,"
                " error, outcome, duration_ms) SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM notification_channels"
                " WHERE id = ?",
                (attempt.delivery, attempt.event, attempt.alarm_id, attempt.attempt, attempt.at, attempt.status_code,
                 attempt.error, attempt.outcome, attempt.duration_ms, channel_id))
            await tx.execute(
                "DELETE FROM webhook_deliveries WHERE channel_id = ?1 AND id <= (SELECT id FROM webhook_deliveries"
                " WHERE channel_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)", (channel_id, DELIVERIES_KEPT))

    async def deliveries(self, channel, *, limit, offset):
        """One page of the channel's log, newest first, and how many it holds."""
        rows = await self.db.fetch_all(
            "SELECT delivery, event, alarm_id, attempt, at, status_code, error, outcome, duration_ms"
            " FROM webhook_deliveries WHERE channel_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (channel.id, limit, offset))
        (total,) = await self.db.fetch_one("SELECT count(*) FROM webhook_deliveries WHERE channel_id = ?",
                                           (channel.id,))
        return [Attempt(*row) for row in rows], total
