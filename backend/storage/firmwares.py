"""Firmware rows of a device, and their blobs on disk."""

import asyncio
import sqlite3
from dataclasses import dataclass, replace

from .blobs import sha256_of
from .database import utc_now
from .errors import Conflict, NotFound

DUPLICATE = "This firmware file is already uploaded."
IN_USE = "Cannot delete firmware while it is assigned to any device."
MD5_NOT_FOUND = "Firmware with the provided md5 was not found for this device."
NOT_FOUND = "Firmware not found."

COLUMNS = "id, device_id, name, version, notes, md5, size, kind, created_at, sha256"  # devices.py joins them too


@dataclass(frozen=True)
class Firmware:
    id: int
    device_id: int
    name: str
    version: str | None
    notes: str | None
    md5: str
    size: int
    kind: str  # "esp32-app", "bundle" or "raw"
    created_at: str
    sha256: str | None  # None: uploaded before sha256 was kept, until with_sha256() computes it
    is_current: bool = False
    is_target: bool = False


def firmware_from_row(row, device):
    return Firmware(
        **dict(zip(row.keys(), row)),
        is_current=row["id"] == device.current_firmware_id,
        is_target=row["id"] == device.target_firmware_id,
    )


class FirmwareStore:
    def __init__(self, db, blobs):
        self.db = db
        self.blobs = blobs

    async def list(self, device):
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM firmwares WHERE device_id = ? ORDER BY id DESC", (device.id,)
        )
        return [firmware_from_row(row, device) for row in rows]

    async def get(self, device, firmware_id):
        row = await self.db.fetch_one(
            f"SELECT {COLUMNS} FROM firmwares WHERE id = ? AND device_id = ?", (firmware_id, device.id)
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        return firmware_from_row(row, device)

    async def add(self, device, incoming, *, name, version, notes):
        """Record a finished upload and move its file into place.

        Raises Conflict when this device already has a firmware with that md5,
        NotFound when the device was deleted meanwhile. The caller discards
        `incoming` on error.
        """
        md5, sha256, size, kind = await asyncio.to_thread(incoming.finish)  # BundleError goes to the caller
        async with self.db.transaction() as tx:
            try:
                cursor = await tx.execute(
                    "INSERT INTO firmwares (device_id, name, version, notes, md5, size, kind, created_at, sha256)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (device.id, name, version, notes, md5, size, kind, utc_now(), sha256),
                )
            except sqlite3.IntegrityError as error:
                if "UNIQUE" in str(error):
                    raise Conflict(DUPLICATE) from None
                raise NotFound("Device not found.") from None
            # Inside the transaction: a crash after this rename and before COMMIT
            # leaves an orphan blob, which the start-up sweep removes.
            self.blobs.adopt(incoming, md5)
        return await self.get(device, cursor.lastrowid)

    async def with_sha256(self, firmware):
        """`firmware` with its sha256: a row uploaded before sha256 was kept gets it from its blob, once.
        Raises FileNotFoundError when the blob is gone."""
        if firmware.sha256 is not None:
            return firmware
        sha256 = await asyncio.to_thread(sha256_of, self.blobs.path(firmware.md5))
        async with self.db.transaction() as tx:  # every row of this md5: they share the blob
            await tx.execute("UPDATE firmwares SET sha256 = ? WHERE md5 = ? AND sha256 IS NULL", (sha256, firmware.md5))
        return replace(firmware, sha256=sha256)

    async def update(self, device, firmware_id, fields):
        """Change name / version / notes. Raises NotFound."""
        if fields:
            assignments = ", ".join(f"{column} = ?" for column in fields)
            async with self.db.transaction() as tx:
                await tx.execute(
                    f"UPDATE firmwares SET {assignments} WHERE id = ? AND device_id = ?",
                    (*fields.values(), firmware_id, device.id),
                )
        return await self.get(device, firmware_id)

    async def delete(self, device, firmware_id):
        """Delete a firmware not assigned anywhere, and its blob when no row shares it.

        Raises NotFound, or Conflict while it is some device's current or target firmware.
        """
        async with self.db.transaction() as tx:
            row = await (
                await tx.execute("SELECT md5 FROM firmwares WHERE id = ? AND device_id = ?", (firmware_id, device.id))
            ).fetchone()
            if row is None:
                raise NotFound(NOT_FOUND)
            in_use = await (
                await tx.execute(
                    "SELECT 1 FROM devices WHERE current_firmware_id = ? OR target_firmware_id = ? LIMIT 1",
                    (firmware_id, firmware_id),
                )
            ).fetchone()
            if in_use:
                raise Conflict(IN_USE)
            await tx.execute("DELETE FROM firmwares WHERE id = ?", (firmware_id,))
            await remove_unreferenced_blobs(self.db, tx, self.blobs, [row["md5"]])

    async def set_target(self, device, md5):
        """Assign the device's firmware with this md5 as its target. Raises NotFound."""
        async with self.db.transaction() as tx:
            row = await (
                await tx.execute("SELECT id FROM firmwares WHERE device_id = ? AND md5 = ?", (device.id, md5))
            ).fetchone()
            if row is None:
                raise NotFound(MD5_NOT_FOUND)
            await tx.execute("UPDATE devices SET target_firmware_id = ? WHERE id = ?", (row["id"], device.id))

    async def clear_target(self, device):
        """The device has no target firmware any more (also when it had none)."""
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE devices SET target_firmware_id = NULL WHERE id = ?", (device.id,))

    async def referenced_md5s(self):
        return {row["md5"] for row in await self.db.fetch_all("SELECT DISTINCT md5 FROM firmwares")}


async def remove_unreferenced_blobs(db, tx, blobs, md5s):
    """After COMMIT, unlink the blobs of `md5s` that no firmware row refers to any more.

    Checked inside the deleting transaction and unlinked before its write lock
    is released, so no upload of the same file can adopt a blob in between.
    """
    for md5 in set(md5s):
        still_used = await (await tx.execute("SELECT 1 FROM firmwares WHERE md5 = ? LIMIT 1", (md5,))).fetchone()
        if not still_used:
            db.on_commit(lambda md5=md5: blobs.remove(md5))
