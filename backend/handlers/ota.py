"""/v1/user/devices/{uid}/ota: start an OTA job (an `ota` command), and see the current or every job.

The download itself is on the device listener (device_http.py), never here.
"""

from ..responses import json_response
from . import commands, common, payloads


async def trigger_ota(request):
    device = await common.device(request)
    command = await common.service(request).trigger_ota(device)
    return commands.command_sent(device, command, "OTA check triggered.")


async def show_jobs(request):
    """The newest job (or null); with ?all=true every job, newest first."""
    device = await common.device(request)
    every = common.bool_query(request, "all", default=False)
    storage = common.storage(request)
    jobs = await storage.ota.list(device) if every else [job for job in [await storage.ota.latest(device)] if job]
    if not jobs:
        return json_response({"data": [] if every else None})
    firmwares = {fw.id: fw for fw in await storage.firmwares.list(device)}
    shown = [payloads.ota_job(job, firmwares) for job in jobs]
    return json_response({"data": shown if every else shown[0]})
