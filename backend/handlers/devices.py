"""/v1/user/devices: register, list, show, edit, delete."""


from mpfleet.boards import catalog

from .. import credentials, schemas
from ..responses import json_response
from . import common, payloads


async def list_devices(request):
    devices = await common.storage(request).devices.list(common.user(request).id)
    return json_response({"data": [payloads.device_compact(d) for d in devices]})


async def register_device(request):
    name, description, platform_key, board_key = schemas.device_registration(
        await common.json_object(request), catalog()
    )
    password = credentials.new_device_password()
    device = await common.storage(request).devices.create(
        common.user(request).id,
        name=name,
        description=description,
        platform_key=platform_key,
        board_key=board_key,
        password=password,
    )
    settings = common.settings(request)
    body = payloads.device_detail(device, settings)
    body["mqtt"] = payloads.mqtt_credentials(device, password, settings, _ca_cert(settings))
    return json_response({"data": body}, status=201)


async def show_device(request):
    device = await common.device(request)
    return json_response({"data": payloads.device_detail(device, common.settings(request))})


async def update_device(request):
    changes = schemas.device_update(await common.json_object(request))
    device = await common.storage(request).devices.update(
        common.user(request).id, request.match_info["uid"], changes
    )
    return json_response({"data": payloads.device_detail(device, common.settings(request))})


async def delete_device(request):
    uid = request.match_info["uid"]
    await common.storage(request).devices.delete(common.user(request).id, uid)
    return json_response({"message": "Device deleted.", "device_uid": uid})


def _ca_cert(settings):
    """The PEM of the CA that signed the broker's certificate, once the broker has made one."""
    path = settings.data_dir / "tls" / "ca.pem"
    return path.read_text() if path.exists() else None
