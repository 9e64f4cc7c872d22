"""The device listener: HTTPS for boards, apart from the user API, with one route and its own authentication.

    GET /v1/device/ota/<token>    the image of an open OTA job (ota_tokens.py: the token says whose, which)

A bad, forged or expired token, one whose job is over or whose device is disabled, is 403; a valid token
whose device, firmware or job is gone is 404; neither sends a byte of any image. Otherwise the blob is
streamed from disk by aiohttp's FileResponse: Content-Length, `ETag: "<md5>"`, `Range: bytes=N-` answered 206
with Content-Range, a range past the end 416 with `Content-Range: bytes */SIZE`. What each response sent is
added to its job's bytes_served when the response ends (a board that resumes or fetches single files of a
bundle by Range is counted by what it really got).

The server certificate is signed by the CA boards get as mqtt.ca (lifecycle.device_http_ctx says which),
so a board verifies this listener as it verifies the broker.
"""

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from .errors import ApiError
from .middlewares import json_errors
from .ota_tokens import BadToken, TokenSigner
from .storage import Storage

log = logging.getLogger(__name__)

ROUTE = "/v1/device/ota/{token}"
JOB_OVER = "This download link is no longer valid: its OTA job is over."
GONE = "Nothing to download here: the device, the firmware or the OTA job is gone."
DISABLED = "This download link is not valid while the device is disabled."
# Bytes read from the blob and written at a time; each connection holds about one in flight while a slow board
# drains it. 50 boards reading a 1 MB bundle at once, 4 KB at a time (served process, measured): the backend's RSS
# grew by 17-19 MB with 64 KiB, 36 MB with FileResponse's default of 256 KiB.
CHUNK = 64 * 1024
_STORAGE = web.AppKey("storage", Storage)
_SIGNER = web.AppKey("signer", TokenSigner)


@dataclass(frozen=True)
class OtaPublic:
    """How boards reach the device listener: the registration answer's `ota`, and every download URL."""

    host: str  # the one boards get as mqtt.host, so that the listener's certificate names it
    port: int

    def url(self, token):
        return f"https://{self.host}:{self.port}{ROUTE.format(token=token)}"


def make_app(storage, signer):
    """The device listener's application (no user API here, and no device route on the user API)."""
    app = web.Application(middlewares=[json_errors])
    app[_STORAGE] = storage
    app[_SIGNER] = signer
    app.router.add_get(ROUTE, download)
    return app


async def download(request):
    storage = request.app[_STORAGE]
    try:
        grant = request.app[_SIGNER].read(request.match_info["token"])
    except BadToken as error:
        raise ApiError(403, str(error)) from None
    job = await storage.ota.download(grant.job_id)
    if job is None or job.uid != grant.uid or job.firmware_id != grant.firmware_id or job.md5 is None:
        raise ApiError(404, GONE)
    if not job.is_open:
        raise ApiError(403, JOB_OVER)
    if not job.device_enabled:  # revoked: its broker access is cut, and its downloads with it
        raise ApiError(403, DISABLED)
    path = storage.blobs.path(job.md5)
    if not path.is_file():
        raise ApiError(404, GONE)
    return BlobResponse(path, job.md5, lambda sent: storage.ota.count_served(job.job_id, sent))


class BlobResponse(web.FileResponse):
    """FileResponse with the image's md5 as its ETag (FileResponse sets one from mtime and size, which a
    board cannot compare with anything it knows), counting the body bytes it writes.

    Counting overrides FileResponse._sendfile (aiohttp 3.14's private method; the tests of the download route
    count bytes through it) to always use its chunked fallback, through a writer that counts: over TLS
    asyncio's sendfile copies through user space anyway, so nothing is lost.
    """

    def __init__(self, path, md5, count):
        self._md5 = md5
        self._count = count  # awaited with the body bytes sent, once the response has ended
        super().__init__(path, chunk_size=CHUNK, headers={"Content-Type": "application/octet-stream"})
        self.body_sent = 0

    async def prepare(self, request):
        try:
            return await super().prepare(request)
        finally:
            # Shielded: a board that hangs up mid-response is counted all the same.
            await asyncio.shield(self._count(self.body_sent))

    @property
    def etag(self):
        return web.StreamResponse.etag.fget(self)

    @etag.setter
    def etag(self, value):
        web.StreamResponse.etag.fset(self, self._md5)  # whatever FileResponse computed

    async def _sendfile(self, request, fobj, offset, count):
        writer = await web.StreamResponse.prepare(self, request)
        await self._sendfile_fallback(_Counting(writer, self), fobj, offset, count)
        return writer


class _Counting:
    """The writer FileResponse's fallback writes chunks to: counts each once the transport took it."""

    def __init__(self, writer, response):
        self._writer = writer
        self._response = response

    async def write(self, chunk):
        await self._writer.write(chunk)
        self._response.body_sent += len(chunk)

    async def drain(self):
        await self._writer.drain()
