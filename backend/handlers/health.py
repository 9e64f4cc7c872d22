"""A device's presence history and health, and the user's fleet in figures (docs/api.md, Presence and health)."""

import time

from .. import health as formula
from ..schemas import STATUSES
from ..responses import json_response
from . import common

PRESENCE_DEFAULT, PRESENCE_MAX = 100, 1000
SAMPLES_FOR_PERIOD = 11  # the last samples whose gaps give a device's telemetry period (health.py)
STATS_WINDOW_S = 86400


async def presence(request):
    """?from= ISO 8601 or unix seconds; ?limit= newest first (default 100, ≤ 1000): {"data": [event, ...]}."""
    device = await common.device(request)
    events = await common.storage(request).presence.history(
        device, since=common.time_query(request, "from"),
        limit=common.int_query(request, "limit", default=PRESENCE_DEFAULT, low=1, high=PRESENCE_MAX))
    return json_response({"data": [_event(e) for e in events]})


async def device_health(request):
    """{"data": {"score", "status", "components"}}: health.py's formula over the last day."""
    device = await common.device(request)
    storage = common.storage(request)
    now = time.time()
    since = now - formula.WINDOW_S
    # A day's events of a device are few (a change of status each); PRESENCE_MAX bounds a flapping one's.
    events = await storage.presence.history(device, since=since, limit=PRESENCE_MAX)
    before = await storage.presence.last_before(device, since)
    times = await storage.telemetry.recent_times(device, SAMPLES_FOR_PERIOD)
    open_alarms = await storage.alarms.open_by_severity(device.id)
    return json_response({"data": formula.health(device, events=events, before=before, sample_times=times,
                                                 open_alarms=open_alarms, now=now)})


async def stats(request):
    """{"data": {"total_devices", "online_devices", "online_percent", "by_status", "by_platform", "by_board",
    "by_firmware", "telemetry_values_24h"}}."""
    user = common.user(request)
    storage = common.storage(request)
    devices = await storage.stats.devices(user.id)
    online = devices["by_status"].get("online", 0)
    total = devices["total"]
    return json_response({"data": {
        "total_devices": total,
        "online_devices": online,
        "online_percent": round(100 * online / total, 1) if total else 0.0,
        "by_status": {status: devices["by_status"].get(status, 0) for status in STATUSES},
        "by_platform": devices["by_platform"],
        "by_board": devices["by_board"],
        "by_firmware": devices["by_firmware"],
        "telemetry_values_24h": await storage.telemetry.stored_since(user.id, time.time() - STATS_WINDOW_S),
    }})


def _event(event):
    return {"at": event.time, "status": event.status, "previous": event.previous, "boot": event.boot,
            "reason": event.reason}
