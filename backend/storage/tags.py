"""Tags on a user's devices (migrations/007_tags_groups.sql): a device's, added and removed, and the user's with
how many devices have each. A tag exists while a device has it."""

import json
import sqlite3

from .devices import NOT_FOUND as DEVICE_NOT_FOUND
from .errors import NotFound

NOT_FOUND = "Tag not found."


class TagStore:
    def __init__(self, db):
        self.db = db

    async def of_device(self, device):
        """The device's tags, sorted."""
        rows = await self.db.fetch_all("SELECT tag FROM device_tags WHERE device_id = ? ORDER BY tag", (device.id,))
        return [row[0] for row in rows]

    async def of_devices(self, device_ids):
        """{device id: its tags, sorted} of the devices (a page of the device list; those without tags absent)."""
        rows = await self.db.fetch_all(
            "SELECT device_id, tag FROM device_tags WHERE device_id IN (SELECT value FROM json_each(?))"
            " ORDER BY device_id, tag", (json.dumps(list(device_ids)),))
        found = {}
        for device_id, tag in rows:
            found.setdefault(device_id, []).append(tag)
        return found

    async def add(self, device, tags, *, check):
        """Give the device `tags` (those it has already stay as they are). Returns its tags, sorted.

        `check(the device's tag count, the user's count of different tags)`, both as they would be, runs inside the
        transaction: what it raises rolls the change back. The user's count is read only when a tag is new to them
        (it walks their tags). Raises NotFound for a device deleted meanwhile.
        """
        try:
            return await self._add(device, tags, check)
        except sqlite3.IntegrityError:  # the device's row is gone
            raise NotFound(DEVICE_NOT_FOUND) from None

    async def _add(self, device, tags, check):
        async with self.db.transaction() as tx:
            new_to_user = await tx.execute_fetchall(
                "SELECT 1 FROM json_each(?) WHERE NOT EXISTS"
                " (SELECT 1 FROM device_tags WHERE user_id = ? AND tag = json_each.value) LIMIT 1",
                (json.dumps(tags), device.user_id),
            )
            await tx.executemany("INSERT OR IGNORE INTO device_tags (device_id, user_id, tag) VALUES (?, ?, ?)",
                                 [(device.id, device.user_id, tag) for tag in tags])
            (on_device,), = await tx.execute_fetchall(
                "SELECT count(*) FROM device_tags WHERE device_id = ?", (device.id,))
            on_user = None
            if new_to_user:
                (on_user,), = await tx.execute_fetchall(
                    "SELECT count(DISTINCT tag) FROM device_tags WHERE user_id = ?", (device.user_id,))
            check(on_device, on_user)
        return await self.of_device(device)

    async def remove(self, device, tag):
        """Take `tag` off the device. Returns its tags left, sorted. Raises NotFound when it does not have it."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM device_tags WHERE device_id = ? AND tag = ?", (device.id, tag))
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)
        return await self.of_device(device)

    async def counts(self, user_id):
        """[(tag, how many of the user's devices have it)], sorted by tag: one walk of their tags' index."""
        rows = await self.db.fetch_all(
            "SELECT tag, count(*) FROM device_tags WHERE user_id = ? GROUP BY tag ORDER BY tag", (user_id,))
        return [(tag, count) for tag, count in rows]
