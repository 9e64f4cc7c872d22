"""/v1/user/devices: register, list, show, edit, delete."""

from mpfleet.boards import catalog

from .. import jsonvalues, keys, schemas
from ..responses import json_response
from ..storage.devices import DeviceFilter
from . import common, payloads


async def list_devices(request):
    """?status= &online= &platform= &board= &firmware= &search= &sort= &limit= &offset= (schemas.device_list):
    the seed's compact list of one page, with `meta` {total, limit, offset}."""
    filters, sort, descending = schemas.device_list(request.query, catalog())
    limit = common.int_query(request, "limit", default=schemas.LIST_LIMIT_DEFAULT, low=1, high=schemas.LIST_LIMIT_MAX)
    offset = common.int_query(request, "offset", default=0, low=0, high=jsonvalues.MAX_NUMBER)
    devices, total = await common.storage(request).devices.list(
        common.user(request).id, DeviceFilter(**filters), sort=sort, descending=descending, limit=limit, offset=offset)
    return json_response({"data": [payloads.device_compact(d) for d in devices],
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
    body = payloads.device_detail(device, mqtt.port)
    body["mqtt"] = payloads.mqtt_credentials(device, password, mqtt)
    body["ota"] = payloads.ota_listener(request.app[keys.OTA_PUBLIC])
    return json_response({"data": body}, status=201)


async def show_device(request):
    device = await common.device(request)
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port)})


async def update_device(request):
    changes = schemas.device_update(await common.json_object(request))
    device = await common.service(request).update_device(common.user(request).id, request.match_info["uid"], changes)
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port)})


async def delete_device(request):
    uid = request.match_info["uid"]
    await common.service(request).delete_device(common.user(request).id, uid)
    return json_response({"message": "Device deleted.", "device_uid": uid})
