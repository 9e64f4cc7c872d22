"""Commands to a device: reboot, Wi-Fi reset, OTA trigger, user-defined payloads, and their history.

Each accepted command is stored (state `sent`) before it is published, then moved
by the device's acks (docs/protocol.md). A device that cannot take a command now
gets the seed's validation-style refusal, and nothing is stored or published.
"""

from .. import keys, schemas
from ..bridge import BridgeUnavailable
from ..errors import ApiError
from ..responses import json_response
from . import common, payloads

OFFLINE = "Device is offline."
DISABLED = "Device is disabled."
NO_TARGET = "Assign firmware first to trigger OTA."
NO_BROKER = "The MQTT broker cannot be reached; the command was not sent."
_HISTORY_DEFAULT, _HISTORY_MAX = 50, 500


async def reboot(request):
    device = await common.device(request)
    return await deliver(request, device, "reboot", {}, "Reboot command sent.")


async def wifi_reset(request):
    device = await common.device(request)
    return await deliver(request, device, "wifi_reset", {}, "Wi-Fi reset command sent.")


async def trigger_ota(request):
    device = await common.device(request)
    target = device.target_firmware
    if target is None:
        raise ApiError(422, NO_TARGET)
    payload = {"md5": target.md5, "size": target.size, "version": target.version}
    return await deliver(request, device, "ota", payload, "OTA check triggered.")


async def send_command(request):
    device = await common.device(request)
    payload = schemas.command(await common.json_object(request))
    return await deliver(request, device, "custom", payload, "Command sent.")


async def deliver(request, device, type_, payload, message):
    """Store and publish a command, or refuse with 409 when the device cannot take one now."""
    if device.status == "disabled":
        raise ApiError(409, DISABLED)
    if not device.is_online:
        raise ApiError(409, OFFLINE)
    bridge = request.app[keys.BRIDGE]
    if not bridge.connected:
        raise ApiError(503, NO_BROKER)
    commands = common.storage(request).commands
    command = await commands.create(device, type_, payload, timeout=common.settings(request).command_timeout)
    try:
        await bridge.send_command(device.uid, command)
    except BridgeUnavailable as error:
        await commands.fail(command.id, f"not published: {error}")
        raise ApiError(503, NO_BROKER) from None
    return json_response({"message": message, "device_uid": device.uid, "id": command.id})


async def list_commands(request):
    device = await common.device(request)
    limit = common.int_query(request, "limit", default=_HISTORY_DEFAULT, low=1, high=_HISTORY_MAX)
    commands = await common.storage(request).commands.list(device, limit=limit)
    return json_response({"data": [payloads.command(c) for c in commands]})


async def show_command(request):
    device = await common.device(request)
    command = await common.storage(request).commands.get(device, request.match_info["command_id"])
    return json_response({"data": payloads.command(command)})
