"""/v1/user/devices: register, list (device_page: a group's devices too), show, edit, delete."""

from mpfleet.boards import catalog

from .. import jsonvalues, keys, schemas
from ..errors import ValidationError
from ..responses import json_response
from ..storage import NotFound
from ..storage.devices import DeviceFilter
from . import common, payloads


async def list_devices(request):
    """?status= &online= &platform= &board= &firmware= &search= &tag= &group= &sort= &limit= &offset=
    (schemas.device_list): the seed's compact list of one page, with `meta` {total, limit, offset}."""
    return await device_page(request)


async def device_page(request, **fixed):
    """The device list's answer for the query's filters, sort and page, and the filters `fixed` (DeviceFilter
    fields) that the path sets: those are no query parameters then. A `group` parameter the caller does not have
    is 422, as an unknown board is."""
    user_id = common.user(request).id
    filters, sort, descending = schemas.device_list(request.query, catalog(), fixed=fixed)
    limit = common.int_query(request, "limit", default=schemas.LIST_LIMIT_DEFAULT, low=1, high=schemas.LIST_LIMIT_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    if "group" in filters:
        try:
            await common.storage(request).groups.check_owner(user_id, filters["group"])
        except NotFound:
            raise ValidationError({"group": ["The selected group is invalid."]}) from None
    storage = common.storage(request)
    devices, total = await storage.devices.list(
        user_id, DeviceFilter(**filters, **fixed), sort=sort, descending=descending, limit=limit, offset=offset)
    ids = [d.id for d in devices]
    tags, groups = await storage.tags.of_devices(ids), await storage.groups.of_devices(ids)
    return json_response({"data": [payloads.device_compact(d, tags=tags.get(d.id, []), groups=groups.get(d.id, ()))
                                   for d in devices],
                          "meta": {"total": total, "limit": limit, "offset": offset}})


async def register_device(request):
    name, description, platform_key, board_key = schemas.device_registration(
        await common.json_object(request), catalog()
    )
    device, password = await common.service(request).register_device(
        common.user(request).id, name=name, description=description, platform_key=platform_key,
        board_key=board_key,
    )
    mqtt = request.app[keys.MQTT_PUBLIC]
    body = payloads.device_detail(device, mqtt.port, tags=[])
    body["mqtt"] = payloads.mqtt_credentials(device, password, mqtt)
    body["ota"] = payloads.ota_listener(request.app[keys.OTA_PUBLIC])
    return json_response({"data": body}, status=201)


async def show_device(request):
    return await _detail(request, await common.device(request))


async def update_device(request):
    changes = schemas.device_update(await common.json_object(request))
    device = await common.service(request).update_device(common.user(request).id, request.match_info["uid"], changes)
    return await _detail(request, device)


async def _detail(request, device):
    tags = await common.storage(request).tags.of_device(device)
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port, tags=tags)})


async def delete_device(request):
    uid = request.match_info["uid"]
    await common.service(request).delete_device(common.user(request).id, uid)
    return json_response({"message": "Device deleted.", "device_uid": uid})
