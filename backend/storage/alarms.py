"""Alarms and their timelines (migrations/010_alarms_notifications.sql): what the rules' evaluation observed,
turned into an alarm's changes in one transaction; the user's acknowledge and resolve; the alarm list.

An alarm is one rule's on one device. Its lifecycle (observe()):

- the condition starts to hold: a new alarm, `active` (triggered); or, when the rule's last alarm of that device was
  resolved at most cooldown_seconds ago, that one again (reopened); a condition that returns while its alarm is
  still open only says so (returned);
- the condition clears: an open alarm is `resolved` when the rule resolves on its own (auto_resolve), else it says
  so (cleared) and stays until the user resolves it;
- the user acknowledges (active -> acknowledged) or resolves (either -> resolved) it. Resolved by hand while its
  condition still holds, a rule opens no alarm until the condition has cleared and come back.

Each change is a timeline entry (at, event, the status after it, actor `rule` or `user`, reason, note).
"""

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import Conflict, NotFound

NOT_FOUND = "Alarm not found."
ALREADY_ACKNOWLEDGED = "The alarm is already acknowledged."
RESOLVED_NOT_ACKNOWLEDGED = "A resolved alarm cannot be acknowledged."
ALREADY_RESOLVED = "The alarm is already resolved."
ACTIVE, ACKNOWLEDGED, RESOLVED = "active", "acknowledged", "resolved"
OPEN = (ACTIVE, ACKNOWLEDGED)
TIMELINE_KEPT = 100  # entries of one alarm; older ones go
# Observations one transaction applies: a storm of them (a fleet that goes offline at once) must not hold the write
# lock, which the telemetry batches wait for, for long (measured: ~0.8 ms an observation).
OBSERVED_A_TRANSACTION = 100

_COLUMNS = ("a.id, a.user_id, a.rule_id, r.name, r.rule_type, r.actions, d.uid, a.status, a.severity, a.holding,"
            " a.message, a.opened_at, a.acknowledged_at, a.resolved_at, a.updated_at")
_SELECT = (f"SELECT {_COLUMNS} FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id"
           " JOIN devices d ON d.id = a.device_id")


def iso(at):
    """Unix seconds as the API shows a time (None stays None)."""
    return None if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Alarm:
    id: int
    user_id: int
    rule_id: int
    rule_name: str
    rule_type: str
    rule_actions: tuple  # the rule's
    device_uid: str
    status: str
    severity: str
    holding: bool
    message: str
    opened_at: float
    acknowledged_at: float | None
    resolved_at: float | None
    updated_at: float

    @property
    def sends_webhooks(self):
        return "send_webhook" in self.rule_actions


