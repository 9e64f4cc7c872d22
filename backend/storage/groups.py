"""Groups of a user's devices (migrations/007_tags_groups.sql): each with its name, description and how many
devices it has; devices added (several at once, all or none) and removed. Deleting a group leaves its devices;
deleting a device takes it out of its groups (a cascade)."""

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass

from .database import utc_now
from .devices import NOT_FOUND as DEVICE_NOT_FOUND
from .errors import Conflict, NotFound

NOT_FOUND = "Group not found."
NAME_TAKEN = "A group with this name already exists."
NOT_A_MEMBER = "The device is not in this group."
TOO_MANY = "A user can have at most {} groups."
NAMED_AT_MOST = 3  # unknown uids an answer names

_OWNED = "SELECT 1 FROM device_groups WHERE id = ? AND user_id = ?"
_SELECT = ("SELECT id, name, description,"
           " (SELECT count(*) FROM group_members WHERE group_id = device_groups.id) FROM device_groups")


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    description: str | None
    device_count: int


class UnknownDevices(NotFound):
    """Uids of a request that are no device of the user (`uids`, each once, in the request's order); the message
    names the first NAMED_AT_MOST of them, e.g. "Device not found: unix_a, unix_b (and 4 more)."."""

    def __init__(self, uids):
        more = f" (and {len(uids) - NAMED_AT_MOST} more)" if len(uids) > NAMED_AT_MOST else ""
        super().__init__(f"Device not found: {', '.join(uids[:NAMED_AT_MOST])}{more}.")
        self.uids = uids


class GroupStore:
    def __init__(self, db):
        self.db = db

    async def list(self, user_id):
        """Every group of the user, by name (ASCII letters in any case), ties by creation."""
        rows = await self.db.fetch_all(_SELECT + " WHERE user_id = ? ORDER BY name COLLATE NOCASE, id", (user_id,))
        return [Group(*row) for row in rows]

    async def get(self, user_id, group_id):
        """The group with its device count. Raises NotFound, also for another user's group."""
        row = await self.db.fetch_one(_SELECT + " WHERE id = ? AND user_id = ?", (group_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        return Group(*row)

    async def of_devices(self, device_ids):
        """{device id: [(group id, name)] in the group list's order} of the devices (those in no group absent)."""
        rows = await self.db.fetch_all(
            "SELECT m.device_id, g.id, g.name FROM group_members AS m JOIN device_groups AS g ON g.id = m.group_id"
            " WHERE m.device_id IN (SELECT value FROM json_each(?)) ORDER BY g.name COLLATE NOCASE, g.id",
            (json.dumps(list(device_ids)),))
        found = {}
        for device_id, group_id, name in rows:
            found.setdefault(device_id, []).append((group_id, name))
        return found

    async def check_owner(self, user_id, group_id):
        """Raise NotFound unless the group is the user's (without counting its devices)."""
        if await self.db.fetch_one(_OWNED, (group_id, user_id)) is None:
            raise NotFound(NOT_FOUND)

    async def create(self, user_id, name, description, *, most):
        """A new group without devices. Raises Conflict when the user has one of this name, or `most` groups."""
        with _name_taken_is_a_conflict():
            async with self.db.transaction() as tx:
                (count,), = await tx.execute_fetchall("SELECT count(*) FROM device_groups WHERE user_id = ?",
                                                      (user_id,))
                if count >= most:
                    raise Conflict(TOO_MANY.format(most))
                cursor = await tx.execute(
                    "INSERT INTO device_groups (user_id, name, description, created_at) VALUES (?, ?, ?, ?)",
                    (user_id, name, description, utc_now()))
        return Group(cursor.lastrowid, name, description, 0)

    async def update(self, user_id, group_id, changes):
        """Change `name` and `description` (those given). Returns the group. Raises NotFound, or Conflict for a
        name another of the user's groups has."""
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            with _name_taken_is_a_conflict():
                async with self.db.transaction() as tx:
                    cursor = await tx.execute(f"UPDATE device_groups SET {assignments} WHERE id = ? AND user_id = ?",
                                              (*changes.values(), group_id, user_id))
                    if cursor.rowcount == 0:
                        raise NotFound(NOT_FOUND)
        return await self.get(user_id, group_id)

    async def delete(self, user_id, group_id, *, changed=None):
        """Delete the group; its devices stay. Raises NotFound. `changed(tx, ids of the devices it had)` runs inside
        the transaction, after the change (their configuration follows: storage/configuration.py)."""
        async with self.db.transaction() as tx:
            members = await tx.execute_fetchall("SELECT device_id FROM group_members WHERE group_id = ?", (group_id,))
            cursor = await tx.execute("DELETE FROM device_groups WHERE id = ? AND user_id = ?", (group_id, user_id))
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)
            if changed is not None:
                await changed(tx, [row[0] for row in members])

    async def add_devices(self, user_id, group_id, uids, *, changed=None):
        """Put the user's devices `uids` into the group (those in it already stay). Returns the group. `changed` as
        delete()'s, with the ids of `uids`.

        All or none: raises UnknownDevices (a NotFound naming them) when uids are no device of the user, and nothing
        is added; NotFound for the group.
        """
        async with self.db.transaction() as tx:
            await _check_owner(tx, user_id, group_id)
            rows = await tx.execute_fetchall(
                "SELECT json_each.value, devices.id FROM json_each(?)"
                " LEFT JOIN devices ON devices.uid = json_each.value AND devices.user_id = ? ORDER BY json_each.key",
                (json.dumps(uids), user_id))
            unknown = [uid for uid, device_id in rows if device_id is None]
            if unknown:
                raise UnknownDevices(list(dict.fromkeys(unknown)))
            await tx.executemany("INSERT OR IGNORE INTO group_members (group_id, device_id) VALUES (?, ?)",
                                 [(group_id, device_id) for _, device_id in rows])
            if changed is not None:
                await changed(tx, list(dict.fromkeys(device_id for _, device_id in rows)))
        return await self.get(user_id, group_id)

    async def remove_device(self, user_id, group_id, uid, *, changed=None):
        """Take the device `uid` out of the group. Returns the group. Raises NotFound for the group, the device, or
        a device that is not in it. `changed` as delete()'s, with the device's id."""
        async with self.db.transaction() as tx:
            await _check_owner(tx, user_id, group_id)
            device = await (await tx.execute("SELECT id FROM devices WHERE uid = ? AND user_id = ?",
                                             (uid, user_id))).fetchone()
            if device is None:
                raise NotFound(DEVICE_NOT_FOUND)
            cursor = await tx.execute("DELETE FROM group_members WHERE group_id = ? AND device_id = ?",
                                      (group_id, device[0]))
            if cursor.rowcount == 0:
                raise NotFound(NOT_A_MEMBER)
            if changed is not None:
                await changed(tx, [device[0]])
        return await self.get(user_id, group_id)


async def _check_owner(tx, user_id, group_id):
    if await (await tx.execute(_OWNED, (group_id, user_id))).fetchone() is None:
        raise NotFound(NOT_FOUND)


@contextmanager
def _name_taken_is_a_conflict():
    """The unique index on a user's group names, broken, as Conflict(NAME_TAKEN)."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" not in str(error):
            raise
        raise Conflict(NAME_TAKEN) from None
