"""Background upkeep: expire unanswered commands (the service then publishes what waited behind them),
retry device access changes the broker has not confirmed, evaluate the alarm rules that watch time (offline,
missing_data, reconnect_rate), prune old telemetry."""

import asyncio
import logging
import time

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0  # commands expire at most this late
_ACCESS_RETRY_SECONDS = 5.0
_PRUNE_EVERY_SECONDS = 3600.0
# Not at once: a start should not pay for a prune of rows that were young enough an hour ago.
_FIRST_PRUNE_SECONDS = 60.0


async def run(service, storage, settings, *, alarms):
    """Upkeep rounds for as long as the app runs; `service` is service.py's Service, `alarms` alarms.py's
    AlarmService (whose periodic rules are evaluated every few rounds)."""
    next_retry = time.monotonic()
    next_prune = time.monotonic() + _FIRST_PRUNE_SECONDS
    while True:
        try:
            await service.expire_commands()
            if time.monotonic() >= next_retry:
                next_retry = time.monotonic() + _ACCESS_RETRY_SECONDS
                await service.retry_access_changes()
            await alarms.evaluate_periodic()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                removed = await storage.telemetry.prune(settings.telemetry_retention_days)
                if removed:
                    log.info("pruned %d telemetry rows older than %g days", removed, settings.telemetry_retention_days)
                await storage.alarms.prune(settings.telemetry_retention_days)  # resolved ones keep as long
        except Exception:  # a failed round must not end upkeep for the life of the process
            log.exception("maintenance round failed")
        await asyncio.sleep(_TICK_SECONDS)
