"""/v1/user/devices: register, list, show, edit, delete."""

import logging

from mpfleet.boards import catalog

from .. import credentials, keys, schemas
from ..bridge import BridgeUnavailable
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
        await _revoke(request, uid, lambda accounts: accounts.set_device_enabled(uid, changes["enabled"]),
                      clear_status=not changes["enabled"])
    return json_response({"data": payloads.device_detail(device, request.app[keys.MQTT_PUBLIC].port)})


async def delete_device(request):
    uid = request.match_info["uid"]
    await common.storage(request).devices.delete(common.user(request).id, uid)
    await _revoke(request, uid, lambda accounts: accounts.remove_device(uid), clear_status=True)
    return json_response({"message": "Device deleted.", "device_uid": uid})


async def _revoke(request, uid, change_account, *, clear_status):
    """Tell the broker, after the database: with the embedded broker a session cut before the
    row changed could reconnect at once and still pass authentication."""
    try:
        await change_account(request.app[keys.DEVICE_ACCOUNTS])
    except Exception:
        log.exception("broker did not apply the account change of %s", uid)
        raise ApiError(503, "Saved, but the MQTT broker did not confirm the change of the device's access.") from None
    if clear_status:
        try:
            await request.app[keys.BRIDGE].clear_status(uid)
        except BridgeUnavailable:
            log.warning("could not clear the retained status of %s: no broker session", uid)
