"""Fixtures: the real app on a real socket, over a real SQLite file in a temporary data dir.

`api` is a client for one user; `other_api` one for a second user. Every answer
they receive is checked against the OpenAPI document (tests/openapi_check.py).
"""

import pytest
from aiohttp.test_utils import TestClient
from mpfleet.backend import keys
from mpfleet.backend.app import init_app
from mpfleet.backend.broker.tls import ensure_certificates
from mpfleet.backend.config import Settings

from .hil.options import add_options as add_hil_options
from .json_errors_server import TestServer  # the runner of `mpfleet serve` (backend/http_server.py)
from .mosquitto_broker import MosquittoBroker
from .openapi_check import check_response


def pytest_addoption(parser):
    """--port, --board, --image ... of the hardware-in-the-loop suite (tests/hil/): pytest reads options only from
    the conftest files it loads at start-up, which tests/hil/conftest.py is not."""
    add_hil_options(parser)


class Api:
    """Requests as one user; `call` returns (status, JSON body) after checking it against the spec."""

    def __init__(self, backend, token):
        self.backend = backend
        self.token = token

    @property
    def client(self):
        return self.backend.client  # a new one after a restart

    def headers(self, token=None):
        return {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}

    async def call(self, method, path, *, json=None, data=None, token=None, headers=None, raw=None):
        all_headers = {**self.headers(token), **(headers or {})}
        response = await self.client.request(method, path, json=json, data=data if raw is None else raw,
                                             headers=all_headers)
        body = await response.json()
        check_response(method, path, response.status, body)
        return response.status, body

    async def get(self, path, **kw):
        return await self.call("GET", path, **kw)

    async def post(self, path, **kw):
        return await self.call("POST", path, **kw)

    async def patch(self, path, **kw):
        return await self.call("PATCH", path, **kw)

    async def delete(self, path, **kw):
        return await self.call("DELETE", path, **kw)

    async def register(self, name="test", platform="espressif8266", board="esp07s", **extra):
        status, body = await self.post("/v1/user/devices",
                                       json={"name": name, "platform": platform, "board": board, **extra})
        assert status == 201, body
        return body["data"]


class Backend:
    """One running app on a data dir; `restart()` stops it and starts a new one on the same dir.

    The embedded broker listens on free ports (0); `settings` overrides point it elsewhere.
    """

    def __init__(self, data_dir, **settings):
        defaults = {"host": "127.0.0.1", "public_host": "mqtt.example.test", "mqtt_port": 0, "mqtt_tls_port": 0,
                    "rate_limit_read": 0, "rate_limit_write": 0}  # (as server_process.NO_RATE_LIMIT says why)
        self.settings = Settings(data_dir=data_dir, **{**defaults, **settings})
        self.client = None

    async def start(self):
        self.client = TestClient(TestServer(init_app(self.settings), host="127.0.0.1"))
        await self.client.start_server()

    async def stop(self):
        await self.client.close()

    async def restart(self):
        await self.stop()
        await self.start()

    @property
    def storage(self):
        return self.client.app[keys.STORAGE]

    @property
    def bridge(self):
        return self.client.app[keys.BRIDGE]

    async def api_for(self, user_name):
        _, token = await self.storage.users.create(user_name)
        return Api(self, token)


@pytest.fixture
async def backend(tmp_path):
    backend = Backend(tmp_path / "var")
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def api(backend):
    return await backend.api_for("alice")


@pytest.fixture
async def other_api(backend):
    return await backend.api_for("bob")


@pytest.fixture
def mosquitto(tmp_path):
    """Mosquitto 2 with dynamic security, started from a generated config (tests/mosquitto_broker.py), its TLS
    certificates in its own folder."""
    broker = MosquittoBroker(tmp_path / "mosquitto", ensure_certificates(tmp_path / "mosquitto" / "tls", []))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def device(api):
    return await api.register()
