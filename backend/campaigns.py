"""OTA campaigns' flow (docs/api.md, OTA campaigns): one firmware, by md5, to many devices of a user in waves, halted
by itself when too many of them fail. The rows are storage/campaigns.py's; each device's update is an ordinary OTA
job, started by Service.trigger_ota as POST .../ota starts one, so everything an OTA does holds (`updated` only on
the new md5, rollbacks, expiry, the restart of a job).

The flow runs in one task (run(), started by lifecycle.campaigns_ctx). Every TICK_SECONDS, and at once when a
campaign is created or resumed, it steps each running or paused campaign (_advance):

1. a running campaign whose failures (failed, rolled_back, expired jobs) are more than max_failure_percent of the
   devices given a job halts, once at least schemas.CAMPAIGN_HALT_MIN_ATTEMPTED were given one;
2. a running campaign gives the OTA to its devices that are due: those still pending in the wave started last, and
   those waiting (offline, disabled or in another OTA at their wave) that are online and free now;
3. once every device of the wave started last is past its job (or waiting), that moment is noted; pause_seconds
   after it, the next wave starts (the first at once);
4. a running campaign completes once every wave started and no device is left pending, waiting or in its job;
5. its progress goes to the owner's live events whenever it changed: {"type": "campaign", ...}.

Everything is in the database, so a backend that restarts carries on where it was (a wave it had half started is
finished by step 2). Jobs move on the bridge's events, not here: a device's campaign state follows its job by a
trigger, and this step reads the counts the triggers keep.
"""

import asyncio
import logging

from . import schemas
from .service import NotApplicable, ServiceError
from .storage import Conflict, NotFound
from .storage.campaigns import ACTIVE, NO_FIRMWARE, UNFINISHED, UP_TO_DATE, now_ms, seconds_since
from .storage.commands import DEVICE_DISABLED, DEVICE_OFFLINE

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # how late, at most, a wave starts after its pause, or a device back online gets its OTA
# What pause, resume and cancel answer in a state that does not allow them (409).
_REFUSED = {
    "paused": "Only a running campaign can be paused; this one is {state}.",
    "running": "Only a paused campaign can be resumed; this one is {state}.",
    "cancelled": "Only a running or paused campaign can be cancelled; this one is {state}.",
}


