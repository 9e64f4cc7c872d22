"""Alarm rules (migrations/010_alarms_notifications.sql): a user's, made, listed, changed, deleted; and what the
evaluation reads of them: the enabled rules of a type, and the devices of a rule's scope whose condition holds.

A rule watches the devices of its scope: `fleet` every device of its user, `device` one, `group` a group's, `tag` the
devices with a tag. The queries of the conditions read the device list's indexes (status, the tag's and the
membership's probes of storage/devices.py:DeviceFilter) and one index probe a device of the presence history or
the latest telemetry, so that maintenance's round stays a few index reads a rule. They walk a rule's scope, though:
over a fleet of 10,000 devices one takes 10-25 ms, too long for the event loop, where database.py's reader runs. So
they, and the devices of a telemetry batch, are read on a connection of their own in its own thread
(database.FleetReader; in WAL mode it never waits for a writer), opened at the first and closed by Storage.close().
"""

import json
import sqlite3
import time
from dataclasses import dataclass

from .database import FleetReader
from .devices import NOT_FOUND as DEVICE_NOT_FOUND
from .devices import DeviceFilter
from .errors import Conflict, NotFound
from .groups import NOT_FOUND as GROUP_NOT_FOUND

NOT_FOUND = "Alarm rule not found."
TOO_MANY = "A user can have at most {} alarm rules."

_COLUMNS = ("r.id, r.user_id, r.name, r.description, r.rule_type, r.config, r.scope_type, r.scope_device_id,"
            " (SELECT uid FROM devices WHERE id = r.scope_device_id), r.scope_group_id, r.scope_tag, r.severity,"
            " r.actions, r.cooldown_seconds, r.is_enabled, r.auto_resolve, r.created_at, r.updated_at")
_SELECT = f"SELECT {_COLUMNS} FROM alarm_rules r"


@dataclass(frozen=True)
class Rule:
    id: int
    user_id: int
    name: str
    description: str | None
    rule_type: str
    config: dict
    scope_type: str
    scope_device_id: int | None  # the device's row id (the API names it by uid: scope_device_uid)
    scope_device_uid: str | None
    scope_group_id: int | None
    scope_tag: str | None
    severity: str
    actions: tuple
    cooldown_seconds: int
    is_enabled: bool
    auto_resolve: bool
    created_at: float
    updated_at: float

    @property
    def sends_webhooks(self):
        return "send_webhook" in self.actions

    def in_scope(self, device_id, groups, tags):
        """Whether the device (its row id, the ids of its groups, its tags) is one the rule watches."""
        if self.scope_type == "device":
            return device_id == self.scope_device_id
        if self.scope_type == "group":
            return self.scope_group_id in groups
        if self.scope_type == "tag":
            return self.scope_tag in tags
        return True

    def scope_where(self):
        """(SQL conditions on `devices`, their parameters) that keep the devices the rule watches."""
        where, params = " devices.user_id = ?", [self.user_id]
        if self.scope_type == "device":
            return where + " AND devices.id = ?", [*params, self.scope_device_id]
        conditions, more = DeviceFilter(group=self.scope_group_id, tag=self.scope_tag).where()
        return where + conditions, params + more


def _rule(row):
    fields = list(row)
    fields[5] = json.loads(fields[5])
    fields[12] = tuple(json.loads(fields[12]))
    fields[14], fields[15] = bool(fields[14]), bool(fields[15])
    return Rule(*fields)


