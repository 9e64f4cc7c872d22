"""What every handler needs: the caller, its device, and a JSON body."""

import math
from datetime import datetime, timezone

from .. import jsonvalues, keys, schemas
from ..errors import ApiError, ValidationError
from ..middlewares import USER
from ..service import BrokerUnavailable, DeviceUnavailable, MissingTarget, ServiceError

# The HTTP status of each error of the service layer; its message is the API's text already.
_SERVICE_STATUS = {DeviceUnavailable: 409, MissingTarget: 422, BrokerUnavailable: 503}


def storage(request):
    return request.app[keys.STORAGE]


def service(request):
    return request.app[keys.SERVICE]


async def call(flow):
    """Await `flow`, a call of the service layer; its errors become their HTTP answers (ApiError)."""
    try:
        return await flow
    except ServiceError as error:
        raise ApiError(_SERVICE_STATUS[type(error)], error.message) from None


def settings(request):
    return request.app[keys.SETTINGS]


def user(request):
    return request[USER]


async def device(request):
    """The caller's device named by {uid} in the path. Raises NotFound for anyone else's."""
    return await storage(request).devices.get(user(request).id, request.match_info["uid"])


async def json_object(request):
    """The body as a JSON object whose fields keep the rule of jsonvalues.py.

    Raises ApiError 400 when it is not a JSON object (JSON too deep to parse included), ValidationError
    naming the fields that break the rule.
    """
    raw = await request.read()
    try:
        body = jsonvalues.loads(raw)
    except jsonvalues.NotJson:
        raise ApiError(400, "The request body must be valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    schemas.json_rule(body)
    return body


def int_query(request, name, *, default, low, high):
    """An integer query parameter within [low, high]. Raises ValidationError."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        message = f"The {name} parameter must be an integer from {low} to {high}."
        raise ValidationError({name: [message]})
    return value


def time_query(request, name):
    """A time query parameter, ISO 8601 or unix seconds → unix seconds, or None. Raises ValidationError."""
    raw = request.query.get(name)
    if not raw:
        return None
    invalid = ValidationError({name: [f"The {name} parameter must be ISO 8601 or unix seconds."]})
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
        raise invalid
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
