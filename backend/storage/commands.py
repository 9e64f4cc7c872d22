"""Commands sent to devices and the states they go through (docs/api.md).

`queued` (held here until the device has room: the service layer paces, claim() takes them in
order) → `sent` (published) → `accepted` → `done` / `failed`, or `expired` past its deadline. A command with
a ttl stays queued while its device is offline, until the ttl runs out (migrations/009_bulk_commands.sql).
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
NOT_SENT_IN_TTL = "not sent within its ttl"
# Why a device gets no command (the seed's 409 messages; a bulk job's outcome for such a device).
DEVICE_OFFLINE = "Device is offline."
DEVICE_DISABLED = "Device is disabled."
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 22
_ID_DRAWS = (1 << 136) // len(_ID_ALPHABET) ** _ID_LENGTH * len(_ID_ALPHABET) ** _ID_LENGTH  # a multiple of 62^22
_COLUMNS = "id, type, payload, state, result, error, created_at, updated_at"
_INSERT = ("INSERT INTO commands (id, device_id, type, payload, state, created_at, updated_at, expires_at, ttl)"
           " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)")
# The queued commands that fit at each device ([[device id, room], ...] as JSON: room is how many may be at it
# at once), oldest first. The partial indexes of migrations/004 serve both probes.
_CLAIMABLE = f"""
WITH room AS (
    SELECT json_extract(value, '$[0]') AS device_id, json_extract(value, '$[1]') AS most FROM json_each(?)
), space AS (
    SELECT device_id, most - (SELECT count(*) FROM commands WHERE commands.device_id = room.device_id
                              AND state IN {AT_DEVICE_SQL}) AS free
    FROM room
), ranked AS (
    SELECT commands.rowid AS position, free,
           row_number() OVER (PARTITION BY commands.device_id ORDER BY commands.rowid) AS n
    FROM space JOIN commands ON commands.device_id = space.device_id AND commands.state = 'queued'
    WHERE free > 0
)
SELECT {_COLUMNS}, device_id FROM ranked JOIN commands ON commands.rowid = ranked.position WHERE n <= free
ORDER BY commands.rowid"""


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
    """22 random base62 characters (~131 bits): unguessable, short enough for a board's RAM. From one draw of 136
    random bits (again in the 0.5 % of draws past the last whole multiple of 62^22, so that each id is as likely):
    5x faster than 22 secrets.choice() calls, which took 260 ms of the event loop for a bulk job's 10,000."""
    while True:
        number = int.from_bytes(secrets.token_bytes(17), "big")
        if number < _ID_DRAWS:
            break
    characters = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, len(_ID_ALPHABET))
        characters.append(_ID_ALPHABET[digit])
    return "".join(characters)


async def insert_command(tx, command_id, device_id, type_, payload, *, hold, ttl=None):
    """Insert a `queued` command inside the transaction `tx` (also the OTA store's, with its job);
    it expires after `hold` seconds (its `ttl` instead, when it has one) unless claim() takes it first.
    Returns the Command."""
    now = await insert_commands(tx, [(command_id, device_id, type_, json.dumps(payload))], hold=hold, ttl=ttl)
    return Command(command_id, type_, payload, QUEUED, None, None, now, now)


async def insert_commands(tx, rows, *, hold, ttl):
    """Insert `queued` commands, (id, device id, type, payload as JSON) each, in one statement inside `tx` (a
    bulk job's too), expiring as insert_command's. Returns their created_at."""
    now = utc_now()  # under the write lock: created_at never runs against the rowid order
    expires = time.time() + (hold if ttl is None else ttl)
    await tx.executemany(_INSERT, [(*row[:4], now, now, expires, ttl) for row in rows])
    return now


class CommandStore:
    def __init__(self, db):
        self.db = db

    async def create(self, device, type_, payload, *, hold, ttl=None):
        """A new command in state `queued`; it expires after `hold` seconds (`ttl`, when given, also while the
        device is offline) unless claim() takes it first."""
        async with self.db.transaction() as tx:
            return await insert_command(tx, new_command_id(), device.id, type_, payload, hold=hold, ttl=ttl)

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
        first. (claim_many for one device.)"""
        return (await self.claim_many({device_id: room}, timeout=timeout)).get(device_id, [])

    async def claim_many(self, rooms, *, timeout):
        """claim() for many devices at once ({device id: room}), in one transaction: two callers cannot both
        take the last free place of a device. Returns {device id: its commands claimed, oldest first}."""
        params = (json.dumps([[device_id, room] for device_id, room in rooms.items()]),)
        if not await self.db.fetch_one(_CLAIMABLE + " LIMIT 1", params):
            return {}  # nothing held, or no room: the usual cases, answered without a write transaction
        async with self.db.transaction() as tx:
            rows = await tx.execute_fetchall(_CLAIMABLE, params)
            now = utc_now()
            await tx.executemany(
                "UPDATE commands SET state = 'sent', updated_at = ?, expires_at = ? WHERE id = ?",
                [(now, time.time() + timeout(row["type"]), row["id"]) for row in rows],
            )
        claimed = {}
        for row in rows:
            claimed.setdefault(row["device_id"], []).append(replace(_command_from_row(row), state="sent",
                                                                    updated_at=now))
        return claimed

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
                " error = CASE WHEN state <> 'queued' THEN ? WHEN ttl IS NULL THEN ? ELSE ? END"
                " WHERE state IN ('queued', 'sent', 'accepted') AND expires_at < ?"
                " RETURNING id, (SELECT uid FROM devices WHERE devices.id = commands.device_id)",
                (utc_now(), NOT_ACKNOWLEDGED, NOT_SENT, NOT_SENT_IN_TTL, time.time() if now is None else now),
            )]

    async def expire_queued(self, uid, error, *, keep_ttl=False):
        """Expire the queued commands of device `uid` with `error`: every one, or with `keep_ttl` those without a
        ttl (a device gone offline: the others wait for it). Returns their ids."""
        which = "device_id = (SELECT id FROM devices WHERE uid = ?) AND state = 'queued'" + (
            " AND ttl IS NULL" if keep_ttl else "")
        if not await self.db.fetch_one(f"SELECT 1 FROM commands WHERE {which} LIMIT 1", (uid,)):
            return []  # the usual case, answered without a write transaction
        async with self.db.transaction() as tx:
            rows = await tx.execute_fetchall(
                f"UPDATE commands SET state = 'expired', error = ?, updated_at = ? WHERE {which} RETURNING id",
                (error, utc_now(), uid),
            )
        return [row[0] for row in rows]
