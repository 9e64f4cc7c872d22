"""A device's health, 0 to 100, from what the backend has seen of it over the last day (docs/api.md, Health):

    score = 0.3 x uptime + 0.25 x stability + 0.25 x freshness + 0.2 x alarms     (each component 0-100; rounded)

- uptime: the share of the window it was online; the window is the last 24 h, or since it was first seen when
  that is later;
- stability: 100, less 10 for each disconnect of its own (its will, a dropped session; a backend restart does not
  count), less 20 for each boot (it came back on another boot count), less 50 while it runs in safe mode;
- freshness: 100 while its last telemetry is at most 2 periods old, 0 from 10 periods on, linear between; the
  period is the median gap between its last samples (the firmware's default, 60 s, with fewer than two);
- alarms: 100, less 50 for each open alarm (active or acknowledged: acknowledging says someone knows, not that it is
  over) of severity critical, 25 for each warning, 10 for each info.

A device never seen (pending) or disabled has no score: None, and its status says why.
"""

import statistics
from datetime import datetime

WINDOW_S = 86400.0
WEIGHTS = {"uptime": 0.3, "stability": 0.25, "freshness": 0.25, "alarms": 0.2}
DISCONNECT_COST, BOOT_COST, SAFE_MODE_COST = 10, 20, 50
FRESH_PERIODS, STALE_PERIODS = 2, 10
DEFAULT_PERIOD_S = 60.0  # the firmware's telemetry period when nothing says otherwise
ALARM_COSTS = {"critical": 50, "warning": 25, "info": 10}  # alarm_schemas.SEVERITIES
BOOTS = ("booted", "rebooted")


def health(device, *, events, before, sample_times, open_alarms, now):
    """{"score", "status", "components"} of `device` (storage.Device) at unix time `now`.

    events: its presence events of the window, any order; before: its last event before the window (or None);
    sample_times: the times of its last telemetry samples (unix seconds, any order); open_alarms: {severity: how
    many} of its open alarms."""
    if device.status in ("pending", "disabled"):
        return {"score": None, "status": device.status, "components": None}
    events = sorted(events, key=lambda e: e.at)
    start = max(now - WINDOW_S, _first_seen(device, events, now))
    components = {
        "uptime": _uptime(device, events, before, start, now),
        "stability": _stability(device, events),
        "freshness": _freshness(sample_times, now),
        "alarms": _alarms(open_alarms),
    }
    score = round(sum(WEIGHTS[name] * part["score"] for name, part in components.items()))
    return {"score": score, "status": device.status, "components": components}


def _first_seen(device, events, now):
    """When it was first seen: its first_seen event (to the millisecond), else its first_seen_at (to the second)."""
    if events and events[0].previous == "pending":
        return events[0].at
    return datetime.fromisoformat(device.first_seen_at).timestamp() if device.first_seen_at else now


def _uptime(device, events, before, start, now):
    # Its status when the window began: the last event before it, else what the first event in it changed from,
    # else (no history at all: a device older than it) its status now.
    if before is not None:
        online = before.status == "online"
    else:
        online = (events[0].previous if events else device.status) == "online"
    since, up = start, 0.0
    for event in events:
        at = max(event.at, start)
        if online:
            up += at - since
        since, online = at, event.status == "online"
    if online:
        up += now - since
    span = now - start
    share = up / span if span > 0 else 1.0
    return {"score": round(100 * share), "online_share": round(share, 4), "window_seconds": round(span)}


def _stability(device, events):
    disconnects = sum(1 for e in events if e.reason == "disconnected")
    boots = sum(1 for e in events if e.reason in BOOTS)
    safe_mode = bool(device.meta.get("safe_mode"))
    score = 100 - DISCONNECT_COST * disconnects - BOOT_COST * boots - (SAFE_MODE_COST if safe_mode else 0)
    return {"score": max(0, score), "disconnects": disconnects, "boots": boots, "safe_mode": safe_mode}


def _freshness(sample_times, now):
    times = sorted(set(sample_times))
    gaps = [b - a for a, b in zip(times, times[1:])]
    period = statistics.median(gaps) if gaps else DEFAULT_PERIOD_S
    if not times:
        return {"score": 0, "last_data_age_seconds": None, "period_seconds": round(period, 1)}
    periods = (now - times[-1]) / period
    if periods <= FRESH_PERIODS:
        score = 100
    elif periods >= STALE_PERIODS:
        score = 0
    else:
        score = round(100 * (STALE_PERIODS - periods) / (STALE_PERIODS - FRESH_PERIODS))
    return {"score": score, "last_data_age_seconds": round(now - times[-1], 1), "period_seconds": round(period, 1)}


def _alarms(open_alarms):
    counts = {severity: open_alarms.get(severity, 0) for severity in ALARM_COSTS}
    score = 100 - sum(ALARM_COSTS[severity] * n for severity, n in counts.items())
    return {"score": max(0, score), "open": counts}
