"""Commands sent to devices and the states their acknowledgements move them through."""

import json
import secrets
import string
import time
from dataclasses import dataclass

from .database import utc_now
from .errors import NotFound

NOT_FOUND = "Command not found."
OPEN_STATES = ("sent", "accepted")
FINAL_STATES = ("done", "failed", "expired")
_ID_ALPHABET = string.ascii_letters + string.digits
_COLUMNS = "id, type, payload, state, result, error, created_at, updated_at"


@dataclass(frozen=True)
class Command:
    id: str
    type: str
    payload: dict
    state: str
    result: object  # whatever JSON the device returned, or None
    error: str | None
    created_at: str
    updated_at: str


def _command_from_row(row):
    result = row["result"]
    return Command(
        row["id"], row["type"], json.loads(row["payload"]), row["state"],
        None if result is None else json.loads(result), row["error"], row["created_at"], row["updated_at"],
    )


def new_command_id():
    """22 random base62 characters (~131 bits): unguessable, short enough for a board's RAM."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


class CommandStore:
    def __init__(self, db):
        self.db = db

    async def create(self, device, type_, payload, *, timeout):
        """A new command in state `sent`, expiring after `timeout` seconds without a final ack."""
        now = utc_now()
        command = Command(new_command_id(), type_, payload, "sent", None, None, now, now)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO commands (id, device_id, type, payload, state, created_at, updated_at, expires_at)"
                " VALUES (?, ?, ?, ?, 'sent', ?, ?, ?)",
                (command.id, device.id, type_, json.dumps(payload), now, now, time.time() + timeout),
            )
        return command

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

    async def acknowledge(self, uid, command_id, state, *, result=None, error=None):
        """Apply a device's ack. Only the device the command was sent to can move it, only forward.

        Returns True when the command changed. `accepted` never overrides a final state, and
        nothing overrides a final state (a late or repeated ack is ignored).
        """
        allowed_from = ("sent",) if state == "accepted" else OPEN_STATES
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
        """Mark an open command failed by the backend itself (e.g. it could not be published)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE commands SET state = 'failed', error = ?, updated_at = ? WHERE id = ? AND state IN (?, ?)",
                (error, utc_now(), command_id, *OPEN_STATES),
            )

    async def expire(self, now=None):
        """Move open commands past their deadline to `expired`. Returns how many."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                # Literal states: SQLite uses the partial index commands_open only for them.
                "UPDATE commands SET state = 'expired', error = 'no acknowledgement in time', updated_at = ?"
                " WHERE state IN ('sent', 'accepted') AND expires_at < ?",
                (utc_now(), time.time() if now is None else now),
            )
        return cursor.rowcount
