"""Commands sent to devices and the states they go through (docs/api.md).

`queued` (held here until the device has room: the service layer paces, claim() takes them in
order) → `sent` (published) → `accepted` → `done` / `failed`, or `expired` past its deadline.
"""

import json
import secrets
import string
import time
from dataclasses import dataclass, replace

from .. import jsonvalues
from .database import utc_now
from .errors import NotFound

NOT_FOUND = "Command not found."
QUEUED = "queued"
AT_DEVICE = ("sent", "accepted")  # published, not final: what fills the device's queue
# As literals: SQLite uses a partial index (commands_at_device) only for the terms it was made with.
AT_DEVICE_SQL = "(" + ", ".join(f"'{state}'" for state in AT_DEVICE) + ")"
FINAL_STATES = ("done", "failed", "expired")
NOT_ACKNOWLEDGED = "no acknowledgement in time"
NOT_SENT = "not sent in time: earlier commands kept the device busy"
_ID_ALPHABET = string.ascii_letters + string.digits
_COLUMNS = "id, type, payload, state, result, error, created_at, updated_at"


@dataclass(frozen=True)
class Command:
    id: str
    type: str
    payload: dict | None  # None: a stored payload that breaks the JSON-value rule (jsonvalues.stored)
    state: str
    result: object  # whatever JSON the device returned, or None
    error: str | None
    created_at: str
    updated_at: str


def _command_from_row(row):
    # Decoded defensively: a row stored before the JSON-value rule may hold what no answer can carry.
    return Command(
        row["id"], row["type"], jsonvalues.stored(row["payload"]), row["state"],
        jsonvalues.stored(row["result"]), row["error"], row["created_at"], row["updated_at"],
    )


def new_command_id():
    """22 random base62 characters (~131 bits): unguessable, short enough for a board's RAM."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


async def insert_command(tx, command_id, device_id, type_, payload, *, hold):
    """Insert a `queued` command inside the transaction `tx` (also the OTA store's, with its job);
    it expires after `hold` seconds unless claim() takes it first. Returns the Command."""
    now = utc_now()  # under the write lock: created_at never runs against the rowid order
    await tx.execute(
        "INSERT INTO commands (id, device_id, type, payload, state, created_at, updated_at, expires_at)"
        " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
        (command_id, device_id, type_, json.dumps(payload), now, now, time.time() + hold),
    )
    return Command(command_id, type_, payload, QUEUED, None, None, now, now)


class CommandStore:
    def __init__(self, db):
        self.db = db

    async def create(self, device, type_, payload, *, hold):
        """A new command in state `queued`; it expires after `hold` seconds unless claim() takes it first."""
        async with self.db.transaction() as tx:
            return await insert_command(tx, new_command_id(), device.id, type_, payload, hold=hold)

    async def list(self, device, *, limit):
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM commands WHERE device_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (device.id, limit),
        )
        return [_command_from_row(row) for row in rows]

    async def get(self, device, command_id):
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM commands WHERE id = ? AND device_id = ?", (command_id, device.id)
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        return _command_from_row(row)

    async def claim(self, device_id, room, *, timeout):
        """Move the device's oldest queued commands to `sent`: as many as fit beside those already at the
        device, `room` in all. Each then expires `timeout(its type)` seconds from now. Returns them, oldest
        first.

        One transaction: two callers cannot both take the last free place.
        """
        free = f"max(0, ? - (SELECT count(*) FROM commands WHERE device_id = ? AND state IN {AT_DEVICE_SQL}))"
        (possible,) = await self.db.fetch_one(
            f"SELECT {free} > 0 AND EXISTS (SELECT 1 FROM commands WHERE device_id = ? AND state = 'queued')",
            (room, device_id, device_id),
        )
        if not possible:
            return []  # nothing held, or no room: the usual cases, answered without a write transaction
        async with self.db.transaction() as tx:
            rows = await tx.execute_fetchall(
                f"SELECT {_COLUMNS} FROM commands WHERE device_id = ? AND state = 'queued' ORDER BY rowid"
                f" LIMIT {free}",
                (device_id, room, device_id),
            )
            now = utc_now()
            await tx.executemany(
                "UPDATE commands SET state = 'sent', updated_at = ?, expires_at = ? WHERE id = ?",
                [(now, time.time() + timeout(row["type"]), row["id"]) for row in rows],
            )
        return [replace(_command_from_row(row), state="sent", updated_at=now) for row in rows]

    async def acknowledge(self, uid, command_id, state, *, result=None, error=None):
        """Apply a device's ack. Only the device the command was sent to can move it, only forward.

        Returns True when the command changed. `accepted` never overrides a final state, and
        nothing overrides a final state (a late or repeated ack is ignored), nor moves a command
        that was never published.
        """
        allowed_from = ("sent",) if state == "accepted" else AT_DEVICE
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE commands SET state = ?, result = ?, error = ?, updated_at = ?"
                f" WHERE id = ? AND state IN ({', '.join('?' * len(allowed_from))})"
                " AND device_id = (SELECT id FROM devices WHERE uid = ?)",
                (state, None if result is None else json.dumps(result), error, utc_now(),
                 command_id, *allowed_from, uid),
            )
        return cursor.rowcount == 1

    async def fail(self, command_id, error):
        """Mark a command that is not final failed by the backend itself (e.g. it could not be published)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE commands SET state = 'failed', error = ?, updated_at = ?"
                " WHERE id = ? AND state IN ('queued', 'sent', 'accepted')",
                (error, utc_now(), command_id),
            )

    async def expire(self, now=None):
        """Move commands past their deadline to `expired`. Returns [(command id, device uid)] of them."""
        async with self.db.transaction() as tx:
            return [tuple(row) for row in await tx.execute_fetchall(
                # Literal states: SQLite uses the partial index commands_open only for them.
                "UPDATE commands SET state = 'expired', updated_at = ?,"
                " error = CASE state WHEN 'queued' THEN ? ELSE ? END"
                " WHERE state IN ('queued', 'sent', 'accepted') AND expires_at < ?"
                " RETURNING id, (SELECT uid FROM devices WHERE devices.id = commands.device_id)",
                (utc_now(), NOT_SENT, NOT_ACKNOWLEDGED, time.time() if now is None else now),
            )]

    async def expire_queued(self, uid, error):
        """Expire every queued command of device `uid` with `error`. Returns their ids."""
        device = "(SELECT id FROM devices WHERE uid = ?)"
        if not await self.db.fetch_one(
            f"SELECT 1 FROM commands WHERE device_id = {device} AND state = 'queued' LIMIT 1", (uid,)
        ):
            return []  # the usual case, answered without a write transaction
        async with self.db.transaction() as tx:
            rows = await tx.execute_fetchall(
                "UPDATE commands SET state = 'expired', error = ?, updated_at = ?"
                f" WHERE device_id = {device} AND state = 'queued' RETURNING id",
                (error, utc_now(), uid),
            )
        return [row[0] for row in rows]
