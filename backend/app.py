"""init_app(): the aiohttp application and the resources it lives on."""

from aiohttp import web

from . import keys, lifecycle
from .config import Settings
from .events import EventHub
from .middlewares import bearer_auth, json_errors, rate_limit
from .rate_limits import RateLimiter
from .routes import setup_routes


def init_app(settings=None):
    settings = settings or Settings()
    app = web.Application(middlewares=[rate_limit, json_errors, bearer_auth])
    app[keys.SETTINGS] = settings
    app[keys.EVENTS] = EventHub()
    app.on_shutdown.append(_end_live_events)
    app[keys.RATE_LIMITER] = RateLimiter({"read": settings.rate_limit_read, "write": settings.rate_limit_write})
    app.cleanup_ctx.extend([
        lifecycle.storage_ctx,
        lifecycle.broker_ctx,
        lifecycle.device_http_ctx,
        lifecycle.bridge_ctx,
        lifecycle.service_ctx,
        lifecycle.alarms_ctx,
        lifecycle.maintenance_ctx,
        lifecycle.campaigns_ctx,
        lifecycle.home_assistant_ctx,
    ])
    setup_routes(app)
    return app


async def _end_live_events(app):
    """Before the server waits for its open requests: each WebSocket of the live events closes (1001)."""
    app[keys.EVENTS].end_all()
