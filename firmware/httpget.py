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

The socket is non-blocking once connected, each wait bounded (_IO_MS without a byte is ETIMEDOUT), so the main loop
keeps its pace while a download runs. The head is read one byte at a time into a bounded line (_LINE bytes; longer
header lines are cut, none of ours is): no buffer of its own beyond that, and no body bytes read ahead.
"""

import socket
import time
from errno import ETIMEDOUT

import select
from micropython import const

_TCP_TIMEOUT_S = const(10)  # the TCP connect and the TLS handshake
_IO_MS = const(10000)  # a read or write without progress for this long ends the attempt
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
        self._s = None
        try:
            s.settimeout(_TCP_TIMEOUT_S)
            s.connect(socket.getaddrinfo(host, int(port or 443))[0][-1])
            s = ctx.wrap_socket(s, server_hostname=host)
        except Exception:
            s.close()
            raise
        s.setblocking(False)
        self._s = s
        self._p = select.poll()
        self._p.register(s, select.POLLIN)
        self._one = bytearray(1)
        self.left = 0
        self._at = time.ticks_ms()  # the last progress
        try:
            self._send(("GET /%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-%s\r\nConnection: close\r\n\r\n"
                    % (path, host, start, "" if end is None else str(end))).encode())
            self._head()
            if self.total != size:
                raise ValueError("the server has %s bytes, the command says %d" % (self.total, size))
            if self.status == 206 and self.first != start:
                raise OSError("the server answered from byte %d, not %d" % (self.first, start))
        except Exception:
            self.close()
            raise

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

    def _send(self, data):
        mv = memoryview(data)
        idle = 0
        while len(mv):
            n = self._s.write(mv)
            if n:
                mv = mv[n:]
                idle = 0
            else:
                self._p.modify(self._s, select.POLLOUT)
                self._p.poll(100)
                self._p.modify(self._s, select.POLLIN)
                idle += 100
                if idle >= _IO_MS:
                    raise OSError(ETIMEDOUT, "sending the request")

    def _byte(self):
        """The next byte of the answer's head. Raises OSError at its end or after _IO_MS without one."""
        one = self._one
        waited = 0
        while True:
            n = self._s.readinto(one)
            if n:
                return one[0]
            if n == 0:
                raise OSError("the server closed the connection in the answer's head")
            if waited >= _IO_MS:
                raise OSError(ETIMEDOUT, "waiting for the answer")
            self._p.poll(100)
            waited += 100

    def _line(self, line):
        """The next line of the head, without CR LF, as bytes (cut at _LINE bytes); read into `line`."""
        n = 0
        while True:
            c = self._byte()
            if c == 10:
                if n and line[n - 1] == 13:
                    n -= 1
                return bytes(line[:n])
            if n < _LINE:
                line[n] = c
                n += 1

    def _head(self):
        line = bytearray(_LINE)
        status = self._line(line).split(b" ")
        if len(status) < 2 or status[0][:5] != b"HTTP/" or not status[1].isdigit():
            raise ValueError("not an HTTP answer")
        self.status = int(status[1])
        self.first = 0
        self.total = None
        length = None
        while True:
            name, _, value = self._line(line).partition(b":")
            if not name:
                break
            name = name.lower()
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-range":  # bytes FIRST-LAST/TOTAL, or bytes */TOTAL (416)
                r, _, total = value[6:].partition(b"/")
                self.total = int(total) if total.isdigit() else None
                if r != b"*":
                    self.first = int(r.partition(b"-")[0])
        if self.status == 200:
            self.total = length
        elif self.status >= 500:  # the server's trouble: worth a retry
            raise OSError("HTTP %d from the download server" % self.status)
        elif self.status not in (206, 416):
            raise ValueError("HTTP %d from the download server" % self.status)
        if self.status != 416:
            if length is None:
                raise ValueError("the download server sent no Content-Length")
            self.left = length
