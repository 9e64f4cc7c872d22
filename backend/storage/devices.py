"""Devices: registration, lookup by owner, the filtered list (tags and groups among its filters), edits, deletion."""

import json
import sqlite3
from dataclasses import dataclass, replace
from typing import NamedTuple

from .. import credentials, jsonvalues
from .database import utc_now
from .errors import NotFound
from .firmwares import COLUMNS as FIRMWARE_COLUMNS
from .firmwares import Firmware, firmware_from_row, remove_unreferenced_blobs

NOT_FOUND = "Device not found."

# `status` (pending / online / offline / disabled) is a column that a trigger keeps: its one definition is in
# migrations/006_device_list.sql.
_COLUMNS = (
    "id, uid, user_id, name, description, platform_key, board_key, board_variant, enabled, is_online,"
    " public_ip, local_ip, last_rssi, first_seen_at, last_seen_at, last_ota_at,"
    " current_firmware_id, target_firmware_id, meta, created_at, status"
)
_SUMMARY_COLUMNS = "uid, name, status, last_seen_at, platform_key, board_key, board_variant, id"
# The list's sort keys → the ordering they stand for; ties (and created_at itself) go by id, which grows with
# registration, so that the index walked is the one of the list without a sort (devices_by_user).
SORTS = {"name": "name COLLATE NOCASE", "last_seen_at": "last_seen_at", "created_at": None}


