"""The storage layer: every SQL statement and every firmware file operation lives here.

Imports neither aiohttp nor MQTT. Callers get typed rows (dataclasses) and the
errors of `errors.py`.
"""

from pathlib import Path

from .access import AccessStore, PendingAccess
from .alarm_rules import RuleStore
from .alarms import AlarmStore
from .blobs import BlobStore, TooLarge
from .buttons import Button, ButtonStore
from .bulk import BulkStore
from .campaigns import CampaignStore
from .commands import Command, CommandStore
from .configuration import ConfigurationStore
from .database import Database
from .devices import Device, DeviceStore
from .errors import Conflict, NotFound, StorageError
from .firmwares import Firmware, FirmwareStore
from .groups import Group, GroupStore
from .notifications import ChannelStore
from .ota import Job, OtaStore
from .presence import PresenceEvent, PresenceStore
from .stats import StatsStore
from .tags import TagStore
from .telemetry import Sample, TelemetryStore
from .users import User, UserStore

__all__ = [
    "Button", "Command", "Conflict", "Device", "Firmware", "Group", "Job", "NotFound", "PendingAccess",
    "PresenceEvent", "Sample",
    "Storage", "StorageError", "TooLarge", "User",
]


class Storage:
    """The database file and the firmware folder of one data directory."""

    def __init__(self, data_dir):
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(data_dir / "mpfleet.db")
        self.blobs = BlobStore(data_dir / "firmware")
        self.users = UserStore(self.db)
        self.devices = DeviceStore(self.db, self.blobs)
        self.buttons = ButtonStore(self.db)
        self.firmwares = FirmwareStore(self.db, self.blobs)
        self.commands = CommandStore(self.db)
        self.ota = OtaStore(self.db)
        self.telemetry = TelemetryStore(self.db)
        self.access = AccessStore(self.db)
        self.tags = TagStore(self.db)
        self.groups = GroupStore(self.db)
        self.presence = PresenceStore(self.db)
        self.stats = StatsStore(self.db)
        self.bulk = BulkStore(self.db)
        self.campaigns = CampaignStore(self.db)
        self.rules = RuleStore(self.db)  # alarm rules
        self.alarms = AlarmStore(self.db)
        self.channels = ChannelStore(self.db)  # notification channels and their delivery log
        self.configuration = ConfigurationStore(self.db)  # desired settings and the boards' reports

    async def open(self):
        """Open (creating or migrating) the database and clear what a crash left behind."""
        await self.db.open()
        self.blobs.sweep(await self.firmwares.referenced_md5s())

    async def close(self):
        await self.rules.close()
        await self.db.close()
