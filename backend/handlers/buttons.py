"""/v1/user/devices/{uid}/command-buttons: saved command payloads."""


from .. import schemas
from ..responses import json_response
from ..storage import Button
from . import commands, common, payloads


async def list_buttons(request):
    device = await common.device(request)
    buttons = await common.storage(request).buttons.list(device)
    return json_response({"data": [payloads.button(b) for b in buttons]})


async def create_button(request):
    device = await common.device(request)
    button = Button(*schemas.command_button(await common.json_object(request)))
    await common.storage(request).buttons.create(device, button)
    return json_response(
        {"message": "Command button created.", "device_uid": device.uid, "data": payloads.button(button)},
        status=201,
    )


async def delete_button(request):
    device = await common.device(request)
    await common.storage(request).buttons.delete(device, request.match_info["button_id"])
    return json_response({"message": "Command button deleted.", "device_uid": device.uid})


async def send_button(request):
    device = await common.device(request)
    button = await common.storage(request).buttons.get(device, request.match_info["button_id"])
    return await commands.deliver(request, device, "custom", button.payload, "Command sent.")
