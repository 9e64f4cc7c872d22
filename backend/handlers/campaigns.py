"""/v1/user/campaigns: OTA campaigns, one firmware to many of the caller's devices in waves (campaigns.py), each
device's OTA job, and pause / resume / cancel."""

from mpfleet.boards import catalog

from .. import jsonvalues, keys, schemas
from ..errors import ValidationError
from ..responses import json_response
from ..storage.campaigns import DEVICE_STATES, STATES
from . import bulk, common


def _campaigns(request):
    return request.app[keys.CAMPAIGNS]


async def create_campaign(request):
    """{name, md5, target, wave_size | wave_percent, pause_seconds?, max_failure_percent?} (schemas.new_campaign) →
    201 with the campaign, its first wave starting (the target's group checked as a bulk command's)."""
    fields = schemas.new_campaign(await common.json_object(request), catalog())
    fields["filters"] = await bulk.target_filters(request, fields)
    campaign = await _campaigns(request).create(common.user(request).id, fields)
    return await _answer(request, campaign, status=201)


async def list_campaigns(request):
    """?state= &limit= &offset=: a page of the caller's campaigns, newest first, with `meta` {total, limit, offset}."""
    state = _choice(request, "state", STATES)
    limit = common.int_query(request, "limit", default=schemas.CAMPAIGN_PAGE_DEFAULT, low=1,
                             high=schemas.CAMPAIGN_PAGE_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    campaigns, total = await common.storage(request).campaigns.list(
        common.user(request).id, state=state, limit=limit, offset=offset)
    return json_response({"data": [_campaign(c) for c in campaigns],
                          "meta": {"total": total, "limit": limit, "offset": offset}})


async def show_campaign(request):
    """The campaign with its counts and its waves."""
    campaign = await common.storage(request).campaigns.get(common.user(request).id, request.match_info["campaign_id"])
    return await _answer(request, campaign)


async def list_campaign_devices(request):
    """?state= &wave= &limit= &offset=: a page of the campaign's devices in its order (uid, wave, job id, state,
    error), with `meta` as the device list's."""
    state = _choice(request, "state", DEVICE_STATES)
    wave = common.int_query(request, "wave", default=None, low=1, high=schemas.CAMPAIGN_MAX_WAVES)
    limit = common.int_query(request, "limit", default=schemas.BULK_PAGE_DEFAULT, low=1, high=schemas.BULK_PAGE_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    campaigns = common.storage(request).campaigns
    campaign = await campaigns.get(common.user(request).id, request.match_info["campaign_id"])
    members, total = await campaigns.devices(campaign, state=state, wave=wave, limit=limit, offset=offset)
    return json_response({"data": [_member(m) for m in members],
                          "meta": {"total": total, "limit": limit, "offset": offset}})


async def pause_campaign(request):
    campaign = await _campaigns(request).pause(common.user(request).id, request.match_info["campaign_id"])
    return await _answer(request, campaign, message="Campaign paused.")


async def resume_campaign(request):
    campaign = await _campaigns(request).resume(common.user(request).id, request.match_info["campaign_id"])
    return await _answer(request, campaign, message="Campaign resumed.")


async def cancel_campaign(request):
    campaign = await _campaigns(request).cancel(common.user(request).id, request.match_info["campaign_id"])
    return await _answer(request, campaign, message="Campaign cancelled.")


def _choice(request, name, allowed):
    """A query parameter that must be one of `allowed`, or None. Raises ValidationError."""
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise ValidationError({name: [f"The selected {name} is invalid."]})
    return value


async def _answer(request, campaign, *, status=200, message=None):
    """{"message"?, "data": the campaign with its waves}."""
    waves = await common.storage(request).campaigns.waves(campaign)
    data = {**_campaign(campaign), "waves": [_wave(w) for w in waves]}
    return json_response({"data": data} if message is None else {"message": message, "data": data}, status=status)


def _campaign(c):
    """A campaign as the API shows it (payloads.py's style: every field present)."""
    return {
        "id": c.id, "name": c.name, "md5": c.md5, "target": c.target,
        "wave_size": c.wave_size, "wave_percent": c.wave_percent, "pause_seconds": c.pause_seconds,
        "max_failure_percent": c.max_failure_percent, "state": c.state, "reason": c.reason,
        "wave": c.wave, "wave_count": c.wave_count, "device_count": c.device_count, "counts": c.counts,
        "attempted": c.attempted, "failures": c.failures,
        "created_at": c.created_at, "updated_at": c.updated_at, "ended_at": c.ended_at,
    }


def _wave(w):
    return {"number": w.number, "size": w.size, "started_at": w.started_at, "final_at": w.final_at,
            "counts": w.counts}


def _member(m):
    return {"uid": m.uid, "wave": m.wave or None, "job_id": m.job_id, "state": m.state, "error": m.error}
