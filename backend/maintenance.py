"""Background upkeep: expire unanswered commands (the service then publishes what waited behind them),
retry device access changes the broker has not confirmed, prune old telemetry."""

import asyncio
import logging
import time

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0  # commands expire at most this late
_ACCESS_RETRY_SECONDS = 5.0
_PRUNE_EVERY_SECONDS = 3600.0
# Not at once: a start should not pay for a prune of rows that were young enough an hour ago.
_FIRST_PRUNE_SECONDS = 60.0


async def run(service, storage, settings):
    """Upkeep rounds for as long as the app runs; `service` is service.py's Service."""
    next_retry = time.monotonic()
    next_prune = time.monotonic() + _FIRST_PRUNE_SECONDS
    while True:
        try:
            await service.expire_commands()
            if time.monotonic() >= next_retry:
                next_retry = time.monotonic() + _ACCESS_RETRY_SECONDS
                await service.retry_access_changes()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                removed = await storage.telemetry.prune(settings.telemetry_retention_days)
                if removed:
                    log.info("pruned %d telemetry rows older than %g days", removed, settings.telemetry_retention_days)
        except Exception:  # a failed round must not end upkeep for the life of the process
            log.exception("maintenance round failed")
        await asyncio.sleep(_TICK_SECONDS)
