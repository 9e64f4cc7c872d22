"""Desired configuration (migrations/012_configuration.sql): a device's own settings and its groups', the effective
settings its board gets with their version, and the board's last report.

The effective settings are computed whenever what they come from changes, inside that change's transaction
(recompute(): a device's or a group's settings, a group's members, a group deleted), so that they and their
version never disagree with their sources; the version is raised only when they really change (their canonical
JSON differs), so a board is sent nothing new for a change that changes nothing for it.
"""

from dataclasses import dataclass

import orjson

from .database import utc_now
from .devices import NOT_FOUND as DEVICE_NOT_FOUND
from .errors import NotFound
from .groups import NOT_FOUND as GROUP_NOT_FOUND

_REPORT_COLUMNS = "reported_v, reported_applied, reported_errors, reported_at"
_COLUMNS = f"settings, effective, version, {_REPORT_COLUMNS}"


@dataclass(frozen=True)
class Report:
    """A board's `config_report`: the version it got, what it applied, why it could not apply the rest."""

    version: int
    applied: dict
    errors: dict
    reported_at: str


@dataclass(frozen=True)
class DeviceConfig:
    own: dict  # the device's own settings (its PUT)
    effective: dict  # what its board gets: its groups' settings merged, then its own
    version: int  # 0 until it first had settings
    reported: Report | None

    @property
    def in_sync(self):
        """Whether the board runs the current version without an error (a device never given settings and without
        a report is)."""
        if self.reported is None:
            return self.version == 0
        return self.reported.version == self.version and not self.reported.errors


@dataclass(frozen=True)
class Published:
    """What a device's retained `config` message holds."""

    uid: str
    version: int
    settings: dict


_NONE = DeviceConfig({}, {}, 0, None)


def _canonical(settings):
    """The stored form: compact JSON with sorted keys, so that equal settings are equal text (1, 1.0 and true
    are not)."""
    return orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()


