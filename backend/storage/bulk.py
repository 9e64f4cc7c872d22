"""Bulk jobs: one command to many devices of a user (migrations/009_bulk_commands.sql).

A job is stored in one transaction with a `queued` command for each device that can take one, which the
service layer's pacing then publishes; a device that cannot gets an outcome in place of a command (OUTCOMES).
Each device of the job shows its command's state, kept by a trigger, so that the counts and a page of one state
are index reads however many devices the job has.
"""

import json
from dataclasses import dataclass

from .. import jsonvalues
from .buttons import NOT_FOUND as NO_BUTTON
from .commands import AT_DEVICE, DEVICE_DISABLED, DEVICE_OFFLINE, FINAL_STATES, QUEUED, insert_commands, new_command_id
from .devices import DeviceFilter
from .errors import NotFound
from .groups import UnknownDevices

NOT_FOUND = "Bulk command not found."
# The outcomes of a device that got no command, and why (what the device's own endpoint would have answered).
OUTCOMES = {"disabled": DEVICE_DISABLED, "no_button": NO_BUTTON, "offline": DEVICE_OFFLINE}
OPEN_STATES = (QUEUED, *AT_DEVICE)  # a job is finished when none of its devices is in one of these
STATES = (*OPEN_STATES, *FINAL_STATES, *OUTCOMES)  # a device's in a job: its command's, or its outcome


@dataclass(frozen=True)
class BulkRequest:
    """What a job sends, to what (schemas.bulk_command): `type` reboot / wifi_reset / custom / button, `payload`
    (custom) or `button` (a button id each device may have saved); `target` {type, ...} as it is shown, and what it
    selects: `uids` (in order), else `filters` (DeviceFilter). `ttl`: seconds a command may wait for its device."""

    type: str
    payload: dict | None
    button: str | None
    target: dict
    uids: list | None
    filters: DeviceFilter | None
    ttl: int | None

    @property
    def command_type(self):
        """The type of the commands stored: a button sends its payload as a custom command does."""
        return "custom" if self.type == "button" else self.type


@dataclass(frozen=True)
class BulkJob:
    id: str
    command: dict  # {type, payload, button}
    target: dict
    ttl: int | None
    created_at: str
    counts: dict  # state -> devices in it

    @property
    def device_count(self):
        return sum(self.counts.values())

    @property
    def finished(self):
        return not any(state in self.counts for state in OPEN_STATES)


@dataclass(frozen=True)
class BulkDevice:
    uid: str
    state: str
    command_id: str | None
    result: object
    error: str | None


