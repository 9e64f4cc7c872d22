"""aiohttp's TestServer on the runner `mpfleet serve` uses (backend/http_server.py), so that a test's
server answers what aiohttp answers itself as serve does: JSON, without the request's bytes."""

from aiohttp import test_utils
from mpfleet.backend.http_server import AppRunner


class TestServer(test_utils.TestServer):
    async def _make_runner(self, **kwargs):
        return AppRunner(self.app, **kwargs)
