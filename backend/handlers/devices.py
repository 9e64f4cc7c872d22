"""/v1/user/devices: register, list, show, edit, delete."""

import logging

from mpfleet.boards import catalog

from .. import credentials, keys, schemas
from ..bridge import BridgeUnavailable
from ..broker.accounts import apply_access_change
from ..errors import ApiError
from ..responses import json_response
from . import common, payloads

log = logging.getLogger(__name__)


async def list_devices(request):
    devices = await common.storage(request).devices.list(common.user(request).id)
    return json_response({"data": [payloads.device_compact(d) for d in devices]})


async def register_device(request):
    name, description, platform_key, board_key = schemas.device_registration(
        await common.json_object(request), catalog()
    )
    password = credentials.new_device_password()
    storage = common.storage(request)
    user_id = common.user(request).id
    device = await storage.devices.create(
        user_id, name=name, description=description, platform_key=platform_key, board_key=board_key,
        password=password,
    )
    try:
        await request.app[keys.DEVICE_ACCOUNTS].add_device(device.uid, password)
    except Exception:
        log.exception("broker refused the account of %s", device.uid)
        await storage.devices.delete(user_id, device.uid)
        raise ApiError(503, "The MQTT broker could not create the device's account; nothing was registered.") from None
    mqtt = request.app[keys.MQTT_PUBLIC]
    body = payloads.device_detail(device, mqtt.port)
    body["mqtt"] = payloads.mqtt_credentials(device, password, mqtt)
    return json_response({"data": body}, status=201)


async def show_device(request):
    device = await common.device(request)
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port)})


async def update_device(request):
    changes = schemas.device_update(await common.json_object(request))
    uid = request.match_info["uid"]
    device = await common.storage(request).devices.update(common.user(request).id, uid, changes)
    if "enabled" in changes:
        await _change_access(request, uid, "enable" if changes["enabled"] else "disable")
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port)})


async def delete_device(request):
    uid = request.match_info["uid"]
    await common.storage(request).devices.delete(common.user(request).id, uid)
    await _change_access(request, uid, "remove")
    return json_response({"message": "Device deleted.", "device_uid": uid})


async def _change_access(request, uid, change):
    """Tell the broker, after the database: with the embedded broker a session cut before the
    row changed could reconnect at once and still pass authentication. A change the broker does
    not confirm is kept and retried by maintenance.py until it does."""
    storage = common.storage(request)
    try:
        await apply_access_change(request.app[keys.DEVICE_ACCOUNTS], uid, change)
    except Exception as error:
        log.exception("broker did not apply the access change %s of %s; it will be retried", change, uid)
        await storage.access.remember(uid, change, error)
        raise ApiError(503, "Saved, but the MQTT broker has not confirmed the change of the device's access yet;"
                            " it is retried until it does.") from None
    await storage.access.forget(uid)  # an older change still waiting would undo this one
    if change != "enable":
        try:
            await request.app[keys.BRIDGE].clear_status(uid)
        except BridgeUnavailable:
            log.warning("could not clear the retained status of %s: no broker session", uid)
