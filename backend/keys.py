"""Every web.AppKey of the application, in one place."""

from aiohttp import web

from .config import Settings
from .storage import Storage

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
