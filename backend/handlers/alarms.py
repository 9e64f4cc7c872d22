"""/v1/user/alarms: the caller's alarms, listed (filtered, one page at a time) and shown with their timeline;
acknowledged and resolved (alarms.py; docs/api.md, Alarms and notifications)."""

from .. import alarm_schemas, jsonvalues, keys
from ..alarms import alarm_payload, entry_payload
from ..responses import json_response
from ..storage import NotFound
from ..storage.alarms import NOT_FOUND
from . import common


def alarms(request):
    """The alarm service (alarms.py)."""
    return request.app[keys.ALARMS]


def path_id(request, name, not_found):
    """The integer {name} of the path (its route matches digits only). Raises NotFound(not_found) beyond what an id
    can be."""
    value = int(request.match_info[name])
    if not 0 < value <= jsonvalues.MAX_NUMBER:
        raise NotFound(not_found)
    return value


async def list_alarms(request):
    """?status= &severity= &device= &rule= &limit= &offset=: newest first, with `meta` {total, limit, offset}."""
    filters = alarm_schemas.alarm_query(request.query)
    limit = common.int_query(request, "limit", default=alarm_schemas.ALARM_PAGE_DEFAULT, low=1,
                             high=alarm_schemas.ALARM_PAGE_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    found, total = await common.storage(request).alarms.list(common.user(request).id, **filters, limit=limit,
                                                             offset=offset)
    return json_response({"data": [alarm_payload(a) for a in found],
                          "meta": {"total": total, "limit": limit, "offset": offset}})


async def show_alarm(request):
    alarm = await common.storage(request).alarms.get(common.user(request).id, path_id(request, "alarm_id", NOT_FOUND))
    return json_response({"data": await _detail(request, alarm)})


async def acknowledge_alarm(request):
    """{note?} (the body may be left out): active → acknowledged."""
    alarm_id, note = path_id(request, "alarm_id", NOT_FOUND), await _note(request)
    alarm = await alarms(request).acknowledge(common.user(request).id, alarm_id, note)
    return json_response({"message": "Alarm acknowledged.", "data": await _detail(request, alarm)})


async def resolve_alarm(request):
    """{note?} (the body may be left out): active or acknowledged → resolved."""
    alarm_id, note = path_id(request, "alarm_id", NOT_FOUND), await _note(request)
    alarm = await alarms(request).resolve(common.user(request).id, alarm_id, note)
    return json_response({"message": "Alarm resolved.", "data": await _detail(request, alarm)})


async def _note(request):
    return alarm_schemas.note(await common.json_object(request)) if request.body_exists else None


async def _detail(request, alarm):
    timeline = await common.storage(request).alarms.timeline(alarm)
    return {**alarm_payload(alarm), "timeline": [entry_payload(e) for e in timeline]}
