"""What the rest of the backend knows of the broker, whichever it is."""

from dataclasses import dataclass
from typing import Protocol

# A device's will (docs/protocol.md), which a broker publishes in its place, retained, where there is
# none to publish: a clean disconnect (both brokers), a revoked Mosquitto account.
OFFLINE_STATUS = b'{"online":false}'


@dataclass(frozen=True)
class MqttPublic:
    """How boards reach the broker: shown in the registration answer and the device detail."""

    host: str
    port: int
    ca_cert: str | None  # PEM


class DeviceAccounts(Protocol):
    """The broker's side of device credentials.

    With the embedded broker, accounts live in our database and the broker asks it,
    so only cutting sessions is left to do; Mosquitto keeps accounts of its own.
    """

    async def add_device(self, uid: str, password: str) -> None: ...

    async def remove_device(self, uid: str) -> None:
        """Delete the account and cut a live session."""

    async def set_device_enabled(self, uid: str, enabled: bool) -> None:
        """Disabling cuts a live session and refuses new ones."""


async def apply_access_change(accounts, uid, change):
    """One access change of storage/access.py ("remove", "disable", "enable") through `accounts`."""
    if change == "remove":
        await accounts.remove_device(uid)
    else:
        await accounts.set_device_enabled(uid, change == "enable")


class EmbeddedAccounts:
    """DeviceAccounts of the embedded broker: it authenticates against our database,
    so an account exists as soon as the row does; revoking means cutting the session."""

    def __init__(self, broker):
        self.broker = broker

    async def add_device(self, uid, password):
        pass

    async def remove_device(self, uid):
        await self.broker.disconnect(uid)

    async def set_device_enabled(self, uid, enabled):
        if not enabled:
            await self.broker.disconnect(uid)
