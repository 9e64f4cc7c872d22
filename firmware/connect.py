"""The link's connect: link.py imports this module for one call and unloads it again, so none of it holds heap
while the session runs. It is link.py's own code, in a module of its own only for that: it uses the Link's private
parts, and what it holds while loaded is what every connect costs on top of the session (the peak of a 32 KB board's
heap): so the session's client is made once, by the Link, and this module is small.

    run(link)   the TLS context if there is none yet (tlsctx.py); umqtt.simple's connect (TCP, TLS handshake,
                CONNECT and CONNACK). Raises whatever fails. Wi-Fi is up already (wifi.py, loaded before this
                module); online.py makes the session ready after it (this module unloaded first: its heap is free
                for the `status`).

umqtt.simple (1.3.4 and newer) opens its connection with its module's `socket.socket()` and `.connect(addr)`,
and wraps it in TLS itself only with ssl=True, in a new context per connect (1.3.4: `ussl.wrap_socket`). The
one seam it offers is that module: for each connect it is this one, whose socket() is the link (link.py reads and
writes with time limits) and whose getaddrinfo() is the real one; the link's connect(addr) is _tcp_tls: the TCP
connect and the handshake with the link's one SSLContext, the host name checked. umqtt.simple is told ssl=False and
gets its real `socket` back after the connect.
"""

import gc
import sys
import time
from socket import getaddrinfo  # noqa: F401 -- umqtt.simple's socket.getaddrinfo() during a connect

import select
import socket as _socket
from micropython import const
from umqtt import simple  # loaded at boot already (link.py)

_TCP_TIMEOUT_S = const(10)  # the TCP connect and the TLS handshake; then the session's own limits (link.py)
_KEEPALIVE = const(60)  # seconds, as the protocol says; the link pings after half of the session's keepalive
_link = None  # the link connecting


def socket(*args):
    """umqtt.simple's socket.socket() during a connect: the link."""
    return _link


def run(link):
    global _link
    log = link._log
    if link._ctx is None:
        link._setup("tlsctx")
    gc.collect()
    mqtt = link._cfg["mqtt"]
    log("link: connecting to %s:%d" % (mqtt["host"], mqtt["port"]))
    client = link._client
    client.keepalive = _KEEPALIVE  # (in its CONNECT)
    link._wait = True
    link.connect = _tcp_tls
    _link = link
    simple.socket = sys.modules["connect"]
    try:
        client.connect(True)  # this module: TCP and TLS (_tcp_tls), then CONNECT and CONNACK
    finally:
        simple.socket = _socket
        _link = None
        link.connect = None  # not `del`: MicroPython keeps a deleted attribute's value in its slot (and this module)


def _tcp_tls(addr):
    """umqtt.simple's sock.connect(addr) (the link's connect during one): TCP, then the TLS handshake, both within the
    plain socket's limit."""
    link = _link
    s = _socket.socket()
    try:
        s.settimeout(_TCP_TIMEOUT_S)
        s.connect(addr)
        link._room = None
        gc.collect()  # the TLS socket object wants one block of heap: the room just let go
        s = link._ctx.wrap_socket(s, server_hostname=link._cfg["mqtt"]["host"])
    except Exception:
        s.close()
        raise
    s.setblocking(False)  # reads and writes wait in link._park, with their time limit
    link._sock = s
    link._poll.register(s, select.POLLIN)
    link._rx = link._tx = time.ticks_ms()
