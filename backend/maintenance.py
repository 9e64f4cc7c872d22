"""Background upkeep: expire unanswered commands, retry device access changes the broker has not
confirmed, prune old telemetry."""

import asyncio
import logging
import time

from .broker.accounts import apply_access_change

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0  # commands expire at most this late
_ACCESS_RETRY_SECONDS = 5.0
_PRUNE_EVERY_SECONDS = 3600.0
# Not at once: a start should not pay for a prune of rows that were young enough an hour ago.
_FIRST_PRUNE_SECONDS = 60.0


async def run(storage, settings, accounts):
    next_retry = time.monotonic()
    next_prune = time.monotonic() + _FIRST_PRUNE_SECONDS
    while True:
        try:
            await storage.commands.expire()
            if time.monotonic() >= next_retry:
                next_retry = time.monotonic() + _ACCESS_RETRY_SECONDS
                await retry_access_changes(storage, accounts)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                removed = await storage.telemetry.prune(settings.telemetry_retention_days)
                if removed:
                    log.info("pruned %d telemetry rows older than %g days", removed, settings.telemetry_retention_days)
        except Exception:  # a failed round must not end upkeep for the life of the process
            log.exception("maintenance round failed")
        await asyncio.sleep(_TICK_SECONDS)


async def retry_access_changes(storage, accounts):
    """Apply the access changes the broker did not confirm when they were made (storage/access.py)."""
    for pending in await storage.access.pending():
        try:
            await apply_access_change(accounts, pending.uid, pending.change)
        except Exception as error:  # noqa: BLE001 - kept, counted and logged; retried next round
            await storage.access.remember(pending.uid, pending.change, error)
            log.warning("broker still refuses to %s device %s (attempt %d): %s",
                        pending.change, pending.uid, pending.attempts + 1, error)
            continue
        await storage.access.forget(pending.uid, pending.change)
        log.info("broker confirmed, at attempt %d, the %s of device %s", pending.attempts + 1, pending.change,
                 pending.uid)
