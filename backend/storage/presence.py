"""A device's presence history (migrations/008_presence_stats.sql): the changes of its status, written by triggers
in the transaction of each change, read here newest first."""

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class PresenceEvent:
    at: float  # unix seconds
    status: str  # the status it changed to
    previous: str
    boot: int | None  # the boot count the device reported, when online
    reason: str

    @property
    def time(self):
        return datetime.fromtimestamp(self.at, timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class DeviceStatus:
    user_id: int
    status: str
    changed_at: str | None  # when it last changed (its newest presence event), ISO 8601
    reason: str | None


class PresenceStore:
    def __init__(self, db):
        self.db = db

    async def history(self, device, *, since=None, limit):
        """The device's events from unix time `since` on (all when None), newest first, at most `limit`."""
        rows = await self.db.fetch_all(
            "SELECT at, status, previous, boot, reason FROM presence_events WHERE device_id = ? AND at >= ?"
            " ORDER BY at DESC, id DESC LIMIT ?", (device.id, since if since is not None else 0, limit))
        return [PresenceEvent(*row) for row in rows]

    async def status_of(self, uid):
        """The owner and status of device `uid` with its newest event's time and reason (a DeviceStatus), or
        None for no such device (live events, events.py)."""
        row = await self.db.fetch_one(
            "SELECT d.user_id, d.status, p.at, p.reason FROM devices d LEFT JOIN presence_events p ON p.id = (SELECT"
            " id FROM presence_events WHERE device_id = d.id ORDER BY at DESC, id DESC LIMIT 1) WHERE d.uid = ?",
            (uid,))
        if row is None:
            return None
        at = datetime.fromtimestamp(row[2], timezone.utc).isoformat(timespec="milliseconds") if row[2] else None
        return DeviceStatus(user_id=row[0], status=row[1], changed_at=at, reason=row[3])

    async def last_before(self, device, at):
        """The device's last event before unix time `at`, or None: its status when a window began."""
        row = await self.db.fetch_one(
            "SELECT at, status, previous, boot, reason FROM presence_events WHERE device_id = ? AND at < ?"
            " ORDER BY at DESC, id DESC LIMIT 1", (device.id, at))
        return PresenceEvent(*row) if row else None

