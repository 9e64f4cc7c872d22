"""A small streaming HTTPS client for the OTA download: one GET of a byte range per connection, read in blocks into
the caller's buffer, never a whole body.

    g = Get(ctx, url, start, end, size)   # TCP, TLS (the link's SSLContext: the server verified as the broker is),
                                          # `Range: bytes=start-end` (end None: to the end), the answer's head checked
    g.status                        # 206: the body starts at byte `start`; 200: a server that ignored the Range:
                                    # the whole file from 0
    n = g.readinto(mv, timeout_ms)  # bytes read into mv (at most len(mv)): 0 when none came within timeout_ms
    g.left                          # body bytes still to come
    g.close()

Only a 206 whose Content-Range begins at `start` of `size` bytes, or a 200 of `size` bytes, is taken. Raises OSError
(the network: connect, TLS, a timeout, the connection closed before the body's end, HTTP 5xx, a 206 from another
byte: worth a retry) or ValueError (no HTTP, another status (403, 404, ...), a 416 or a size other than `size`: the
server's file is not the one the command describes; not worth one).

The connect, the TLS handshake, the request and the answer's head block, each read or write bounded by _TIMEOUT_S
(as the MQTT connect does; the head comes in the server's first record): the head is read a line at a time by the
TLS socket's own readline, at most _LINE bytes a line (the rest of a longer line is skipped: none of ours is long), no
body bytes ahead. The body is read without blocking, each wait bounded (_IO_MS without a byte is ETIMEDOUT), so the
main loop keeps its pace while a download runs. Small on purpose: this module is in the heap for the whole job.
"""

import socket
import time
from errno import ETIMEDOUT

import select
from micropython import const

_TIMEOUT_S = const(10)
_IO_MS = const(10000)  # the body: a read without progress for this long ends the attempt
_LINE = const(128)


class Get:
    def __init__(self, ctx, url, start, end, size):
        if url[:8] != "https://":
            raise ValueError("the url must be https://")
        if ctx is None:  # (no network yet: ota_run.py)
            raise OSError("no TLS context")
        host, _, path = url[8:].partition("/")
        host, _, port = host.partition(":")
        s = socket.socket()
        try:
            s.settimeout(_TIMEOUT_S)
            s.connect(socket.getaddrinfo(host, int(port or 443))[0][-1])
            s = ctx.wrap_socket(s, server_hostname=host)
            s.write(b"GET /%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-%s\r\nConnection: close\r\n\r\n"
                    % (path, host, start, "" if end is None else str(end)))
            self._head(s, start, size)
        except Exception:
            s.close()
            raise
        s.setblocking(False)
        self._s = s
        self._p = select.poll()
        self._p.register(s, select.POLLIN)
        self._at = time.ticks_ms()  # the last progress

    def close(self):
        s = self._s
        if s is not None:
            self._s = None
            try:
                self._p.unregister(s)
                s.close()
            except Exception:
                pass

    def readinto(self, mv, timeout_ms):
        """Up to len(mv) body bytes into mv; 0 when none came within timeout_ms. Raises OSError when the connection
        ends before the body does, or nothing comes for _IO_MS."""
        if len(mv) > self.left:
            mv = mv[: self.left]
        n = self._s.readinto(mv) if len(mv) else 0
        if n is None:  # nothing yet (TLS: maybe a part of a record)
            if self._p.poll(timeout_ms):
                n = self._s.readinto(mv)
            if n is None:
                if time.ticks_diff(time.ticks_ms(), self._at) > _IO_MS:
                    raise OSError(ETIMEDOUT, "no data from the download server")
                return 0
        if n == 0 and len(mv):
            raise OSError("the server closed the connection %d bytes before the body's end" % self.left)
        self.left -= n
        self._at = time.ticks_ms()
        return n

    def _head(self, s, start, size):
        status = s.readline(_LINE).split()
        if len(status) < 2 or status[0][:5] != b"HTTP/" or not status[1].isdigit():
            raise ValueError("not an HTTP answer")
        code = self.status = int(status[1])
        first = 0
        total = length = None
        rest = False  # the next piece is the rest of a line longer than _LINE (skipped)
        while True:
            line = s.readline(_LINE)
            if not line:
                raise OSError("the server closed the connection in the answer's head")
            skip, rest = rest, line[-1:] != b"\n"
            if skip:
                continue
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if not name:
                break
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-range":  # bytes FIRST-LAST/TOTAL, or bytes */TOTAL (416)
                r, _, total = value[6:].partition(b"/")
                total = int(total) if total.isdigit() else None
                if r != b"*":
                    first = int(r.partition(b"-")[0])
        if code == 200:
            total = length
        elif code >= 500:  # the server's trouble: worth a retry
            raise OSError("HTTP %d from the download server" % code)
        elif code not in (206, 416):
            raise ValueError("HTTP %d from the download server" % code)
        if total != size:
            raise ValueError("the server has %s bytes, the command says %d" % (total, size))
        if code == 416:
            self.left = 0
            return
        if length is None:
            raise ValueError("the download server sent no Content-Length")
        if code == 206 and first != start:
            raise OSError("the server answered from byte %d, not %d" % (first, start))
        self.left = length
