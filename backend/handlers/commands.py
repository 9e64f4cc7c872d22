"""Commands to a device: reboot, Wi-Fi reset, OTA trigger, user-defined payloads.

Delivery over MQTT comes with the broker bridge; until a device is online the
answer is the seed's validation-style refusal, and nothing is queued.
"""

from .. import schemas
from ..errors import ApiError
from . import common

OFFLINE = "Device is offline."
DISABLED = "Device is disabled."
NO_TARGET = "Assign firmware first to trigger OTA."

async def reboot(request):
    device = await common.device(request)
    return await deliver(request, device, "reboot", {}, "Reboot command sent.")

async def wifi_reset(request):
    device = await common.device(request)
    return await deliver(request, device, "wifi_reset", {}, "Wi-Fi reset command sent.")

async def trigger_ota(request):
    device = await common.device(request)
    if device.target_firmware is None:
        raise ApiError(422, NO_TARGET)
    return await deliver(request, device, "ota", {"md5": device.target_firmware.md5}, "OTA check triggered.")

async def send_command(request):
    device = await common.device(request)
    payload = schemas.command(await common.json_object(request))
    return await deliver(request, device, "custom", payload, "Command sent.")

async def deliver(request, device, kind, payload, message):
    """Hand a command to the device, or refuse with 409 when it cannot take one now."""
    if device.status == "disabled":
        raise ApiError(409, DISABLED)
    if not device.is_online:
        raise ApiError(409, OFFLINE)
    raise ApiError(503, "Command delivery is not available: no MQTT bridge is running.")
