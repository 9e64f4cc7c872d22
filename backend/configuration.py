"""Desired configuration's flow (docs/api.md, Configuration; docs/protocol.md, `config`): the settings a board should
run with, a device's own and its groups', delivered retained on the device's `config` topic and compared with what
the board reports it applied.

- A device's effective settings are its groups' merged in ascending group id (a later group's key overrides an
  earlier one's), then its own over them (effective()). They are computed again, and their version raised when they
  change, inside the transaction of each change they come from: a device's PUT, a group's PUT, a device added to a
  group or taken out of it, a group deleted (storage/configuration.py recompute()); a change that would give a
  device more than a PUT may give it (config_schemas.effective_problem) is refused whole, 422.
- After the change, every device whose effective settings changed gets them in one pass of the bridge
  (Bridge.publish_configs: it publishes what storage holds at that moment, so that two changes published out of
  order still leave the newest retained). A broker that cannot be reached loses nothing: the bridge publishes every
  device's settings again whenever it (re)connects, which is also how a board finds them after the embedded broker
  restarted (it keeps no retained message across a restart).
- A deleted device's retained `config` is cleared (an empty payload).
- A board's `config_report` is kept as it is (report()); `in_sync` is its version being the current one, without
  errors.
"""

import logging

from . import config_schemas
from .bridge import BridgeUnavailable

log = logging.getLogger(__name__)


def effective(of_groups, own):
    """The settings a board gets: `of_groups` (each group's settings, in ascending group id) merged, then `own`."""
    merged = {}
    for settings in of_groups:
        merged.update(settings)
    merged.update(own)
    return merged


def as_json(config):
    """A storage DeviceConfig as the API and the live events show it."""
    reported = config.reported
    return {
        "desired": config.effective,
        "own": config.own,
        "version": config.version,
        "reported": None if reported is None else {
            "v": reported.version, "applied": reported.applied, "errors": reported.errors,
            "reported_at": reported.reported_at},
        "in_sync": config.in_sync,
    }


def _limited(field):
    """recompute()'s check: effective settings a board can take, else ValidationError naming `field`."""
    def check(uid, settings):
        problem = config_schemas.effective_problem(settings)
        if problem is not None:
            raise config_schemas.too_much(field, uid, problem)
    return check


def _anything(uid, settings):
    pass


class Configurations:
    def __init__(self, storage, bridge):
        self.storage = storage
        self.bridge = bridge

    async def of_device(self, device):
        return await self.storage.configuration.of_device(device)

    async def set_device(self, device, settings):
        """Replace the device's own settings (validated: config_schemas.settings) and deliver what changed.
        Returns its DeviceConfig. Raises ValidationError when its effective settings would be too many."""
        changed = await self.storage.configuration.set_device(
            device, settings, merge=effective, check=_limited("settings"))
        await self._deliver(changed)
        return await self.storage.configuration.of_device(device)

    async def of_group(self, user_id, group_id):
        return await self.storage.configuration.of_group(user_id, group_id)

    async def set_group(self, user_id, group_id, settings):
        """Replace a group's settings and deliver them to each member whose effective settings changed. Returns
        the group's settings. Raises NotFound, ValidationError (as set_device, for any member)."""
        changed = await self.storage.configuration.set_group(
            user_id, group_id, settings, merge=effective, check=_limited("settings"))
        await self._deliver(changed)
        return settings

    async def add_to_group(self, user_id, group_id, uids):
        """GroupStore.add_devices, and the new members' settings delivered where they changed. Returns the group.
        Raises what add_devices raises, and ValidationError (`uids`) when a device's settings would be too many."""
        changed, recompute = self._recompute("uids")
        group = await self.storage.groups.add_devices(user_id, group_id, uids, changed=recompute)
        await self._deliver(changed)
        return group

    async def remove_from_group(self, user_id, group_id, uid):
        """GroupStore.remove_device, and the device's settings delivered if they changed. Returns the group."""
        changed, recompute = self._recompute(None)
        group = await self.storage.groups.remove_device(user_id, group_id, uid, changed=recompute)
        await self._deliver(changed)
        return group

    async def delete_group(self, user_id, group_id):
        """GroupStore.delete, and its members' settings delivered where they changed."""
        changed, recompute = self._recompute(None)
        await self.storage.groups.delete(user_id, group_id, changed=recompute)
        await self._deliver(changed)

    def _recompute(self, field):
        """(the uids it changed, once it ran; a GroupStore `changed` hook recomputing the devices it is given).
        `field`: what a refusal names; None: nothing is refused (a group's settings taken away, which never adds
        a key; a value an earlier group gives may be longer, and the board says what it cannot apply)."""
        changed = []
        check = _limited(field) if field else _anything

        async def recompute(tx, device_ids):
            changed.extend(await self.storage.configuration.recompute(tx, device_ids, merge=effective, check=check))
        return changed, recompute

    async def report(self, uid, version, applied, errors):
        """A board's validated `config_report`. Returns (its user id, its DeviceConfig), or None for no device."""
        return await self.storage.configuration.report(uid, version, applied, errors)

    async def device_deleted(self, uid):
        """Clear the deleted device's retained `config` (a board that still had a session gets an empty message,
        which it ignores)."""
        try:
            await self.bridge.clear_config(uid)
        except BridgeUnavailable as error:
            log.warning("could not clear the retained config of %s: %s", uid, error)

    async def _deliver(self, uids):
        if not uids:
            return
        try:
            await self.bridge.publish_configs(uids)
        except BridgeUnavailable as error:  # kept: the bridge publishes every device's again when it reconnects
            log.warning("could not publish the config of %d devices now (%s); they get it when the broker is back",
                        len(uids), error)
