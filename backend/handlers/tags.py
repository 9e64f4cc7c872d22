"""Tags: a device's (/v1/user/devices/{uid}/tags: list, add several, remove one) and the user's with their counts
(/v1/user/tags)."""

from .. import schemas
from ..responses import json_response
from . import common


async def list_device_tags(request):
    device = await common.device(request)
    return json_response({"data": await common.storage(request).tags.of_device(device)})


async def add_device_tags(request):
    """{tags: [...]}: those the device has already are no error. Answers every tag it has then."""
    device = await common.device(request)
    tags = schemas.device_tags(await common.json_object(request))
    now = await common.storage(request).tags.add(device, tags, check=schemas.tag_totals)
    return json_response({"message": "Tags added.", "device_uid": device.uid, "data": now})


async def remove_device_tag(request):
    device = await common.device(request)
    left = await common.storage(request).tags.remove(device, request.match_info["tag"])
    return json_response({"message": "Tag removed.", "device_uid": device.uid, "data": left})


async def list_tags(request):
    counts = await common.storage(request).tags.counts(common.user(request).id)
    return json_response({"data": [{"tag": tag, "device_count": count} for tag, count in counts]})