class ConfigurationStore:
    def __init__(self, db):
        self.db = db

    async def of_device(self, device):
        """The device's DeviceConfig (empty, version 0, when it has none)."""
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM device_config WHERE device_id = ?", (device.id,))
        return _NONE if row is None else _config_from_row(row)

    async def set_device(self, device, settings, *, merge, check):
        """Replace the device's own settings whole. Returns the uids whose effective settings changed ([] or its
        own). `merge` and `check` as recompute(); what `check` raises rolls the change back. Raises NotFound for
        a device deleted meanwhile."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO device_config (device_id, settings) SELECT id, ? FROM devices WHERE id = ?"
                " ON CONFLICT (device_id) DO UPDATE SET settings = excluded.settings",
                (_canonical(settings), device.id))
            if cursor.rowcount == 0:
                raise NotFound(DEVICE_NOT_FOUND)
            return await self.recompute(tx, [device.id], merge=merge, check=check)

    async def of_group(self, user_id, group_id):
        """The group's settings ({} when it has none). Raises NotFound, also for another user's group."""
        row = await self.db.fetch_one(
            "SELECT group_config.settings, device_groups.id FROM device_groups"
            " LEFT JOIN group_config ON group_config.group_id = device_groups.id"
            " WHERE device_groups.id = ? AND device_groups.user_id = ?", (group_id, user_id))
        if row is None:
            raise NotFound(GROUP_NOT_FOUND)
        return orjson.loads(row[0]) if row[0] else {}

    async def set_group(self, user_id, group_id, settings, *, merge, check):
        """Replace the group's settings whole ({} removes them). Returns the uids of its members whose effective
        settings changed. Raises NotFound, and what `check` raises (nothing is changed then)."""
        async with self.db.transaction() as tx:
            owned = await tx.execute_fetchall("SELECT 1 FROM device_groups WHERE id = ? AND user_id = ?",
                                              (group_id, user_id))
            if not owned:
                raise NotFound(GROUP_NOT_FOUND)
            if settings:
                await tx.execute("INSERT INTO group_config (group_id, settings) VALUES (?, ?)"
                                 " ON CONFLICT (group_id) DO UPDATE SET settings = excluded.settings",
                                 (group_id, _canonical(settings)))
            else:
                await tx.execute("DELETE FROM group_config WHERE group_id = ?", (group_id,))
            members = await tx.execute_fetchall("SELECT device_id FROM group_members WHERE group_id = ?",
                                                (group_id,))
            return await self.recompute(tx, [row[0] for row in members], merge=merge, check=check)

    async def recompute(self, tx, device_ids, *, merge, check):
        """Inside the transaction `tx`: the effective settings of `device_ids` again, from their groups' (ascending
        group id) and their own, by `merge(groups' settings in order, own)`; `check(uid, effective)` may raise to
        refuse the change (it rolls the transaction back). Each device whose effective settings changed gets them
        with its version one higher; returns their uids."""
        if not device_ids:
            return []
        ids = orjson.dumps(list(device_ids)).decode()
        devices = await tx.execute_fetchall(
            "SELECT devices.id, devices.uid, device_config.settings, device_config.effective FROM json_each(?)"
            " JOIN devices ON devices.id = json_each.value"
            " LEFT JOIN device_config ON device_config.device_id = devices.id", (ids,))
        of_groups = {}
        for device_id, settings in await tx.execute_fetchall(
                "SELECT group_members.device_id, group_config.settings FROM json_each(?)"
                " JOIN group_members ON group_members.device_id = json_each.value"
                " JOIN group_config ON group_config.group_id = group_members.group_id"
                " ORDER BY group_members.device_id, group_members.group_id", (ids,)):
            of_groups.setdefault(device_id, []).append(orjson.loads(settings))
        changed, rows = [], []
        for device_id, uid, own, before in devices:
            effective = merge(of_groups.get(device_id, []), orjson.loads(own) if own else {})
            text = _canonical(effective)
            if text != (before or "{}"):
                check(uid, effective)
                changed.append(uid)
                rows.append((device_id, text))
        await tx.executemany(
            "INSERT INTO device_config (device_id, effective, version) VALUES (?, ?, 1)"
            " ON CONFLICT (device_id) DO UPDATE SET effective = excluded.effective, version = version + 1", rows)
        return changed

    async def report(self, uid, version, applied, errors):
        """Keep the board's report (a repeat replaces it with the same). Returns (the device's user id, its
        DeviceConfig), or None for a uid that is no device."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                f"INSERT INTO device_config (device_id, {_REPORT_COLUMNS}) SELECT id, ?, ?, ?, ? FROM devices"
                " WHERE uid = ? ON CONFLICT (device_id) DO UPDATE SET reported_v = excluded.reported_v,"
                " reported_applied = excluded.reported_applied, reported_errors = excluded.reported_errors,"
                " reported_at = excluded.reported_at",
                (version, _canonical(applied), _canonical(errors), utc_now(), uid))
            if cursor.rowcount == 0:
                return None
        row = await self.db.fetch_one(
            f"SELECT devices.user_id, {_COLUMNS} FROM devices JOIN device_config ON device_config.device_id ="
            " devices.id WHERE devices.uid = ?", (uid,))
        return None if row is None else (row[0], _config_from_row(row[1:]))

    async def published(self, uids):
        """What the `config` message of each of `uids` holds now: [Published], for those with settings at some
        time (version 1 or more) that are devices still."""
        rows = await self.db.fetch_all(
            "SELECT devices.uid, device_config.version, device_config.effective FROM json_each(?)"
            " JOIN devices ON devices.uid = json_each.value"
            " JOIN device_config ON device_config.device_id = devices.id WHERE device_config.version > 0",
            (orjson.dumps(list(uids)).decode(),))
        return [Published(uid, version, orjson.loads(effective)) for uid, version, effective in rows]

    async def published_page(self, after, limit):
        """Every device's Published (as published()), a page at a time in device order: (the page, the `after` of
        the next page or None at the end)."""
        rows = await self.db.fetch_all(
            "SELECT device_config.device_id, devices.uid, device_config.version, device_config.effective"
            " FROM device_config JOIN devices ON devices.id = device_config.device_id"
            " WHERE device_config.device_id > ? AND device_config.version > 0 ORDER BY device_config.device_id"
            " LIMIT ?", (after, limit))
        page = [Published(uid, version, orjson.loads(effective)) for _, uid, version, effective in rows]
        return page, rows[-1][0] if len(rows) == limit else None


def _config_from_row(row):
    own, effective, version, reported_v, applied, errors, reported_at = row
    reported = None
    if reported_v is not None:
        reported = Report(reported_v, orjson.loads(applied), orjson.loads(errors), reported_at)
    return DeviceConfig(orjson.loads(own), orjson.loads(effective), version, reported)