@dataclass(frozen=True)
class Entry:
    """One change of an alarm, on its timeline."""

    at: float
    event: str  # triggered, cleared, returned, acknowledged, resolved, reopened
    status: str  # the alarm's after it
    actor: str  # rule, user
    reason: str
    note: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the evaluation saw of one rule (storage.alarm_rules.Rule) on one device: whether its condition holds,
    and in words what holds or what cleared."""

    rule: object
    device_id: int
    holds: bool
    reason: str


@dataclass(frozen=True)
class Change:
    alarm_id: int
    entry: Entry


class AlarmStore:
    def __init__(self, db):
        self.db = db

    async def observe(self, observations, now):
        """Apply what the evaluation saw (a list), in order, OBSERVED_A_TRANSACTION to a transaction. Returns the
        Changes it made (an observation that changes nothing, or of a rule or device deleted meanwhile, makes
        none)."""
        changes = []
        for start in range(0, len(observations), OBSERVED_A_TRANSACTION):
            async with self.db.transaction() as tx:
                for seen in observations[start:start + OBSERVED_A_TRANSACTION]:
                    change = await _observe(tx, seen, now)
                    if change is not None:
                        changes.append(change)
        return changes

    async def prune(self, older_than_days, now=None):
        """Delete the alarms resolved more than `older_than_days` ago, with their timelines. Returns how many."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM alarms WHERE status = 'resolved' AND resolved_at < ?", (cutoff,))
        return cursor.rowcount

    async def holding(self, rule_id):
        """The ids of the devices whose alarm of the rule last saw its condition hold."""
        rows = await self.db.fetch_all("SELECT device_id FROM alarms WHERE rule_id = ? AND holding", (rule_id,))
        return {row[0] for row in rows}

    async def acknowledge(self, user_id, alarm_id, note, now):
        """active -> acknowledged, by the user. Returns the Change. Raises NotFound (another user's alarm too), or
        Conflict when it is acknowledged or resolved already."""
        async with self.db.transaction() as tx:
            status = await _status_of(tx, user_id, alarm_id)
            if status != ACTIVE:
                raise Conflict(ALREADY_ACKNOWLEDGED if status == ACKNOWLEDGED else RESOLVED_NOT_ACKNOWLEDGED)
            entry = Entry(now, "acknowledged", ACKNOWLEDGED, "user", "acknowledged by the user", note)
            await tx.execute("UPDATE alarms SET status = ?, acknowledged_at = ?, updated_at = ? WHERE id = ?",
                             (ACKNOWLEDGED, now, now, alarm_id))
            await _log(tx, alarm_id, entry)
        return Change(alarm_id, entry)

    async def resolve(self, user_id, alarm_id, note, now):
        """active or acknowledged -> resolved, by the user. Returns the Change. Raises NotFound, or Conflict when it
        is resolved already."""
        async with self.db.transaction() as tx:
            if await _status_of(tx, user_id, alarm_id) == RESOLVED:
                raise Conflict(ALREADY_RESOLVED)
            entry = Entry(now, "resolved", RESOLVED, "user", "resolved by the user", note)
            await tx.execute("UPDATE alarms SET status = ?, resolved_at = ?, updated_at = ? WHERE id = ?",
                             (RESOLVED, now, now, alarm_id))
            await _log(tx, alarm_id, entry)
        return Change(alarm_id, entry)

    async def get(self, user_id, alarm_id):
        """The user's alarm. Raises NotFound, also for another user's."""
        row = await self.db.fetch_one(_SELECT + " WHERE a.id = ? AND a.user_id = ?", (alarm_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        return _alarm(row)

    async def find(self, alarm_id):
        """The alarm of any user, or None (gone)."""
        row = await self.db.fetch_one(_SELECT + " WHERE a.id = ?", (alarm_id,))
        return None if row is None else _alarm(row)

    async def timeline(self, alarm):
        """The alarm's Entries, oldest first (at most TIMELINE_KEPT)."""
        rows = await self.db.fetch_all(
            "SELECT at, event, status, actor, reason, note FROM alarm_events WHERE alarm_id = ? ORDER BY id",
            (alarm.id,))
        return [Entry(*row) for row in rows]

    async def open_by_severity(self, device_id):
        """{severity: how many} of the device's open alarms (active or acknowledged): the health score's part."""
        rows = await self.db.fetch_all(
            "SELECT severity, count(*) FROM alarms WHERE device_id = ? AND status IN (?, ?) GROUP BY severity",
            (device_id, *OPEN))
        return dict(rows)

    async def list(self, user_id, *, status=None, severity=None, device=None, rule=None, limit, offset):
        """One page of the user's alarms, newest first, and how many match: `status` one of the statuses or `open`
        (active or acknowledged), `severity`, `device` a uid (another user's: none), `rule` an id."""
        where, params = " WHERE a.user_id = ?", [user_id]
        if status == "open":
            where += " AND a.status IN (?, ?)"
            params += OPEN
        elif status is not None:
            where += " AND a.status = ?"
            params.append(status)
        for condition, value in ((" AND a.severity = ?", severity), (" AND a.rule_id = ?", rule),
                                 (" AND a.device_id = (SELECT id FROM devices WHERE uid = ? AND user_id = a.user_id)",
                                  device)):
            if value is not None:
                where += condition
                params.append(value)
        rows = await self.db.fetch_all(_SELECT + where + " ORDER BY a.id DESC LIMIT ? OFFSET ?",
                                       (*params, limit, offset))
        (total,) = await self.db.fetch_one("SELECT count(*) FROM alarms a" + where, params)
        return [_alarm(row) for row in rows], total


def _alarm(row):
    fields = list(row)
    fields[5], fields[9] = tuple(json.loads(fields[5])), bool(fields[9])
    return Alarm(*fields)


async def _status_of(tx, user_id, alarm_id):
    row = await (await tx.execute("SELECT status FROM alarms WHERE id = ? AND user_id = ?",
                                  (alarm_id, user_id))).fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return row[0]


async def _observe(tx, seen, now):
    """One Observation's change (a Change, or None for none): the lifecycle of the module's docstring, from the
    rule's latest alarm of the device."""
    latest = await (await tx.execute(
        "SELECT id, status, holding, resolved_at FROM alarms WHERE rule_id = ? AND device_id = ?"
        " ORDER BY id DESC LIMIT 1", (seen.rule.id, seen.device_id))).fetchone()
    alarm_id, status, holding, resolved_at = latest if latest else (None, None, False, None)
    if holding == seen.holds:
        return None  # nothing new: it holds, and its alarm knows (open, or resolved by hand while it held); or not
    if seen.holds:
        if status in OPEN:
            entry = Entry(now, "returned", status, "rule", seen.reason)
            await tx.execute("UPDATE alarms SET holding = 1, message = ?, updated_at = ? WHERE id = ?",
                             (seen.reason, now, alarm_id))
        elif status == RESOLVED and now - resolved_at <= seen.rule.cooldown_seconds:
            entry = Entry(now, "reopened", ACTIVE, "rule", seen.reason)
            await tx.execute(
                "UPDATE alarms SET status = ?, holding = 1, message = ?, acknowledged_at = NULL, resolved_at = NULL,"
                " updated_at = ? WHERE id = ?", (ACTIVE, seen.reason, now, alarm_id))
        else:
            return await _trigger(tx, seen, now)
    elif status == RESOLVED:  # resolved by hand while it held: now it may open one again, nothing to tell
        await tx.execute("UPDATE alarms SET holding = 0 WHERE id = ?", (alarm_id,))
        return None
    elif seen.rule.auto_resolve:
        entry = Entry(now, "resolved", RESOLVED, "rule", seen.reason)
        await tx.execute("UPDATE alarms SET status = ?, holding = 0, resolved_at = ?, updated_at = ? WHERE id = ?",
                         (RESOLVED, now, now, alarm_id))
    else:
        entry = Entry(now, "cleared", status, "rule", seen.reason)
        await tx.execute("UPDATE alarms SET holding = 0, updated_at = ? WHERE id = ?", (now, alarm_id))
    await _log(tx, alarm_id, entry)
    return Change(alarm_id, entry)


async def _trigger(tx, seen, now):
    """A new alarm, of a rule and a device that are still there (either may have been deleted since the evaluation
    read them). Returns its Change, or None."""
    entry = Entry(now, "triggered", ACTIVE, "rule", seen.reason)
    cursor = await tx.execute(
        "INSERT INTO alarms (user_id, rule_id, device_id, status, severity, holding, message, opened_at, updated_at)"
        " SELECT r.user_id, r.id, d.id, ?, r.severity, 1, ?, ?, ? FROM alarm_rules r JOIN devices d ON d.id = ?"
        " WHERE r.id = ?", (ACTIVE, seen.reason, now, now, seen.device_id, seen.rule.id))
    if cursor.rowcount == 0:
        return None
    await _log(tx, cursor.lastrowid, entry, trim=False)  # its first entry
    return Change(cursor.lastrowid, entry)


async def _log(tx, alarm_id, entry, *, trim=True):
    """Add `entry` to the alarm's timeline, keeping its newest TIMELINE_KEPT (`trim` false: it has fewer)."""
    await tx.execute("INSERT INTO alarm_events (alarm_id, at, event, status, actor, reason, note)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (alarm_id, entry.at, entry.event, entry.status, entry.actor, entry.reason, entry.note))
    if trim:
        await tx.execute("DELETE FROM alarm_events WHERE alarm_id = ?1 AND id <= (SELECT id FROM alarm_events"
                         " WHERE alarm_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)", (alarm_id, TIMELINE_KEPT))
