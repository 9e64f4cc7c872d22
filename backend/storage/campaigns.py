"""OTA campaigns: one firmware, by md5, to many devices of a user, in waves (migrations/011_campaigns.sql).

A campaign is stored in one transaction with its devices and its waves. A device of its target that runs the md5
already is `up_to_date`, one without a firmware of that md5 uploaded `no_firmware`; the others are `pending`, in
waves of `wave_size` in the target's order. The flow (campaigns.py) then starts each wave, gives its devices
ordinary OTA jobs (`started`) or says why not (`settle`), and a device with a job follows its job's state by a
trigger. Counts per wave and state are kept by triggers too, so that reading them never counts the devices.

    campaign: running <-> paused; running / paused -> cancelled; running -> halted, completed
    device:   pending -> (waiting ->) sent ... updated / failed / rolled_back / expired (its job's states),
              or up_to_date, no_firmware, not_applicable; pending / waiting -> skipped when the campaign ends first
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from .bulk import target_devices
from .commands import new_command_id
from .database import utc_now
from .errors import NotFound
from .firmwares import MD5_NOT_FOUND
from .ota import FINAL_STATES as JOB_FINAL
from .ota import OPEN_STATES as JOB_OPEN

NOT_FOUND = "Campaign not found."
STATES = ("running", "paused", "halted", "cancelled", "completed")
ACTIVE = ("running", "paused")  # what the periodic step walks; the others are over
WAITING = ("pending", "waiting")  # devices without a job yet, that may get one
OUTCOMES = ("up_to_date", "no_firmware", "not_applicable", "skipped")  # final, without a job
DEVICE_STATES = (*WAITING, *JOB_OPEN, *JOB_FINAL, *OUTCOMES)
FAILURES = ("failed", "rolled_back", "expired")  # what counts towards halting
UNFINISHED = (*WAITING, *JOB_OPEN)  # a campaign whose devices are in none of these (and every wave started) is complete
UP_TO_DATE = "The device runs this firmware already."
NO_FIRMWARE = MD5_NOT_FOUND
# As set-target answers an md5 no firmware of the device has (404).
NONE_WITH_FIRMWARE = "No device of the target has a firmware with this md5: upload it to each device that is to get it."


def _in(states):
    """A SQL list of literals (the partial index and the IN terms stay plain)."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"


_UNFINISHED_SQL = _in(UNFINISHED)
_WAVE_OPEN_SQL = _in(("pending", *JOB_OPEN))  # a wave with none of these is final (waiting devices do not hold it)
_JOB_OPEN_SQL = _in(JOB_OPEN)
# Devices waiting in a campaign above which the step finds those back online from the owner's online devices: the
# waiting ones are then most of them, and 10,000 waiting took 5 ms a step to look at one by one.
_FEW_WAITING = 200
_COLUMNS = ("id, user_id, name, md5, target, wave_size, wave_percent, pause_seconds, max_failure_percent, state,"
            " reason, wave, wave_count, created_at, updated_at, ended_at")


def _members(index=None):
    """The select of Member rows, campaign_devices read through `index` (else its primary key): with the joins,
    SQLite's planner takes the primary key, and walks every device of the campaign for a wave's or a state's (5 ms
    over 10,000)."""
    hint = f" INDEXED BY {index}" if index else ""
    return ("SELECT position, uid, wave, job_id, m.state, coalesce(m.error, ota_jobs.error) FROM campaign_devices AS m"
            f"{hint} JOIN devices ON devices.id = m.device_id LEFT JOIN ota_jobs ON ota_jobs.id = m.job_id")


