"""Commands to a device: reboot, Wi-Fi reset, user-defined payloads, and their history (OTA: ota.py; to many
devices at once: bulk.py).

The service layer stores, paces and publishes them (service.py). A request is answered at once with
the command's state (`sent`, or `queued` behind earlier ones), or with `?wait=S` once the command is
final, or after S seconds with the state it has then. With `?ttl=S` an offline device is no refusal: the
command waits for it up to S seconds.
"""

from .. import schemas
from ..responses import json_response
from . import common, payloads

HISTORY_DEFAULT, HISTORY_MAX = 50, 500
WAIT_MAX = 30  # seconds a request may wait for its command's outcome


async def reboot(request):
    device = await common.device(request)
    return await deliver(request, device, "reboot", {}, "Reboot command sent.")


async def wifi_reset(request):
    device = await common.device(request)
    return await deliver(request, device, "wifi_reset", {}, "Wi-Fi reset command sent.")


async def send_command(request):
    device = await common.device(request)
    payload = schemas.command(await common.json_object(request))
    return await deliver(request, device, "custom", payload, "Command sent.")


async def deliver(request, device, type_, payload, message):
    """Send a command and answer with it; with ?wait=S, once it is final or S seconds have passed; with ?ttl=S,
    also to a device that is offline."""
    wait = common.int_query(request, "wait", default=0, low=0, high=WAIT_MAX)
    ttl = common.int_query(request, "ttl", default=None, low=1, high=schemas.TTL_MAX)
    service = common.service(request)
    command = await service.send_command(device, type_, payload, ttl=ttl)
    return command_sent(device, await service.outcome(device, command, wait), message)


def command_sent(device, command, message):
    """The seed's answer (message, device_uid), with the command's id, state, result and error."""
    return json_response({
        "message": message, "device_uid": device.uid,
        "id": command.id, "state": command.state, "result": command.result, "error": command.error,
    })


async def list_commands(request):
    device = await common.device(request)
    limit = common.int_query(request, "limit", default=HISTORY_DEFAULT, low=1, high=HISTORY_MAX)
    commands = await common.storage(request).commands.list(device, limit=limit)
    return json_response({"data": [payloads.command(c) for c in commands]})


async def show_command(request):
    device = await common.device(request)
    command = await common.storage(request).commands.get(device, request.match_info["command_id"])
    return json_response({"data": payloads.command(command)})
