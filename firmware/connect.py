"""The link's connect: link.py imports this module for one call and unloads it again, so none of it holds heap
while the session runs (~2 KB on the unix port). It is link.py's own code, in a module of its own only for
that: it uses the Link's private parts.

    run(link)   the TLS context if there is none yet (tlsctx.py); umqtt.simple's connect (TCP, TLS handshake,
                CONNECT and CONNACK); the subscriptions; then the retained `status`: the session is up. Raises
                whatever fails. Wi-Fi is up already (wifi.py, loaded before this module).

umqtt.simple (1.3.4 and newer) opens its connection with its module's `socket.socket()` and `.connect(addr)`,
and wraps it in TLS itself only with ssl=True, in a new context per connect (1.3.4: `ussl.wrap_socket`). The
one seam it offers is that module: for each connect it is _Net, whose socket is the link (link.py reads and
writes with time limits), and the link's connect(addr) is _tcp_tls: the TCP connect and the handshake with the
link's one SSLContext, the host name checked. umqtt.simple is told ssl=False and gets its real `socket` back
after the connect.
"""

import gc
import json
import socket
import time

import select
from micropython import const
from umqtt import simple  # loaded at boot already (link.py)

_TCP_TIMEOUT_S = const(10)  # the TCP connect and the TLS handshake; then the session's own limits (link.py)
_KEEPALIVE = const(60)  # seconds, as the protocol says; the link pings after half of the client's keepalive
_WILL = b'{"online":false}'


class _Net:
    """umqtt.simple's `socket` module during a connect (the class itself, no instance: nothing is bound)."""

    getaddrinfo = socket.getaddrinfo
    link = None

    def socket(*args):
        return _Net.link


def run(link):
    log = link._log
    if link._ctx is None:
        link._setup("tlsctx")
    gc.collect()
    mqtt = link._cfg["mqtt"]
    if not link.verified:
        log("link: WARNING: this port cannot verify the broker's certificate; TLS unverified")
    log("link: connecting to %s:%d" % (mqtt["host"], mqtt["port"]))
    # Bytes throughout: umqtt.simple counts the length of a string with len().
    uid = link.uid.encode()
    status = (link._prefix + "status").encode()
    client = simple.MQTTClient(uid, mqtt["host"], mqtt["port"], uid, mqtt["password"].encode(), _KEEPALIVE)
    client.set_last_will(status, _WILL, True, 1)
    client.set_callback(link._on_message)
    link._client = client
    link._wait = True
    link.connect = lambda addr: _tcp_tls(link, mqtt["host"], addr)
    _Net.link = link
    simple.socket = _Net
    try:
        client.connect(True)  # _Net: TCP and TLS (_tcp_tls), then CONNECT and CONNACK
    finally:
        simple.socket = socket
        _Net.link = None
        link.connect = None  # not `del`: MicroPython keeps a deleted attribute's value in its slot (and this module)
    # Subscribed before `status` says online: the backend sends a command as soon as it sees the board
    # online, and a command published before the subscription would be lost.
    for topic in link._subs:
        client.subscribe(topic, 1)
    client.publish(status, json.dumps(link._status()).encode(), True, 1)
    link.up = True
    link._since = time.ticks_ms()
    link._ping_at = None
    log("link: online as %s (tls %s)" % (link.uid, "verified" if link.verified else "UNVERIFIED"))


def _tcp_tls(link, host, addr):
    """umqtt.simple's sock.connect(addr): TCP, then the TLS handshake, both within the plain socket's limit."""
    s = socket.socket()
    try:
        s.settimeout(_TCP_TIMEOUT_S)
        s.connect(addr)
        link._room = None
        gc.collect()  # the TLS socket object wants one block of heap: the room just let go
        s = link._ctx.wrap_socket(s, server_hostname=host)
    except Exception:
        s.close()
        raise
    s.setblocking(False)  # reads and writes wait in link._park, with their time limit
    link._sock = s
    link._poll.register(s, select.POLLIN)
    link._rx = link._tx = time.ticks_ms()
