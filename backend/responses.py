"""JSON answers, encoded with orjson: on a list of 50 devices the stdlib encoder was a tenth of the request."""

import orjson
from aiohttp import web


def json_response(data, *, status=200, headers=None):
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")
