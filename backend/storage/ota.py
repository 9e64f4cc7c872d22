"""OTA jobs (docs/api.md, OTA): one per `ota` command, sharing its id, with the state the device's reports
move it through and the history of those states.

    sent -> downloading (progress) -> verified -> applying -> updated
    or failed (reason), rolled_back (reason), expired (its command expired)

Which report moves a job where is the service layer's decision (service.py); this store only moves a job
from the state its caller saw (compare and set), so two reports racing cannot both apply.
"""

import json
from dataclasses import dataclass

from .commands import insert_command
from .database import utc_now
from .errors import Conflict

IN_PROGRESS = "An OTA is already in progress for this device."
OPEN_STATES = ("sent", "downloading", "verified", "applying")
FINAL_STATES = ("updated", "failed", "rolled_back", "expired")
# As literals: SQLite uses the partial index ota_jobs_open only for the terms it was made with.
_OPEN_SQL = "(" + ", ".join(f"'{state}'" for state in OPEN_STATES) + ")"
MAX_HISTORY = 100  # entries per job: a board that restarts its download over and over cannot grow it without end
MAX_LISTED = 500  # jobs ?all=true shows, newest first (reads stay bounded)
_COLUMNS = ("id, device_id, firmware_id, md5, from_md5, state, progress, error, bytes_served, history,"
            " created_at, updated_at")
# One history entry; json_patch drops the keys whose value is null (progress, error when not given).
_ENTRY = "json_patch(json_object('state', ?, 'at', ?), json_object('progress', ?, 'error', ?))"
_APPEND = f"CASE WHEN json_array_length(history) < {MAX_HISTORY} THEN json_insert(history, '$[#]', {_ENTRY})" \
          " ELSE history END"


@dataclass(frozen=True)
class Job:
    id: str  # = the id of its `ota` command
    device_id: int
    firmware_id: int | None  # None: the firmware was deleted since
    md5: str  # of the image the job delivers
    from_md5: str | None  # what the device reported running when the job began
    state: str
    progress: int | None
    error: str | None
    bytes_served: int
    history: list
    created_at: str
    updated_at: str

    @property
    def is_open(self):
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class Download:
    """What the download route needs of a job: whose it is, what it serves, whether it is open."""

    job_id: str
    uid: str
    firmware_id: int | None
    md5: str | None  # of the firmware row (None: deleted)
    is_open: bool
    device_enabled: bool


def _job_from_row(row):
    fields = dict(zip(row.keys(), row))
    fields["history"] = json.loads(row["history"])
    return Job(**fields)


class OtaStore:
    def __init__(self, db):
        self.db = db

    async def create(self, device, firmware, command_id, payload, *, hold, from_md5):
        """The `ota` command (queued; see CommandStore) and its job (`sent`), in one transaction. Returns the
        Command. Raises Conflict while the device has an open job."""
        async with self.db.transaction() as tx:
            if await (await tx.execute(
                f"SELECT 1 FROM ota_jobs WHERE device_id = ? AND state IN {_OPEN_SQL}", (device.id,)
            )).fetchone():
                raise Conflict(IN_PROGRESS)
            command = await insert_command(tx, command_id, device.id, "ota", payload, hold=hold)
            now = command.created_at
            await tx.execute(
                f"INSERT INTO ota_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'sent', NULL, NULL, 0, ?, ?, ?)",
                (command_id, device.id, firmware.id, firmware.md5, from_md5,
                 json.dumps([{"state": "sent", "at": now}]), now, now),
            )
        return command

    async def latest(self, device):
        """The device's newest job, or None."""
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM ota_jobs WHERE device_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (device.id,),
        )
        return None if row is None else _job_from_row(row)

    async def list(self, device):
        """The device's jobs, newest first (at most MAX_LISTED)."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM ota_jobs WHERE device_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (device.id, MAX_LISTED),
        )
        return [_job_from_row(row) for row in rows]

    async def open_job(self, uid):
        """The open job of device `uid`, or None."""
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM ota_jobs WHERE device_id = (SELECT id FROM devices WHERE uid = ?)"
            f" AND state IN {_OPEN_SQL}",
            (uid,),
        )
        return None if row is None else _job_from_row(row)

    async def of_device(self, uid, job_id):
        """Job `job_id` if it is device `uid`'s, or None (a report naming another device's job is ignored)."""
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM ota_jobs WHERE id = ? AND device_id = (SELECT id FROM devices WHERE uid = ?)",
            (job_id, uid),
        )
        return None if row is None else _job_from_row(row)

    async def move(self, job, state, *, progress=None, error=None, log=True):
        """Move `job` from the state it has (as the caller saw it) to `state`, with its progress and error;
        `log` adds an entry to its history. Entering `updated` also stamps the device's last_ota_at.
        Returns True when it moved (False: another report moved it first)."""
        now = utc_now()
        history = _APPEND if log else "history"
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                f"UPDATE ota_jobs SET state = ?, progress = ?, error = ?, updated_at = ?, history = {history}"
                " WHERE id = ? AND state = ?",
                (state, progress, error, now, *((state, now, progress, error) if log else ()), job.id, job.state),
            )
            moved = cursor.rowcount == 1
            if moved and state == "updated":
                await tx.execute("UPDATE devices SET last_ota_at = ? WHERE id = ?", (now, job.device_id))
        return moved

    async def explain(self, job, error):
        """Put the device's own reason on a job that is over already (a rollback the backend saw first, from
        the device's status, before the old app said why)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE ota_jobs SET error = ?, updated_at = ?,"
                " history = json_set(history, '$[#-1].error', ?) WHERE id = ? AND state = ? AND error IS ?",
                (error, utc_now(), error, job.id, job.state, job.error),
            )

    async def close_with_commands(self, command_ids, state):
        """Move the open jobs of these (expired or unpublished) commands to `state` (expired, failed), with
        their command's error. Returns the ids of those moved."""
        ids = list(command_ids)
        if not ids:
            return []
        now = utc_now()
        error = "(SELECT error FROM commands WHERE commands.id = ota_jobs.id)"
        marks = ", ".join("?" * len(ids))
        async with self.db.transaction() as tx:
            rows = await tx.execute_fetchall(
                f"UPDATE ota_jobs SET state = ?, error = {error}, updated_at = ?,"
                f" history = json_insert(history, '$[#]', json_object('state', ?, 'at', ?, 'error', {error}))"
                f" WHERE id IN ({marks}) AND state IN {_OPEN_SQL} RETURNING id",
                (state, now, state, now, *ids),
            )
        return [row[0] for row in rows]

    async def download(self, job_id):
        """The Download of job `job_id`, or None when there is no such job (or its device is gone)."""
        row = await self.db.fetch_one(
            "SELECT j.id, d.uid, j.firmware_id, f.md5, j.state, d.enabled FROM ota_jobs j"
            " JOIN devices d ON d.id = j.device_id LEFT JOIN firmwares f ON f.id = j.firmware_id WHERE j.id = ?",
            (job_id,),
        )
        if row is None:
            return None
        return Download(row[0], row[1], row[2], row[3], row[4] in OPEN_STATES, bool(row[5]))

    async def count_served(self, job_id, size):
        """Add `size` bytes to what the job's downloads have sent (one write per response, as it ends)."""
        if size:
            async with self.db.transaction() as tx:
                await tx.execute("UPDATE ota_jobs SET bytes_served = bytes_served + ? WHERE id = ?", (size, job_id))
