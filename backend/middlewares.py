"""Rate limits, authentication and the one place where every failure becomes a JSON answer.

In app.py's order: rate_limit (outermost: every answer carries its X-RateLimit-* headers, an error too), json_errors,
bearer_auth.
"""

import hashlib
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from . import keys
from .errors import ApiError, ValidationError
from .rate_limits import kind_of
from .service import BrokerUnavailable, DeviceUnavailable, MissingTarget, NotApplicable, ServiceError
from .responses import json_response
from .storage import Conflict, NotFound, User

log = logging.getLogger(__name__)

UNAUTHENTICATED = "Unauthenticated."
_PUBLIC_MARK = "mpfleet_public"  # the attribute public() sets on a handler
_QUERY_TOKEN_MARK = "mpfleet_query_token"  # the attribute token_in_query() sets
USER = web.RequestKey("user", User)  # the authenticated caller

# The HTTP status of each error of the service layer (service.py); its message is the API's text already.
_SERVICE_STATUS = {DeviceUnavailable: 409, MissingTarget: 422, NotApplicable: 422, BrokerUnavailable: 503}

# aiohttp's own HTTP errors, in our words.
_HTTP_MESSAGES = {
    400: "Bad request.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body is too large.",
}


@web.middleware
async def rate_limit(request, handler):
    """Count the request against its token's read or write limit (rate_limits.py): past it, 429 with Retry-After,
    before anything else is done; else the answer, with the X-RateLimit-* headers of what is left.

    A request is counted by the token it carries, valid or not (its hash: no token is kept in memory), else by the
    address it comes from. A limit of 0 (`mpfleet serve --rate-limit-read 0`) means none, and no headers."""
    token = _bearer_token(request.headers.get("Authorization", ""))
    key = "token:" + hashlib.sha256(token.encode()).hexdigest() if token else "address:" + str(request.remote)
    kind = kind_of(request.method)
    quota = request.app[keys.RATE_LIMITER].take(key, kind)
    if quota is None:
        return await handler(request)
    headers = {"X-RateLimit-Limit": str(quota.limit), "X-RateLimit-Remaining": str(quota.remaining),
               "X-RateLimit-Reset": str(quota.reset_at)}
    if not quota.allowed:
        headers["Retry-After"] = str(quota.retry_after)
        return _answer(429, f"Too many requests: this token may make {quota.limit} {kind} requests a minute; "
                       f"try again in {quota.retry_after} s.", headers=headers)
    response = await handler(request)
    if not response.prepared:  # (a streamed answer, a WebSocket, sent its headers already)
        response.headers.update(headers)
    return response


@web.middleware
async def json_errors(request, handler):
    try:
        return await handler(request)
    except ApiError as error:
        return _answer(error.status, error.message)
    except ValidationError as error:
        return _answer(422, error.message, errors=error.errors)
    except NotFound as error:
        return _answer(404, error.message)
    except Conflict as error:
        return _answer(409, error.message)
    except ServiceError as error:
        return _answer(_SERVICE_STATUS[type(error)], error.message)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return _answer(error.status, _HTTP_MESSAGES.get(error.status, error.reason), headers=headers)
    except (web.RequestPayloadError, HttpProcessingError):
        # A body that breaks HTTP itself (a chunk that is not one, a body cut short). The exception's
        # text quotes the request's bytes, so it is neither logged nor answered.
        return _answer(400, "The request body is malformed.")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _answer(500, "Server error.")


def public(handler):
    """Mark a route's handler as answering without a token (routes.py). Returns the handler."""
    setattr(handler, _PUBLIC_MARK, True)
    return handler


def token_in_query(handler):
    """Let a route's handler take its token from `?token=` too, when there is no Authorization header: a browser's
    WebSocket cannot send one (routes.py: the live events). Returns the handler."""
    setattr(handler, _QUERY_TOKEN_MARK, True)
    return handler


@web.middleware
async def bearer_auth(request, handler):
    """Every route needs `Authorization: Bearer <token>` of a known user unless its handler is public().

    A path that no route matches is not guarded: it answers 404 (or 405) as it would anyway.
    """
    match = request.match_info
    if match.http_exception is None and not getattr(match.handler, _PUBLIC_MARK, False):
        user = None
        token = _bearer_token(request.headers.get("Authorization", ""))
        if token is None and getattr(match.handler, _QUERY_TOKEN_MARK, False):
            token = _bearer_token("Bearer " + request.query.get("token", ""))
        if token is not None:
            user = await request.app[keys.STORAGE].users.for_token(token)
        if user is None:
            return _answer(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
        request[USER] = user
    return await handler(request)


def _bearer_token(header):
    """The token of `Bearer <token>`, or None. A token is printable ASCII (ours are `mpf_` + base64url):
    anything else, bytes that are not UTF-8 among them, is no token at all."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not (token.isascii() and token.isprintable()):
        return None
    return token


def _answer(status, message, *, errors=None, headers=None):
    body = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status=status, headers=headers)
