"""init_app(): the aiohttp application and the resources it lives on."""

import logging

from aiohttp import web

from . import keys
from .config import Settings
from .middlewares import bearer_auth, json_errors
from .routes import setup_routes
from .storage import Storage

log = logging.getLogger(__name__)


def init_app(settings=None):
    settings = settings or Settings()
    app = web.Application(middlewares=[json_errors, bearer_auth])
    app[keys.SETTINGS] = settings
    app.cleanup_ctx.append(_storage)
    setup_routes(app)
    return app


async def _storage(app):
    storage = Storage(app[keys.SETTINGS].data_dir)
    await storage.open()
    app[keys.STORAGE] = storage
    yield
    await storage.close()
