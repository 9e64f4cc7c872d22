"""What every handler needs: the caller, its device, and a JSON body."""

import re
from datetime import datetime

from .. import jsonvalues, keys, schemas
from ..errors import ApiError, ValidationError
from ..middlewares import USER

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")  # JSON's number grammar
_DATE_TIME = re.compile(  # RFC 3339's date-time: date, `T`, time, fraction, offset
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")
_EPOCH = datetime(1970, 1, 1)


def storage(request):
    return request.app[keys.STORAGE]


def service(request):
    return request.app[keys.SERVICE]


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
    """An integer query parameter within [low, high], in ASCII digits as OpenAPI's integer is written
    (int() would take " 5", "5_0" and other scripts' digits too). Raises ValidationError."""
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw) if _INTEGER.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        message = f"The {name} parameter must be an integer from {low} to {high}."
        raise ValidationError({name: [message]})
    return value


def bool_query(request, name, *, default):
    """A boolean query parameter: `true` or `false`, as OpenAPI's boolean is written. Raises ValidationError."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise ValidationError({name: [f"The {name} parameter must be true or false."]})
    return raw == "true"


def time_query(request, name):
    """A time query parameter → unix seconds, or None when absent. Raises ValidationError.

    Either unix seconds, a JSON number within the JSON-value rule, or an RFC 3339 date-time (ISO 8601
    with its offset, `2026-04-16T10:25:00Z`): exactly what openapi.py says, so a value is accepted
    here if and only if the document allows it.
    """
    raw = request.query.get(name)
    if raw is None:
        return None
    if _NUMBER.fullmatch(raw):
        seconds = int(raw) if _INTEGER.fullmatch(raw) else float(raw)  # exact against the bounds
        if jsonvalues.is_number(seconds):
            return float(seconds)
    elif _DATE_TIME.fullmatch(raw):
        try:
            moment = datetime.fromisoformat(raw.upper())  # RFC 3339 allows `t` and `z`; Python wants capitals
        except ValueError:  # no such date or time (a 30th of February, an hour 25)
            pass
        else:
            # On timedeltas only: 9999-12-31T23:59:59-23:59 in UTC is beyond what a datetime holds.
            return (moment.replace(tzinfo=None) - _EPOCH - moment.utcoffset()).total_seconds()
    raise ValidationError({name: [f"The {name} parameter must be an RFC 3339 date-time or unix seconds."]})
