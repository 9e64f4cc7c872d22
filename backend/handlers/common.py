"""What every handler needs: the caller, its device, and a JSON body."""

import json

from .. import keys
from ..errors import ApiError
from ..middlewares import USER


def storage(request):
    return request.app[keys.STORAGE]


def settings(request):
    return request.app[keys.SETTINGS]


def user(request):
    return request[USER]


async def device(request):
    """The caller's device named by {uid} in the path. Raises NotFound for anyone else's."""
    return await storage(request).devices.get(user(request).id, request.match_info["uid"])


async def json_object(request):
    """The body as a JSON object. Raises ApiError 400 when it is not one."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "The request body must be valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body