class Campaigns:
    def __init__(self, storage, service, hub):
        self.storage = storage
        self.service = service  # service.py's Service: trigger_ota
        self.hub = hub  # events.py's EventHub
        self._wake = asyncio.Event()
        self._shown = {}  # campaign id -> the progress published last (running and paused campaigns only)

    # --- the handlers' -------------------------------------------------------------------------

    async def create(self, user_id, request):
        """Store a campaign of `request` (schemas.new_campaign's fields, `filters` a DeviceFilter or None) and start
        its first wave at once (in the flow's task). Returns the campaign as stored. Raises ValidationError (a
        target of no device or too many, too many waves), UnknownDevices, or NotFound (no device of the target has
        the firmware); nothing is stored then."""
        campaign = await self.storage.campaigns.create(
            user_id, request, most=schemas.BULK_MAX_DEVICES, check_size=schemas.bulk_size,
            wave_size_of=lambda to_update: schemas.campaign_wave_size(
                to_update, wave_size=request["wave_size"], wave_percent=request["wave_percent"]))
        self._publish(campaign)
        self._wake.set()
        return campaign

    async def pause(self, user_id, campaign_id):
        """No device gets an OTA any more until resume(); the jobs under way go on. Returns the campaign."""
        return await self._change(user_id, campaign_id, "paused", allowed=("running",))

    async def resume(self, user_id, campaign_id):
        return await self._change(user_id, campaign_id, "running", allowed=("paused",))

    async def cancel(self, user_id, campaign_id):
        """The campaign ends: its devices without a job are skipped; the jobs under way go on."""
        return await self._change(user_id, campaign_id, "cancelled", allowed=ACTIVE)

    async def _change(self, user_id, campaign_id, state, *, allowed):
        """Raises NotFound, or Conflict when the campaign is in a state that does not allow the change."""
        campaigns = self.storage.campaigns
        campaign = await campaigns.get(user_id, campaign_id)
        changed = await campaigns.change_state(campaign.id, state, allowed=allowed)
        if changed is None:
            raise Conflict(_REFUSED[state].format(state=(await campaigns.get(user_id, campaign_id)).state))
        self._publish(changed)
        self._wake.set()
        return changed

    # --- the flow's task -----------------------------------------------------------------------

    async def run(self):
        """Step the campaigns for as long as the app runs."""
        while True:
            self._wake.clear()
            await self.step()
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            except TimeoutError:
                pass

    async def step(self):
        """One step of every running or paused campaign; one that fails is logged, and the others go on."""
        for campaign in await self.storage.campaigns.active():
            try:
                await self._advance(campaign)
            except Exception:  # noqa: BLE001 - tried again at the next step
                log.exception("campaign %s: step failed", campaign.id)

    async def _advance(self, campaign):
        campaigns = self.storage.campaigns
        if campaign.state == "running":
            reason = halt_reason(campaign)
            if reason is not None:
                halted = await campaigns.change_state(campaign.id, "halted", allowed=("running",), reason=reason)
                log.warning("campaign %s halted: %s", campaign.id, reason)
                self._publish(halted or campaign)
                return
            await self._start_due(campaign)
        final_at = await campaigns.close_wave(campaign) if campaign.wave else None
        if campaign.state == "running" and (
                campaign.wave == 0 or final_at is not None and seconds_since(final_at) >= campaign.pause_seconds):
            started = await campaigns.start_wave(campaign)
            if started is not None:
                await self._start_due(started)
        campaign = await campaigns.get(campaign.user_id, campaign.id)
        if campaign.state == "running" and campaign.wave == campaign.wave_count and not any(
                state in UNFINISHED for state in campaign.counts):
            campaign = await campaigns.complete(campaign) or campaign
        self._publish(campaign)

    async def _start_due(self, campaign):
        """Give the OTA to the campaign's devices that are due, one after the other, while it is running."""
        await self.storage.campaigns.park_offline(campaign, offline=DEVICE_OFFLINE, disabled=DEVICE_DISABLED)
        for member in await self.storage.campaigns.due(campaign):
            if await self.storage.campaigns.state_of(campaign.id) != "running":
                return  # paused or cancelled meanwhile: the others wait, or were skipped
            await self._start(campaign, member)

    async def _start(self, campaign, member):
        """Give `member` its OTA: its firmware of the campaign's md5 becomes its target, as set-target makes it, and
        Service.trigger_ota starts the job; or note why it waits for now, or gets none."""
        campaigns = self.storage.campaigns
        try:
            device = await self.storage.devices.get(campaign.user_id, member.uid)
        except NotFound:
            return  # deleted meanwhile, and its row with it
        if (device.meta.get("fw") or {}).get("md5") == campaign.md5:  # updated some other way since
            await campaigns.settle(campaign.id, member.position, "up_to_date", UP_TO_DATE)
            return
        if not device.is_online:
            why = DEVICE_OFFLINE if device.enabled else DEVICE_DISABLED
            await campaigns.settle(campaign.id, member.position, "waiting", why)
            return
        try:
            await self.storage.firmwares.set_target(device, campaign.md5)
            command = await self.service.trigger_ota(await self.storage.devices.get(campaign.user_id, member.uid))
        except NotFound:  # its firmware of that md5 was deleted since the campaign began (or the device itself)
            await campaigns.settle(campaign.id, member.position, "no_firmware", NO_FIRMWARE)
        except NotApplicable as error:
            await campaigns.settle(campaign.id, member.position, "not_applicable", error.message)
        except (ServiceError, Conflict) as error:  # offline since, another OTA open, no broker: it waits
            await campaigns.settle(campaign.id, member.position, "waiting", error.message)
        else:
            await campaigns.started(campaign.id, member.position, command.id)

    def _publish(self, campaign):
        """The campaign's progress to its owner's live events, when it is not what was published last."""
        progress = {"type": "campaign", "id": campaign.id, "name": campaign.name, "state": campaign.state,
                    "reason": campaign.reason, "wave": campaign.wave, "wave_count": campaign.wave_count,
                    "counts": campaign.counts}
        if self._shown.get(campaign.id) == progress:
            return
        if campaign.state in ACTIVE:
            self._shown[campaign.id] = progress
        else:
            self._shown.pop(campaign.id, None)
        self.hub.publish(campaign.user_id, {**progress, "timestamp": now_ms()})


def halt_reason(campaign):
    """Why the campaign must halt (its failures are more than max_failure_percent of the devices given a job, once
    schemas.CAMPAIGN_HALT_MIN_ATTEMPTED were given one), or None."""
    attempted, failures = campaign.attempted, campaign.failures
    if attempted < schemas.CAMPAIGN_HALT_MIN_ATTEMPTED or failures * 100 <= campaign.max_failure_percent * attempted:
        return None
    return (f"{failures} of the {attempted} devices given the OTA failed, rolled back or expired"
            f" ({failures * 100 / attempted:.0f} %), more than the campaign's {campaign.max_failure_percent} %.")
