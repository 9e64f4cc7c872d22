"""/v1/user/groups: groups of the caller's devices; create, list, show, edit, delete, and their devices (added
several at once, removed one by one, listed as the device list lists, with its filters, sort and pages)."""

from .. import jsonvalues, schemas
from ..responses import json_response
from ..storage import NotFound
from ..storage.groups import NOT_FOUND
from . import common, payloads
from .devices import device_page


async def list_groups(request):
    groups = await common.storage(request).groups.list(common.user(request).id)
    return json_response({"data": [payloads.group(g) for g in groups]})


async def create_group(request):
    name, description = schemas.new_group(await common.json_object(request))
    group = await common.storage(request).groups.create(common.user(request).id, name, description,
                                                        most=schemas.GROUPS_PER_USER)
    return json_response({"data": payloads.group(group)}, status=201)


async def show_group(request):
    group = await common.storage(request).groups.get(common.user(request).id, _group_id(request))
    return json_response({"data": payloads.group(group)})


async def update_group(request):
    changes = schemas.group_update(await common.json_object(request))
    group = await common.storage(request).groups.update(common.user(request).id, _group_id(request), changes)
    return json_response({"data": payloads.group(group)})


async def delete_group(request):
    await common.service(request).configuration.delete_group(common.user(request).id, _group_id(request))
    return json_response({"message": "Group deleted."})


async def add_devices(request):
    """{uids: [...]}: all or none; uids that are no device of the caller are 404 naming them, nothing added (as
    set-target's md5 that names no firmware is 404), and so is a device the group's settings would give too many
    (422). The new members whose settings change get them (configuration.py)."""
    group_id = _group_id(request)
    uids = schemas.group_devices(await common.json_object(request))
    group = await common.service(request).configuration.add_to_group(common.user(request).id, group_id, uids)
    return json_response({"message": "Devices added to the group.", "data": payloads.group(group)})


async def remove_device(request):
    group = await common.service(request).configuration.remove_from_group(common.user(request).id, _group_id(request),
                                                                          request.match_info["uid"])
    return json_response({"message": "Device removed from the group.", "data": payloads.group(group)})


async def list_group_devices(request):
    """The device list of the group's devices (its `group` filter set by the path)."""
    group_id = _group_id(request)
    await common.storage(request).groups.check_owner(common.user(request).id, group_id)
    return await device_page(request, group=group_id)


def _group_id(request):
    """The {group_id} of the path (the route matches digits only). Raises NotFound beyond what an id can be."""
    group_id = int(request.match_info["group_id"])
    if not 0 < group_id <= jsonvalues.MAX_NUMBER:
        raise NotFound(NOT_FOUND)
    return group_id
