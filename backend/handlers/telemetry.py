"""/v1/user/devices/{uid}/telemetry: history and latest values (the names of seed 001)."""

from ..responses import json_response
from . import common, payloads

HISTORY_DEFAULT, HISTORY_MAX = 100, 1000


async def history(request):
    """?key= one key only; ?from= ?to= ISO 8601 or unix seconds; ?limit= newest first (default 100, ≤ 1000)."""
    device = await common.device(request)
    samples = await common.storage(request).telemetry.history(
        device,
        key=request.query.get("key") or None,
        since=common.time_query(request, "from"),
        until=common.time_query(request, "to"),
        limit=common.int_query(request, "limit", default=HISTORY_DEFAULT, low=1, high=HISTORY_MAX),
    )
    return json_response({"data": [payloads.sample(s) for s in samples]})


async def latest(request):
    """The newest value of every key: {"data": {"<key>": {"value", "ts"}}}."""
    device = await common.device(request)
    samples = await common.storage(request).telemetry.latest(device)
    return json_response({"data": {s.key: {"value": s.value, "ts": s.time} for s in samples}})
