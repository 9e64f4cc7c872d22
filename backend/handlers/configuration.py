"""Desired configuration (docs/api.md, Configuration): a device's (/v1/user/devices/{uid}/configuration: what its
board should run with, what it reported, whether the two agree) and a group's (/v1/user/groups/{id}/configuration:
settings for its members, which a device's own override)."""

from .. import config_schemas
from ..configuration import as_json
from ..responses import json_response
from . import common
from .groups import _group_id


async def show_device_configuration(request):
    device = await common.device(request)
    return json_response({"data": as_json(await _flow(request).of_device(device))})


async def set_device_configuration(request):
    """{settings: {...}} replaces the device's own settings whole ({} removes them); its board gets the effective
    ones retained, now or when it is back."""
    device = await common.device(request)
    settings = config_schemas.settings(await common.json_object(request))
    return json_response({"data": as_json(await _flow(request).set_device(device, settings))})


async def show_group_configuration(request):
    settings = await _flow(request).of_group(common.user(request).id, _group_id(request))
    return json_response({"data": {"settings": settings}})


async def set_group_configuration(request):
    """{settings: {...}} replaces the group's settings whole; each member whose effective settings change gets
    them."""
    group_id = _group_id(request)
    settings = config_schemas.settings(await common.json_object(request))
    settings = await _flow(request).set_group(common.user(request).id, group_id, settings)
    return json_response({"data": {"settings": settings}})


def _flow(request):
    return common.service(request).configuration