@dataclass(frozen=True)
class DeviceFilter:
    """What the device list keeps (None: any). Each set field must match; `online` true is status online
    (the only status with is_online), false any other; `search` is a substring of the name or the
    description, ASCII letters in any case (SQLite's LIKE); `tag` one of the device's tags, `group` the id of a
    group it is in (of its user: another's has none of their devices)."""

    status: str | None = None
    online: bool | None = None
    platform: str | None = None
    board: str | None = None
    firmware_md5: str | None = None  # what the device reports running (`fw` in its status)
    firmware_version: str | None = None
    search: str | None = None
    tag: str | None = None
    group: int | None = None

    def where(self):
        """(SQL conditions joined by AND, their parameters), after `user_id = ?`."""
        conditions, params = [], []
        for column, value in (("status", self.status), ("platform_key", self.platform),
                              ("board_key", self.board), ("fw_md5", self.firmware_md5),
                              ("fw_version", self.firmware_version)):
            if value is not None:
                conditions.append(f" AND {column} = ?")
                params.append(value)
        if self.online is not None:
            conditions.append(" AND status = 'online'" if self.online else " AND status <> 'online'")
        if self.search:
            pattern = "%" + self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(" AND (name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        # A probe of the tag's or the membership's primary key per device (migrations/007_tags_groups.sql).
        if self.tag is not None:
            conditions.append(" AND EXISTS (SELECT 1 FROM device_tags WHERE device_tags.device_id = devices.id"
                              " AND device_tags.tag = ?)")
            params.append(self.tag)
        if self.group is not None:
            conditions.append(" AND EXISTS (SELECT 1 FROM group_members WHERE group_members.group_id = ?"
                              " AND group_members.device_id = devices.id)")
            params.append(self.group)
        return "".join(conditions), params


class DeviceSummary(NamedTuple):
    """What the device list shows; built straight from a row (lists are the hot path)."""

    uid: str
    name: str
    status: str
    last_seen_at: str | None
    platform_key: str
    board_key: str
    board_variant: str | None
    id: int  # (its tags and groups are read by it)


@dataclass(frozen=True)
class Device:
    id: int
    uid: str
    user_id: int
    name: str
    description: str | None
    platform_key: str
    board_key: str
    board_variant: str | None
    enabled: bool
    is_online: bool
    public_ip: str | None
    local_ip: str | None
    last_rssi: int | None
    first_seen_at: str | None
    last_seen_at: str | None
    last_ota_at: str | None
    current_firmware_id: int | None
    target_firmware_id: int | None
    meta: dict
    created_at: str
    status: str  # pending / online / offline / disabled, kept by migrations/006_device_list.sql
    current_firmware: Firmware | None = None
    target_firmware: Firmware | None = None


def _device_from_row(row):
    fields = dict(zip(row.keys(), row))
    fields.update(enabled=bool(row["enabled"]), is_online=bool(row["is_online"]), meta=_meta(row["meta"]))
    return Device(**fields)


def _meta(text):
    """The stored meta, without the entries that break the JSON-value rule: a status stored before the
    rule (a `boot` 300 levels deep) must not make the device unreadable."""
    try:
        meta = jsonvalues.loads(text)
    except jsonvalues.NotJson:
        return {}
    if not isinstance(meta, dict):
        return {}
    return {key: value for key, value in meta.items() if jsonvalues.problem(value) is None}


class DeviceStore:
    def __init__(self, db, blobs):
        self.db = db
        self.blobs = blobs

    async def create(self, user_id, *, name, description, platform_key, board_key, password):
        """Register a device; only a salted hash of its MQTT password is kept."""
        password_hash = credentials.hash_password(password)
        for _ in range(5):  # a uid collision is ~1 in 62^12; retry rather than fail
            uid = credentials.new_device_uid(platform_key)
            try:
                async with self.db.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO devices (uid, user_id, name, description, platform_key, board_key,"
                        " mqtt_password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (uid, user_id, name, description, platform_key, board_key, password_hash, utc_now()),
                    )
            except sqlite3.IntegrityError:
                continue
            return await self.get(user_id, uid)
        raise RuntimeError("could not find a free device uid")

    async def list(self, user_id, filters=DeviceFilter(), *, sort="created_at", descending=False, limit=-1, offset=0):
        """(the devices of `user_id` that `filters` keeps, sorted by a key of SORTS, `limit` of them (-1: all)
        from `offset`; how many it keeps in all). Two indexed reads (migrations/006_device_list.sql)."""
        where, params = filters.where()
        direction = " DESC" if descending else ""
        order = f"{SORTS[sort]}{direction}, id{direction}" if SORTS[sort] else f"id{direction}"
        # One row more than the page: without it, the page holds the last match and no count is needed.
        rows = await self.db.fetch_all(
            f"SELECT {_SUMMARY_COLUMNS} FROM devices WHERE user_id = ?{where} ORDER BY {order} LIMIT ? OFFSET ?",
            (user_id, *params, limit + 1 if limit >= 0 else -1, offset),
        )
        page = rows if limit < 0 else rows[:limit]
        if len(page) < len(rows) or (offset and not rows):  # matches beyond this page, or before it
            total = (await self.db.fetch_one(f"SELECT count(*) FROM devices WHERE user_id = ?{where}",
                                             (user_id, *params)))[0]
        else:
            total = offset + len(rows)
        return [DeviceSummary(*row) for row in page], total

    async def get(self, user_id, uid):
        """The device with its current and target firmware. Raises NotFound, also for another user's uid."""
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM devices WHERE uid = ? AND user_id = ?", (uid, user_id)
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        device = _device_from_row(row)
        if device.current_firmware_id is None and device.target_firmware_id is None:
            return device
        return await self._with_firmwares(device)

    async def find(self, uid):
        """The device `uid` of whichever user (without its firmwares), or None: for flows that start from
        a device's own message rather than from its owner's request."""
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM devices WHERE uid = ?", (uid,))
        return None if row is None else _device_from_row(row)

    async def _with_firmwares(self, device):
        rows = await self.db.fetch_all(
            f"SELECT {FIRMWARE_COLUMNS} FROM firmwares WHERE id IN (?, ?)",
            (device.current_firmware_id, device.target_firmware_id),
        )
        by_id = {row["id"]: firmware_from_row(row, device) for row in rows}
        return replace(
            device,
            current_firmware=by_id.get(device.current_firmware_id),
            target_firmware=by_id.get(device.target_firmware_id),
        )

    async def update(self, user_id, uid, fields, *, meta=None, check_meta=None):
        """Change editable columns (name, description, enabled) and merge `meta` into the stored meta as a JSON
        merge patch (RFC 7396: a key set to null is removed, objects are merged key by key). Raises NotFound.

        `check_meta(merged meta)` runs inside the transaction: what it raises rolls the whole change back.
        Disabling also marks the device offline: the caller cuts its broker session.
        """
        if fields.get("enabled") is False:
            fields = {**fields, "is_online": False}
        if fields or meta:
            async with self.db.transaction() as tx:
                if fields:
                    assignments = ", ".join(f"{column} = ?" for column in fields)
                    cursor = await tx.execute(
                        f"UPDATE devices SET {assignments} WHERE uid = ? AND user_id = ?",
                        (*fields.values(), uid, user_id),
                    )
                    if cursor.rowcount == 0:
                        raise NotFound(NOT_FOUND)
                if meta:
                    rows = await tx.execute_fetchall(
                        "UPDATE devices SET meta = json_patch(meta, ?) WHERE uid = ? AND user_id = ? RETURNING meta",
                        (json.dumps(meta), uid, user_id),
                    )
                    if not rows:
                        raise NotFound(NOT_FOUND)
                    if check_meta is not None:
                        check_meta(_meta(rows[0][0]))
        return await self.get(user_id, uid)

    async def delete(self, user_id, uid):
        """Delete a device with its buttons, firmwares (and blobs no one else uses), commands, telemetry, tags and
        group memberships (the rest by the tables' cascades). Raises NotFound."""
        async with self.db.transaction() as tx:
            row = await (
                await tx.execute("SELECT id FROM devices WHERE uid = ? AND user_id = ?", (uid, user_id))
            ).fetchone()
            if row is None:
                raise NotFound(NOT_FOUND)
            md5s = [r["md5"] for r in await tx.execute_fetchall(
                "SELECT md5 FROM firmwares WHERE device_id = ?", (row["id"],)
            )]
            # Drop the assignments first: the device row points at firmwares the cascade deletes.
            await tx.execute(
                "UPDATE devices SET current_firmware_id = NULL, target_firmware_id = NULL WHERE id = ?", (row["id"],)
            )
            await tx.execute("DELETE FROM devices WHERE id = ?", (row["id"],))
            await remove_unreferenced_blobs(self.db, tx, self.blobs, md5s)

    # --- presence, from the MQTT bridge -------------------------------------------------

    async def apply_status(self, uid, report):
        """Apply a device's `status` message (validated by schemas.device_status). Returns True if known.

        `online: true` stamps first/last seen, network facts and the reported firmware
        (matched to an uploaded firmware of this device by md5); the rest of the report
        is merged into `meta`. `online: false` (the will) only clears the online flag.
        """
        async with self.db.transaction() as tx:
            if not report["online"]:
                cursor = await tx.execute("UPDATE devices SET is_online = 0 WHERE uid = ?", (uid,))
                return cursor.rowcount == 1
            now = utc_now()
            md5 = (report["meta"].get("fw") or {}).get("md5")
            cursor = await tx.execute(
                "UPDATE devices SET is_online = 1, first_seen_at = COALESCE(first_seen_at, ?), last_seen_at = ?,"
                " local_ip = COALESCE(?, local_ip), last_rssi = COALESCE(?, last_rssi),"
                " meta = json_patch(meta, ?),"
                " current_firmware_id = CASE WHEN ? IS NULL THEN current_firmware_id ELSE"
                "   (SELECT id FROM firmwares WHERE firmwares.device_id = devices.id AND firmwares.md5 = ?) END"
                " WHERE uid = ? AND enabled",
                (now, now, report["ip"], report["rssi"], json.dumps(report["meta"]), md5, md5, uid),
            )
            return cursor.rowcount == 1

    async def set_public_ip(self, uid, ip):
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE devices SET public_ip = ? WHERE uid = ?", (ip, uid))

    async def mark_all_offline(self):
        """Everyone is offline when the (embedded) broker has just started: in the presence history, for that
        reason (backend_restart), not a disconnect of theirs."""
        async with self.db.transaction() as tx:
            (last,) = await (await tx.execute("SELECT coalesce(max(id), 0) FROM presence_events")).fetchone()
            await tx.execute("UPDATE devices SET is_online = 0 WHERE is_online")
            await tx.execute("UPDATE presence_events SET reason = 'backend_restart' WHERE id > ?", (last,))

    async def password_hash(self, uid):
        """The stored MQTT password hash of an enabled device, or None."""
        row = await self.db.fetch_one("SELECT mqtt_password_hash FROM devices WHERE uid = ? AND enabled", (uid,))
        return row[0] if row else None
