"""The HTTP server around the app: what aiohttp answers itself is JSON too, and says nothing of the request.

A request aiohttp cannot parse (a bad request line, a header with a NUL byte, a header over 8 KB, a
chunk that is not one) never reaches the app's middlewares (middlewares.py): the server answers it in
`RequestHandler.handle_error`. aiohttp's own answers that in text/plain with the parser's message,
which quotes the offending bytes, an `Authorization: Bearer <token>` line whole, and logs the same text
at ERROR. JsonErrorsRequestHandler answers `{"message"}` and logs one line: the peer and the kind of
error, never the request's bytes.

`AppRunner` runs an app with it (tools/serve.py; the tests' servers use it too). aiohttp offers no
public hook for this: the runner hands the app's server on to JsonErrorsServer, which makes the
connections' handlers of that class with the arguments aiohttp gave its own.
"""

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError, LineTooLong, PayloadEncodingError
from aiohttp.web_protocol import RequestHandler

from .responses import json_response

log = logging.getLogger(__name__)

# The answer to each kind of request the parser refuses, most specific first. None quotes the request.
_PARSE_ERRORS = (
    (LineTooLong, "The request line or a header is too long."),
    (BadStatusLine, "The request line is malformed."),
    (PayloadEncodingError, "The request body is malformed."),
    (HttpProcessingError, "The request headers are malformed."),
)
_STATUS_MESSAGES = {500: "Server error.", 504: "The request took too long."}


def _parse_error_message(error):
    return next((message for kind, message in _PARSE_ERRORS if isinstance(error, kind)), "Bad request.")


class JsonErrorsRequestHandler(RequestHandler):
    def handle_error(self, request, status=500, exc=None, message=None):
        """The answer to a request the app could not be asked about (aiohttp's docstring: it always
        closes the connection). `message` is aiohttp's text, quoting the request: not used."""
        if isinstance(exc, HttpProcessingError):
            # A client's mistake, not the server's: one line, without the exception's text.
            log.info("unparsable HTTP request from %s: %s", request.remote, type(exc).__name__)
            text = _parse_error_message(exc)
        else:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            text = _STATUS_MESSAGES.get(status, "Server error.")
        if request.writer.output_size > 0:  # as aiohttp: a response has begun, the connection is broken
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = json_response({"message": text}, status=status)
        response.force_close()
        return response


class JsonErrorsServer(web.Server):
    """aiohttp's Server, whose connections are handled by JsonErrorsRequestHandler."""

    @classmethod
    def like(cls, server):
        """A server with the handler, request factory and handler arguments of `server` (aiohttp's)."""
        return cls(server.request_handler, request_factory=server.request_factory,
                   handler_cancellation=server.handler_cancellation, **server._kwargs)

    def __call__(self):
        # What web.Server.__call__ does, with our class.
        return JsonErrorsRequestHandler(self, loop=asyncio.get_running_loop(), **self._kwargs)


class AppRunner(web.AppRunner):
    """web.AppRunner whose server answers its own errors as JSON (see the module docstring)."""

    async def _make_server(self):
        return JsonErrorsServer.like(await super()._make_server())
