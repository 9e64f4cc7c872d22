"""An HTTPS download server for the board's OTA job in tests: in process (aiohttp), its certificate the backend's
server certificate (signed by the CA the boards verify against, naming 127.0.0.1), serving one file with HTTP
Range as the device route does (206 with Content-Range, 416 past the end, Content-Length, ETag), and misbehaving
on request:

    async with OtaServer(tls_dir) as server:
        server.data = bundle_bytes
        server.url                  # https://127.0.0.1:<port>/v1/device/ota/test-token
        server.truncate = 1000      # it has only the first 1000 bytes (a truncated blob)
        server.drop_after = 5000    # the connection dropped once the responses so far sent 5000 body bytes (once)
        server.ignore_range = True  # 200 with the whole file, whatever Range says
        server.pause = 0.05         # seconds after each 1 KB written (a slow link)
        server.sent                 # body bytes written so far; server.requests: [(Range header, status)]
"""

import asyncio
import hashlib
import re
import ssl

from aiohttp import web

PATH = "/v1/device/ota/test-token"
CHUNK = 1024


class OtaServer:
    def __init__(self, tls_dir):
        self.tls_dir = tls_dir
        self.data = b""
        self.truncate = None
        self.drop_after = None
        self.ignore_range = False
        self.pause = 0
        self.sent = 0
        self.requests = []
        self._runner = None
        self.port = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}{PATH}"

    async def __aenter__(self):
        app = web.Application()
        app.router.add_get(PATH, self._get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls_dir / "server.pem", self.tls_dir / "server.key")
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        await self._runner.cleanup()

    async def _get(self, request):
        data = self.data if self.truncate is None else self.data[: self.truncate]
        size = len(data)
        header = request.headers.get("Range")
        first, last, status = 0, size - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
        if match and not self.ignore_range:
            first = int(match.group(1))
            last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            status = 206
            if first >= size:
                self.requests.append((header, 416))
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        self.requests.append((header, status))
        headers = {"Content-Length": str(last + 1 - first), "ETag": f'"{hashlib.md5(data).hexdigest()}"',
                   "Content-Type": "application/octet-stream"}
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        at = first
        while at <= last:
            piece = data[at : min(at + CHUNK, last + 1)]
            if self.drop_after is not None and self.sent + len(piece) > self.drop_after:
                piece = piece[: self.drop_after - self.sent]
                self.drop_after = None  # once
                await response.write(piece)
                self.sent += len(piece)
                request.transport.abort()  # mid-body: the board sees the connection end early
                return response
            await response.write(piece)
            self.sent += len(piece)
            at += len(piece)
            if self.pause:
                await asyncio.sleep(self.pause)
        await response.write_eof()
        return response
