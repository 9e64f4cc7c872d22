"""GET / and GET /ui/{path}: the web dashboard's files (docs/dashboard.md), served as they ship in the package.

Both routes are public: the files hold no data, the page signs in with an API token of its own and calls the API
with it. Only files under backend/dashboard/static/ are answered; a path that leaves it, names a hidden file or
no file is 404. They are not part of the API, and not in its OpenAPI document.
"""

from pathlib import Path

from aiohttp import web

from ..errors import ApiError

STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"
NOT_FOUND = "Not found."

# The page loads its scripts, styles and images from this server only and talks to its API (and the events'
# WebSocket, which CSP 3's 'self' covers) only; no inline script or style attribute, no frame around it.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files are not fingerprinted: the browser revalidates them (Last-Modified) so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


# The types of the files the dashboard ships, stated rather than guessed from the machine's mime.types (which says
# application/javascript on one, text/javascript on another); any other file is sent as bytes.
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".js": "text/javascript; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}
_BYTES = "application/octet-stream"


async def index(request):
    return _file(STATIC / "index.html")


async def static_file(request):
    return _file(_resolve(request.match_info["path"]))


def _resolve(path):
    """The file of `path` (relative to STATIC). Raises ApiError 404 for a path that is no file there."""
    parts = path.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        raise ApiError(404, NOT_FOUND)
    file = STATIC.joinpath(*parts).resolve()
    if not file.is_relative_to(STATIC) or not file.is_file():
        raise ApiError(404, NOT_FOUND)
    return file


def _file(path):
    return web.FileResponse(path, headers={**_HEADERS, "Content-Type": _TYPES.get(path.suffix.lower(), _BYTES)})
