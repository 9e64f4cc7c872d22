"""init_app(): the aiohttp application and the resources it lives on."""

from aiohttp import web

from . import keys, lifecycle
from .config import Settings
from .middlewares import bearer_auth, json_errors
from .routes import setup_routes


def init_app(settings=None):
    settings = settings or Settings()
    app = web.Application(middlewares=[json_errors, bearer_auth])
    app[keys.SETTINGS] = settings
    app.cleanup_ctx.extend([
        lifecycle.storage_ctx,
        lifecycle.broker_ctx,
        lifecycle.device_http_ctx,
        lifecycle.bridge_ctx,
        lifecycle.service_ctx,
        lifecycle.maintenance_ctx,
    ])
    setup_routes(app)
    return app