class BulkStore:
    def __init__(self, db):
        self.db = db

    async def create(self, user_id, request, *, hold, most, check_size):
        """Store a job of `request` (BulkRequest) with a `queued` command for each targeted device that can take
        one (enabled; with the button, for a button; online, unless the request has a ttl), expiring after `hold`
        seconds (its ttl instead). Returns (the job, the uids of the devices given a command, in its order).

        One transaction. `check_size(how many devices the target selects)` runs inside it, counting at most
        `most` + 1 of them: what it raises stores nothing; so does UnknownDevices (a NotFound naming the uids of
        `request.uids` that are no device of the user's).
        """
        command = {"type": request.type, "payload": request.payload, "button": request.button}
        payload = json.dumps(request.payload)
        async with self.db.transaction() as tx:
            devices = await target_devices(tx, user_id, uids=request.uids, filters=request.filters,
                                           button=request.button, most=most)
            check_size(len(devices))
            job_id, commands, members, uids = new_command_id(), [], [], []
            for position, (uid, device_id, enabled, online, button_payload) in enumerate(devices):
                outcome = _outcome(request, enabled, online, button_payload)
                command_id = None if outcome else new_command_id()
                if command_id:
                    sent = button_payload if request.button is not None else payload
                    commands.append((command_id, device_id, request.command_type, sent))
                    uids.append(uid)
                members.append((job_id, position, device_id, command_id, outcome or "queued"))
            created_at = await insert_commands(tx, commands, hold=hold, ttl=request.ttl)
            await tx.execute(
                "INSERT INTO bulk_jobs (id, user_id, command, target, ttl, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, user_id, json.dumps(command), json.dumps(request.target), request.ttl, created_at))
            await tx.executemany("INSERT INTO bulk_job_devices (job_id, position, device_id, command_id, state)"
                                 " VALUES (?, ?, ?, ?, ?)", members)
        counts = {}
        for member in members:
            counts[member[4]] = counts.get(member[4], 0) + 1
        return BulkJob(job_id, command, request.target, request.ttl, created_at, _in_order(counts)), uids

    async def get(self, user_id, job_id):
        """The job with its counts. Raises NotFound, also for another user's job."""
        row = await self.db.fetch_one(
            "SELECT id, command, target, ttl, created_at FROM bulk_jobs WHERE id = ? AND user_id = ?",
            (job_id, user_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        counts = await self.db.fetch_all(
            "SELECT state, count(*) FROM bulk_job_devices WHERE job_id = ? GROUP BY state", (job_id,))
        return BulkJob(row["id"], json.loads(row["command"]), json.loads(row["target"]), row["ttl"],
                       row["created_at"], _in_order(dict(counts)))

    async def devices(self, job, *, state=None, limit, offset):
        """(a page of the job's devices, of `state` only when given, in the job's order; how many there are)."""
        which = "" if state is None else " AND m.state = ?"
        # Of one state: its index, which holds the job's order too (the primary key follows in it); without
        # statistics SQLite walked every device of the job by the primary key instead (EXPLAIN QUERY PLAN).
        index = "" if state is None else " INDEXED BY bulk_job_devices_by_state"
        rows = await self.db.fetch_all(
            f"SELECT uid, m.state, command_id, result, error FROM bulk_job_devices AS m{index}"
            " JOIN devices ON devices.id = m.device_id LEFT JOIN commands ON commands.id = m.command_id"
            f" WHERE job_id = ?{which} ORDER BY position LIMIT ? OFFSET ?",
            (job.id, *(() if state is None else (state,)), limit, offset))
        page = [BulkDevice(uid, state_, command_id, jsonvalues.stored(result),
                           OUTCOMES.get(state_) if command_id is None else error)
                for uid, state_, command_id, result, error in rows]
        return page, job.device_count if state is None else job.counts.get(state, 0)


async def target_devices(tx, user_id, *, uids, filters, most, button=None):
    """[(uid, device id, enabled, online, the payload of its `button` as stored or None)] of the devices a target
    selects (`uids`, else `filters`: a DeviceFilter), in the job's order: the uids' (raises UnknownDevices for those
    that are no device of the user's), else by registration, `most` + 1 at most. In the caller's transaction `tx`;
    an OTA campaign's targets are resolved here too (storage/campaigns.py)."""
    payload = "(SELECT payload FROM command_buttons WHERE device_id = devices.id AND button_id = ?)"
    if uids is not None:
        rows = await tx.execute_fetchall(
            f"SELECT json_each.value, devices.id, enabled, is_online, {payload} FROM json_each(?)"
            " LEFT JOIN devices ON devices.uid = json_each.value AND devices.user_id = ? ORDER BY json_each.key",
            (button, json.dumps(uids), user_id))
        unknown = [row[0] for row in rows if row[1] is None]
        if unknown:
            raise UnknownDevices(unknown)
    else:
        where, params = filters.where()
        rows = await tx.execute_fetchall(
            f"SELECT uid, id, enabled, is_online, {payload} FROM devices WHERE user_id = ?{where} ORDER BY id LIMIT ?",
            (button, user_id, *params, most + 1))
    return [tuple(row) for row in rows]


def _in_order(counts):
    """{state: devices} in the order of STATES."""
    return {state: counts[state] for state in STATES if state in counts}


def _outcome(request, enabled, online, button_payload):
    """Why a device gets no command (a key of OUTCOMES), or None: it gets one."""
    if not enabled:
        return "disabled"
    if request.button is not None and button_payload is None:
        return "no_button"
    if not online and request.ttl is None:
        return "offline"
    return None
