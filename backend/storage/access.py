"""Device access changes (remove, disable, enable) waiting for the broker to confirm them.

Deleting or disabling a device changes its row first; telling the broker comes after and can fail
(an external Mosquitto down). Such a change is kept here, keyed by uid so that only the newest wish
for a device is retried, until the broker takes it.
"""

from dataclasses import dataclass

from .database import utc_now

CHANGES = ("remove", "disable", "enable")


@dataclass(frozen=True)
class PendingAccess:
    uid: str
    change: str
    attempts: int
    last_error: str


class AccessStore:
    def __init__(self, db):
        self.db = db

    async def remember(self, uid, change, error):
        """Keep `change` for `uid` (replacing an older one), or count another failed attempt of it.
        `error` is why the broker did not take it: an exception or a text."""
        if change not in CHANGES:
            raise ValueError(f"not an access change: {change!r}")
        error = str(error) or type(error).__name__
        now = utc_now()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO pending_access (uid, change, last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (uid) DO UPDATE SET last_error = excluded.last_error, updated_at = excluded.updated_at,"
                " attempts = CASE WHEN change = excluded.change THEN attempts + 1 ELSE 1 END, change = excluded.change",
                (uid, change, error, now, now),
            )

    async def forget(self, uid, change=None):
        """The broker took `change` (or any change, when None): nothing is pending for `uid` any more."""
        if not await self.db.fetch_one("SELECT 1 FROM pending_access WHERE uid = ?", (uid,)):
            return  # the usual case, answered without a write transaction
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM pending_access WHERE uid = ? AND (? IS NULL OR change = ?)",
                             (uid, change, change))

    async def pending(self, limit=100):
        rows = await self.db.fetch_all(
            "SELECT uid, change, attempts, last_error FROM pending_access ORDER BY updated_at LIMIT ?", (limit,))
        return [PendingAccess(*row) for row in rows]
