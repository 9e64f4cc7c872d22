"""/v1/user/commands: one command to many of the caller's devices at once (a bulk job), and how it went on each."""

from mpfleet.boards import catalog

from .. import jsonvalues, schemas
from ..errors import ValidationError
from ..responses import json_response
from ..storage import NotFound
from ..storage.bulk import STATES, BulkRequest
from ..storage.devices import DeviceFilter
from . import common


async def send_bulk(request):
    """{target, command, ttl?} (schemas.bulk_command) → 202 with the job at once, while its commands are published
    (the target's group checked by target_filters)."""
    fields = schemas.bulk_command(await common.json_object(request), catalog())
    bulk = BulkRequest(**{**fields, "filters": await target_filters(request, fields)})
    job = await common.service(request).send_bulk(common.user(request).id, bulk)
    return json_response({"data": _job(job)}, status=202)


async def target_filters(request, fields):
    """The DeviceFilter of a validated target (`fields`: schemas.bulk_command's, or an OTA campaign's), None for
    uids, once the caller is known to have its group: a target group they do not have is 404 (as uids that are no
    device of theirs), a group in a target's filter 422 (as the device list's `group` is)."""
    group = (fields["filters"] or {}).get("group")
    if group is not None:
        try:
            await common.storage(request).groups.check_owner(common.user(request).id, group)
        except NotFound:
            if fields["target"]["type"] == "group":
                raise
            raise ValidationError({"target.filter.group": ["The selected target.filter.group is invalid."]}) from None
    return None if fields["filters"] is None else DeviceFilter(**fields["filters"])


async def show_bulk(request):
    """?state= &limit= &offset=: the job with its counts and one page of its devices (those of `state` only, when
    given), in the job's order, with `meta` {total, limit, offset} as the device list's."""
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise ValidationError({"state": ["The selected state is invalid."]})
    limit = common.int_query(request, "limit", default=schemas.BULK_PAGE_DEFAULT, low=1, high=schemas.BULK_PAGE_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    jobs = common.storage(request).bulk
    job = await jobs.get(common.user(request).id, request.match_info["bulk_id"])
    devices, total = await jobs.devices(job, state=state, limit=limit, offset=offset)
    return json_response({"data": {**_job(job), "devices": [_device(d) for d in devices]},
                          "meta": {"total": total, "limit": limit, "offset": offset}})


def _job(job):
    """A job as the API shows it (payloads.py's style: every field present)."""
    return {
        "id": job.id,
        "command": job.command,
        "target": job.target,
        "ttl": job.ttl,
        "created_at": job.created_at,
        "device_count": job.device_count,
        "counts": job.counts,
        "finished": job.finished,
    }


def _device(d):
    return {"uid": d.uid, "state": d.state, "command_id": d.command_id, "result": d.result, "error": d.error}