def now_ms():
    """The time of a wave's start or end as stored: ISO 8601 in UTC, to the millisecond (a pause is measured from
    it)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def seconds_since(stamp):
    """Seconds from `stamp` (as stored) to now."""
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


@dataclass(frozen=True)
class Campaign:
    id: str
    user_id: int
    name: str
    md5: str
    target: dict  # as a bulk job shows it: {type, tag | group | filter}
    wave_size: int
    wave_percent: int | None
    pause_seconds: int
    max_failure_percent: int
    state: str
    reason: str | None  # why it halted
    wave: int  # the wave started last, 0 before the first
    wave_count: int
    created_at: str
    updated_at: str
    ended_at: str | None
    counts: dict  # device state -> devices in it (those with none left out)

    @property
    def device_count(self):
        return sum(self.counts.values())

    @property
    def attempted(self):
        """Devices given an OTA job."""
        return sum(self.counts.get(state, 0) for state in (*JOB_OPEN, *JOB_FINAL))

    @property
    def failures(self):
        return sum(self.counts.get(state, 0) for state in FAILURES)


@dataclass(frozen=True)
class Wave:
    number: int
    size: int
    started_at: str | None
    final_at: str | None  # when every job of it was seen final
    counts: dict


@dataclass(frozen=True)
class Member:
    """A device of a campaign."""

    position: int
    uid: str
    wave: int  # 0: in no wave
    job_id: str | None
    state: str
    error: str | None  # its job's error, or why it has none


class CampaignStore:
    def __init__(self, db):
        self.db = db

    async def create(self, user_id, request, *, most, check_size, wave_size_of):
        """Store a campaign of `request` (schemas.new_campaign's fields, `filters` a DeviceFilter or None) with its
        devices and waves, in one transaction, `running`. Returns the Campaign.

        `check_size(how many devices the target selects, `most` + 1 at most)` and `wave_size_of(devices to update)`
        (→ the devices a wave) run inside it: what they raise stores nothing; so do UnknownDevices for uids that are
        no device of the user's, and NotFound when no device of the target has a firmware of the md5.
        """
        md5 = request["md5"]
        async with self.db.transaction() as tx:
            targets = await target_devices(tx, user_id, uids=request["uids"], filters=request["filters"], most=most)
            check_size(len(targets))
            rows = await tx.execute_fetchall(
                "SELECT devices.id, fw_md5 IS ?, EXISTS (SELECT 1 FROM firmwares WHERE firmwares.device_id ="
                " devices.id AND firmwares.md5 = ?) FROM devices WHERE id IN (SELECT value FROM json_each(?))",
                (md5, md5, json.dumps([target[1] for target in targets])))
            facts = {device_id: (bool(current), bool(has)) for device_id, current, has in rows}
            if not any(has for _, has in facts.values()):
                raise NotFound(NONE_WITH_FIRMWARE)
            to_update = sum(has and not current for current, has in facts.values())
            size = wave_size_of(to_update)
            campaign_id, members, ordinal = new_command_id(), [], 0
            for position, target in enumerate(targets):
                current, has = facts[target[1]]
                if current:
                    members.append((campaign_id, position, target[1], 0, "up_to_date", UP_TO_DATE))
                elif not has:
                    members.append((campaign_id, position, target[1], 0, "no_firmware", NO_FIRMWARE))
                else:
                    members.append((campaign_id, position, target[1], ordinal // size + 1, "pending", None))
                    ordinal += 1
            wave_count = -(-to_update // size)
            now = utc_now()
            await tx.execute(
                f"INSERT INTO campaigns ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, 0, ?, ?, ?,"
                " NULL)",
                (campaign_id, user_id, request["name"], md5, json.dumps(request["target"]), size,
                 request["wave_percent"], request["pause_seconds"], request["max_failure_percent"], wave_count, now,
                 now))
            await tx.executemany("INSERT INTO campaign_waves (campaign_id, number, size) VALUES (?, ?, ?)",
                                 [(campaign_id, n, min(size, to_update - (n - 1) * size))
                                  for n in range(1, wave_count + 1)])
            await tx.executemany("INSERT INTO campaign_devices (campaign_id, position, device_id, wave, state, error)"
                                 " VALUES (?, ?, ?, ?, ?, ?)", members)
        return await self._find(campaign_id)

    async def get(self, user_id, campaign_id):
        """The campaign with its counts. Raises NotFound, also for another user's."""
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ? AND user_id = ?",
                                      (campaign_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        return (await self._with_counts([row]))[0]

    async def _find(self, campaign_id):
        """The campaign `campaign_id` of whichever user, or None (deleted with its user)."""
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else (await self._with_counts([row]))[0]

    async def state_of(self, campaign_id):
        """The campaign's state now, or None (gone)."""
        row = await self.db.fetch_one("SELECT state FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else row[0]

    async def list(self, user_id, *, state=None, limit, offset):
        """(a page of the user's campaigns, of `state` only when given, newest first; how many there are)."""
        which, params = ("", ()) if state is None else (" AND state = ?", (state,))
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM campaigns WHERE user_id = ?{which} ORDER BY created_at DESC, rowid DESC"
            " LIMIT ? OFFSET ?", (user_id, *params, limit, offset))
        (total,) = await self.db.fetch_one(f"SELECT count(*) FROM campaigns WHERE user_id = ?{which}",
                                           (user_id, *params))
        return await self._with_counts(rows), total

    async def active(self):
        """Every campaign that is running or paused, of every user, oldest first (the periodic step's)."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM campaigns WHERE state IN {_in(ACTIVE)} ORDER BY created_at, rowid")
        return await self._with_counts(rows)

    async def _with_counts(self, rows):
        ids = [row["id"] for row in rows]
        counted = await self.db.fetch_all(
            "SELECT campaign_id, state, sum(devices) FROM campaign_counts WHERE campaign_id IN"
            " (SELECT value FROM json_each(?)) AND devices > 0 GROUP BY campaign_id, state", (json.dumps(ids),))
        counts = {campaign_id: {} for campaign_id in ids}
        for campaign_id, state, devices in counted:
            counts[campaign_id][state] = devices
        return [Campaign(**{**dict(zip(row.keys(), row)), "target": json.loads(row["target"]),
                            "counts": _in_order(counts[row["id"]])}) for row in rows]

    async def waves(self, campaign):
        """The campaign's waves, in order, each with its counts."""
        rows = await self.db.fetch_all(
            "SELECT number, size, started_at, final_at FROM campaign_waves WHERE campaign_id = ? ORDER BY number",
            (campaign.id,))
        counted = await self.db.fetch_all(
            "SELECT wave, state, devices FROM campaign_counts WHERE campaign_id = ? AND wave > 0 AND devices > 0",
            (campaign.id,))
        counts = {row[0]: {} for row in rows}
        for wave, state, devices in counted:
            counts.setdefault(wave, {})[state] = devices
        return [Wave(number, size, started, final, _in_order(counts[number])) for number, size, started, final in rows]

    async def devices(self, campaign, *, state=None, wave=None, limit, offset):
        """(a page of the campaign's devices, of `state` and `wave` only when given, in its order; how many of
        that kind there are)."""
        which, params = "", []
        for column, value in (("m.state", state), ("m.wave", wave)):
            if value is not None:
                which += f" AND {column} = ?"
                params.append(value)
        index = "campaign_devices_by_wave" if wave is not None else "campaign_devices_by_state" if state else None
        rows = await self.db.fetch_all(
            f"{_members(index)} WHERE campaign_id = ?{which} ORDER BY position LIMIT ? OFFSET ?",
            (campaign.id, *params, limit, offset))
        (total,) = await self.db.fetch_one(
            f"SELECT count(*) FROM campaign_devices AS m WHERE campaign_id = ?{which}", (campaign.id, *params))
        return [Member(*row) for row in rows], total

    async def due(self, campaign):
        """The devices to give their OTA now: those still pending in the wave started last (a step that stopped
        half-way through starting it, a restart), and those waiting (offline, disabled or busy at their wave) that
        are online, enabled and free of any OTA job now."""
        pending = await self.db.fetch_all(
            f"{_members('campaign_devices_by_wave')} WHERE campaign_id = ? AND m.state = 'pending' AND m.wave = ?",
            (campaign.id, campaign.wave))
        free = (f"devices.enabled AND NOT EXISTS (SELECT 1 FROM ota_jobs AS busy WHERE busy.device_id = devices.id"
                f" AND busy.state IN {_JOB_OPEN_SQL})")
        if campaign.counts.get("waiting", 0) <= _FEW_WAITING:
            back = await self.db.fetch_all(
                f"{_members('campaign_devices_by_state')} WHERE campaign_id = ? AND m.state = 'waiting'"
                f" AND devices.is_online AND {free}",
                (campaign.id,))
        else:  # many away: walk the owner's devices online instead (the status index), each probing its rows
            back = await self.db.fetch_all(
                "SELECT position, uid, m.wave, job_id, m.state, m.error FROM devices CROSS JOIN campaign_devices AS m"
                " ON m.device_id = devices.id AND m.campaign_id = ? AND m.state = 'waiting'"
                f" WHERE devices.user_id = ? AND devices.status = 'online' AND {free}", (campaign.id, campaign.user_id))
        return sorted((Member(*row) for row in (*pending, *back)), key=lambda member: member.position)

    async def park_offline(self, campaign, *, offline, disabled):
        """The devices still pending in the wave started last that are not online now wait, with why (`offline`,
        `disabled`): one statement for all of them, rather than a look at each (a wave of devices that are away)."""
        if not await self.db.fetch_one("SELECT 1 FROM campaign_devices WHERE campaign_id = ? AND wave = ?"
                                       " AND state = 'pending' LIMIT 1", (campaign.id, campaign.wave)):
            return
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE campaign_devices SET state = 'waiting', error = (SELECT CASE WHEN enabled THEN ? ELSE ? END"
                " FROM devices WHERE devices.id = device_id) WHERE campaign_id = ? AND wave = ? AND state = 'pending'"
                " AND device_id IN (SELECT id FROM devices WHERE NOT is_online)",
                (offline, disabled, campaign.id, campaign.wave))

    async def started(self, campaign_id, position, job_id):
        """The device at `position` got OTA job `job_id`: it follows the job's state from here on."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE campaign_devices SET job_id = ?, error = NULL,"
                " state = (SELECT state FROM ota_jobs WHERE id = ?) WHERE campaign_id = ? AND position = ?"
                " AND EXISTS (SELECT 1 FROM ota_jobs WHERE id = ?)",
                (job_id, job_id, campaign_id, position, job_id))

    async def settle(self, campaign_id, position, state, error):
        """The device at `position`, still pending or waiting, gets no job now: `state` (waiting, or an outcome),
        and why."""
        async with self.db.transaction() as tx:
            await tx.execute(
                f"UPDATE campaign_devices SET state = ?, error = ? WHERE campaign_id = ? AND position = ?"
                f" AND state IN {_in(WAITING)}", (state, error, campaign_id, position))

    async def close_wave(self, campaign):
        """When the wave started last was seen final (no device of it pending, no job of it open), noting it now
        if it just is; None while it is not (or before the first wave)."""
        open_ = (f"SELECT 1 FROM campaign_devices WHERE campaign_id = ? AND wave = ? AND state IN {_WAVE_OPEN_SQL}"
                 " LIMIT 1")
        row = await self.db.fetch_one("SELECT final_at FROM campaign_waves WHERE campaign_id = ? AND number = ?",
                                      (campaign.id, campaign.wave))
        # Read first, so that a step writes only when the wave has just become final.
        if row is None or row[0] is not None or await self.db.fetch_one(open_, (campaign.id, campaign.wave)):
            return row and row[0]
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE campaign_waves SET final_at = ? WHERE campaign_id = ? AND number = ? AND final_at IS NULL"
                f" AND started_at IS NOT NULL AND NOT EXISTS ({open_})",
                (now_ms(), campaign.id, campaign.wave, campaign.id, campaign.wave))
            row = await (await tx.execute("SELECT final_at FROM campaign_waves WHERE campaign_id = ? AND number = ?",
                                          (campaign.id, campaign.wave))).fetchone()
        return row[0]

    async def start_wave(self, campaign):
        """Start the wave after the one `campaign` started last, if it is still running and nothing started it
        meanwhile. Returns the campaign as it is then, or None."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE campaigns SET wave = wave + 1, updated_at = ? WHERE id = ? AND state = 'running' AND wave = ?"
                " AND wave < wave_count", (utc_now(), campaign.id, campaign.wave))
            if cursor.rowcount != 1:
                return None
            await tx.execute("UPDATE campaign_waves SET started_at = ? WHERE campaign_id = ? AND number = ?",
                             (now_ms(), campaign.id, campaign.wave + 1))
        return await self._find(campaign.id)

    async def complete(self, campaign):
        """Mark the running campaign completed once every wave started and no device is left pending, waiting or
        with an open job. Returns the campaign then, or None (not yet)."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE campaigns SET state = 'completed', updated_at = ?, ended_at = ? WHERE id = ?"
                " AND state = 'running' AND wave = wave_count AND NOT EXISTS (SELECT 1 FROM campaign_counts WHERE"
                f" campaign_id = ? AND state IN {_UNFINISHED_SQL} AND devices > 0)",
                (utc_now(), utc_now(), campaign.id, campaign.id))
            done = cursor.rowcount == 1
        return await self._find(campaign.id) if done else None

    async def change_state(self, campaign_id, state, *, allowed, reason=None):
        """Move the campaign to `state` if it is in one of `allowed` now; ending it (halted, cancelled) makes its
        devices that got no job `skipped`. Returns the campaign then, or None when its state was another."""
        now = utc_now()
        ends = state not in ACTIVE
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                f"UPDATE campaigns SET state = ?, reason = ?, updated_at = ?, ended_at = ? WHERE id = ?"
                f" AND state IN {_in(allowed)}", (state, reason, now, now if ends else None, campaign_id))
            if cursor.rowcount != 1:
                return None
            if ends:
                await tx.execute(
                    f"UPDATE campaign_devices SET state = 'skipped', error = ? WHERE campaign_id = ?"
                    f" AND state IN {_in(WAITING)}",
                    (f"The campaign was {state} before this device got its OTA.", campaign_id))
        return await self._find(campaign_id)


def _in_order(counts):
    """{state: devices} in the order of DEVICE_STATES."""
    return {state: counts[state] for state in DEVICE_STATES if state in counts}
