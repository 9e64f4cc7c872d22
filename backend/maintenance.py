"""Background upkeep of the database: expire unanswered commands, prune old telemetry."""

import asyncio
import logging
import time

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0  # commands expire at most this late
_PRUNE_EVERY_SECONDS = 3600.0


async def run(storage, settings):
    next_prune = time.monotonic()
    while True:
        try:
            await storage.commands.expire()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                removed = await storage.telemetry.prune(settings.telemetry_retention_days)
                if removed:
                    log.info("pruned %d telemetry rows older than %g days", removed, settings.telemetry_retention_days)
        except Exception:  # a failed round must not end upkeep for the life of the process
            log.exception("maintenance round failed")
        await asyncio.sleep(_TICK_SECONDS)
