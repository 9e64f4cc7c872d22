"""What Home Assistant discovery needs of one user's fleet (ha_discovery.py, home_assistant.py): each device with
its presence, firmware (reported, current, target), saved buttons, latest telemetry and open OTA job.

A round reads the whole fleet in four queries, on a connection and thread of its own (database.FleetReader, as the
alarm rules' walks of a fleet): a fleet's rows are too many for the event loop's inline reader.
"""

from dataclasses import dataclass, field

from .database import FleetReader
from .ota import OPEN_STATES

_OPEN_SQL = "(" + ", ".join(f"'{state}'" for state in OPEN_STATES) + ")"
_DEVICES = (
    "SELECT d.uid, d.name, d.board_key, d.status, json_extract(d.meta, '$.fw.version'),"
    " json_extract(d.meta, '$.fw.md5'), cf.version, tf.version, tf.md5"
    " FROM devices d LEFT JOIN firmwares cf ON cf.id = d.current_firmware_id"
    " LEFT JOIN firmwares tf ON tf.id = d.target_firmware_id WHERE d.user_id = ? ORDER BY d.id"
)
_BUTTONS = (
    "SELECT d.uid, b.button_id, b.label FROM command_buttons b JOIN devices d ON d.id = b.device_id"
    " WHERE d.user_id = ? ORDER BY b.created_at, b.rowid"
)
_TELEMETRY = (
    "SELECT d.uid, t.key, t.value FROM telemetry_latest t JOIN devices d ON d.id = t.device_id WHERE d.user_id = ?"
)
_OPEN_JOBS = (
    "SELECT d.uid, j.state, j.progress FROM ota_jobs j JOIN devices d ON d.id = j.device_id"
    f" WHERE d.user_id = ? AND j.state IN {_OPEN_SQL}"
)


@dataclass
class FleetDevice:
    uid: str
    name: str
    board_key: str
    online: bool
    fw_version: str | None  # what its status reports (`fw`)
    fw_md5: str | None
    current_version: str | None  # of the uploaded firmware matching the reported md5
    target_version: str | None
    target_md5: str | None  # None: no target
    buttons: list = field(default_factory=list)  # (button id, label), in the order they were saved
    telemetry: dict = field(default_factory=dict)  # key -> latest value
    job_state: str | None = None  # of the open OTA job (None: none open)
    job_progress: int | None = None


class HomeAssistantReads:
    def __init__(self, db):
        self.db = db
        self._reader = FleetReader(db.path)  # its fleet-wide reads, in a thread of their own

    async def user_id(self, name):
        """The id of user `name`, or None."""
        row = await self.db.fetch_one("SELECT id FROM users WHERE name = ?", (name,))
        return row[0] if row else None

    async def fleet(self, user_id):
        """The devices of `user_id` (FleetDevice), in the order they were registered."""
        devices = {}
        for uid, name, board_key, status, fw_version, fw_md5, current_version, target_version, target_md5 in \
                await self._reader.fetch_all(_DEVICES, (user_id,)):
            devices[uid] = FleetDevice(uid, name, board_key, status == "online", fw_version, fw_md5, current_version,
                                       target_version, target_md5)
        # The devices were read first: a row of one registered in between has no device and is skipped.
        for uid, button_id, label in await self._reader.fetch_all(_BUTTONS, (user_id,)):
            if uid in devices:
                devices[uid].buttons.append((button_id, label))
        for uid, key, value in await self._reader.fetch_all(_TELEMETRY, (user_id,)):
            if uid in devices:
                devices[uid].telemetry[key] = value
        for uid, state, progress in await self._reader.fetch_all(_OPEN_JOBS, (user_id,)):
            if uid in devices:
                devices[uid].job_state, devices[uid].job_progress = state, progress
        return list(devices.values())

    async def close(self):
        await self._reader.close()