class RuleStore:
    def __init__(self, db):
        self.db = db
        self._reader = FleetReader(db.path)  # the reads that walk a rule's scope or a batch's devices

    async def close(self):
        await self._reader.close()

    async def list(self, user_id):
        rows = await self.db.fetch_all(_SELECT + " WHERE r.user_id = ? ORDER BY r.id", (user_id,))
        return [_rule(row) for row in rows]

    async def get(self, user_id, rule_id):
        """The user's rule. Raises NotFound, also for another user's."""
        row = await self.db.fetch_one(_SELECT + " WHERE r.id = ? AND r.user_id = ?", (rule_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        return _rule(row)

    async def enabled(self, rule_type):
        """Every enabled rule of `rule_type`, of every user."""
        rows = await self.db.fetch_all(_SELECT + " WHERE r.rule_type = ? AND r.is_enabled ORDER BY r.id",
                                       (rule_type,))
        return [_rule(row) for row in rows]

    async def create(self, user_id, rule, *, most):
        """A new rule of validated `rule` (alarm_schemas.new_rule: its device named by uid). Returns it. Raises
        NotFound for a scope's device or group that is not the user's, Conflict past `most` rules."""
        now = time.time()
        try:
            async with self.db.transaction() as tx:
                (count,), = await tx.execute_fetchall("SELECT count(*) FROM alarm_rules WHERE user_id = ?", (user_id,))
                if count >= most:
                    raise Conflict(TOO_MANY.format(most))
                device_id = await _scope_device(tx, user_id, rule["scope_device_id"])
                await _check_group(tx, user_id, rule["scope_group_id"])
                cursor = await tx.execute(
                    "INSERT INTO alarm_rules (user_id, name, description, rule_type, config, scope_type,"
                    " scope_device_id, scope_group_id, scope_tag, severity, actions, cooldown_seconds, is_enabled,"
                    " auto_resolve, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, rule["name"], rule["description"], rule["rule_type"], json.dumps(rule["config"]),
                     rule["scope_type"], device_id, rule["scope_group_id"], rule["scope_tag"], rule["severity"],
                     json.dumps(rule["actions"]), rule["cooldown_seconds"], rule["is_enabled"], rule["auto_resolve"],
                     now, now))
        except sqlite3.IntegrityError:  # the device or the group went meanwhile
            raise NotFound(DEVICE_NOT_FOUND if rule["scope_device_id"] else GROUP_NOT_FOUND) from None
        return await self.get(user_id, cursor.lastrowid)

    async def update(self, user_id, rule_id, changes):
        """Change the rule's fields in `changes` (alarm_schemas.rule_update). Returns the rule. Raises NotFound."""
        values = {**changes, "updated_at": time.time()}
        for name in ("config", "actions"):
            if name in values:
                values[name] = json.dumps(values[name])
        assignments = ", ".join(f"{column} = ?" for column in values)
        async with self.db.transaction() as tx:
            cursor = await tx.execute(f"UPDATE alarm_rules SET {assignments} WHERE id = ? AND user_id = ?",
                                      (*values.values(), rule_id, user_id))
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)
        return await self.get(user_id, rule_id)

    async def delete(self, user_id, rule_id):
        """Delete the rule and its alarms. Raises NotFound."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM alarm_rules WHERE id = ? AND user_id = ?", (rule_id, user_id))
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)

    # --- the conditions: {device id: what holds} of the devices of a rule's scope --------------------------

    async def offline_since(self, rule, now):
        """{device id: since when it is offline (unix seconds, None: no history)} of the rule's devices offline for
        more than config.seconds."""
        where, params = rule.scope_where()
        rows = await self._reader.fetch_all(
            "SELECT id, since FROM (SELECT devices.id,"
            " (SELECT max(at) FROM presence_events WHERE device_id = devices.id) AS since"
            f" FROM devices WHERE {where} AND devices.status = 'offline') WHERE coalesce(since, 0) <= ?",
            (*params, now - rule.config["seconds"]))
        return dict(rows)

    async def data_missing_since(self, rule, now):
        """{device id: its last sample's time (of config.key; unix seconds, None: never)} of the rule's devices, seen
        and enabled (online or offline), without telemetry for more than config.seconds (counted from when they were
        first seen when they never sent any)."""
        where, params = rule.scope_where()
        key = rule.config.get("key")
        latest = "SELECT max(ts) FROM telemetry_latest WHERE device_id = devices.id" + (" AND key = ?" if key else "")
        rows = await self._reader.fetch_all(
            f"SELECT id, last FROM (SELECT devices.id, ({latest}) AS last, devices.first_seen_at FROM devices"
            f" WHERE {where} AND devices.status IN ('online', 'offline'))"
            " WHERE coalesce(last, (julianday(first_seen_at) - 2440587.5) * 86400.0) <= ?",
            (*([key] if key else []), *params, now - rule.config["seconds"]))
        return dict(rows)

    async def disconnects(self, rule, now):
        """{device id: its disconnects in the last config.seconds} of the rule's devices with more than
        config.disconnects of them (the presence history's `disconnected`, read by its time index)."""
        where, params = rule.scope_where()
        rows = await self._reader.fetch_all(
            "SELECT devices.id, count(*) FROM presence_events JOIN devices ON devices.id = presence_events.device_id"
            f" WHERE presence_events.at >= ? AND presence_events.reason = 'disconnected' AND {where}"
            " GROUP BY devices.id HAVING count(*) > ?",
            (now - rule.config["seconds"], *params, rule.config["disconnects"]))
        return dict(rows)

    async def devices_of(self, uids):
        """{uid: (device id, user id, {group ids}, {tags})} of the devices among `uids` (a telemetry batch's)."""
        found = await self._reader.fetch_all(
            "SELECT devices.uid, devices.id, devices.user_id FROM json_each(?) JOIN devices"
            " ON devices.uid = json_each.value", (json.dumps(list(uids)),))
        if not found:
            return {}
        ids = json.dumps([row[1] for row in found])
        groups, tags = {}, {}
        for device_id, group_id in await self._reader.fetch_all(
                "SELECT device_id, group_id FROM group_members WHERE device_id IN (SELECT value FROM json_each(?))",
                (ids,)):
            groups.setdefault(device_id, set()).add(group_id)
        for device_id, tag in await self._reader.fetch_all(
                "SELECT device_id, tag FROM device_tags WHERE device_id IN (SELECT value FROM json_each(?))", (ids,)):
            tags.setdefault(device_id, set()).add(tag)
        return {uid: (device_id, user_id, groups.get(device_id, set()), tags.get(device_id, set()))
                for uid, device_id, user_id in found}


async def _scope_device(tx, user_id, uid):
    """The row id of the user's device `uid` (None for None). Raises NotFound."""
    if uid is None:
        return None
    row = await (await tx.execute("SELECT id FROM devices WHERE uid = ? AND user_id = ?", (uid, user_id))).fetchone()
    if row is None:
        raise NotFound(DEVICE_NOT_FOUND)
    return row[0]


async def _check_group(tx, user_id, group_id):
    if group_id is not None and await (await tx.execute(
            "SELECT 1 FROM device_groups WHERE id = ? AND user_id = ?", (group_id, user_id))).fetchone() is None:
        raise NotFound(GROUP_NOT_FOUND)
