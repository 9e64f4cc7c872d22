"""The link's set-up code: its one TLS context (once per boot) and each connect. link.py imports this module for
one call and unloads it again, so none of it holds heap while the session runs (~2 KB on the unix port).

It is link.py's own code, in a module of its own only for that: it uses the Link's private parts.

    context(link)   the SSLContext, into link._ctx. With the port's TLS_VERIFIES the broker's certificate is
                    checked against mqtt.ca (CERT_REQUIRED) and its name against mqtt.host; else (ESP8266,
                    axTLS) CERT_NONE: encrypted only. The CA goes into the context (mbedTLS keeps it outside
                    the heap) and its PEM text is dropped from the config. Raises ValueError (or the TLS
                    module's error) for a CA that cannot be used.
    run(link)       Wi-Fi when down; TCP, TLS handshake, CONNECT and CONNACK; the subscriptions; then the
                    retained `status`: the session is up. Raises whatever fails.
"""

import gc
import json
import socket
import time

import select
from link import _str
from micropython import const

_WIFI_TIMEOUT_MS = const(20000)
_TCP_TIMEOUT_S = const(10)  # the TCP connect and the TLS handshake; then the session's own limits (link.py)
_WILL = b'{"online":false}'
# CONNECT's variable header: protocol "MQTT" level 4; flags 0xEE: user name, password, will retained (0x20) at
# QoS 1 (0x08), will (0x04), clean session (0x02); keepalive 60 s (0x3C), as the protocol says.
_CONNECT = b"\x00\x04MQTT\x04\xee\x00\x3c"


def context(link):
    try:  # MicroPython >= 1.22: the native module under `ssl`, which is Python code loaded into the heap
        import tls
    except ImportError:
        import ssl as tls

    mqtt = link._cfg["mqtt"]
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if link.verified:
        ctx.verify_mode = tls.CERT_REQUIRED
        # The DER bytes of the first certificate of the PEM text (this unix port's mbedTLS parses DER only).
        from binascii import a2b_base64

        pem = mqtt["ca"]
        start = pem.find("-----BEGIN CERTIFICATE-----")
        end = pem.find("-----END CERTIFICATE-----", start)
        if start < 0 or end < 0:
            raise ValueError("mqtt.ca: no PEM certificate")
        ctx.load_verify_locations(a2b_base64(pem[start + 27 : end].replace("\r", "").replace("\n", "").strip()))
    else:
        ctx.verify_mode = tls.CERT_NONE
    mqtt["ca"] = None
    link._ctx = ctx


def run(link):
    board = link._board
    log = link._log
    if not board.wifi_connected():
        wifi = link._cfg["wifi"]
        log("link: joining wifi %r" % wifi["ssid"])
        ip = board.wifi_connect(wifi["ssid"], wifi["password"], _WIFI_TIMEOUT_MS)
        log("link: wifi up, ip %s" % ip)
        board.sync_time()
    if link._ctx is None:
        context(link)
    gc.collect()
    mqtt = link._cfg["mqtt"]
    if not link.verified:
        log("link: WARNING: this port cannot verify the broker's certificate; TLS unverified")
    log("link: connecting to %s:%d" % (mqtt["host"], mqtt["port"]))
    s = socket.socket()
    try:
        s.settimeout(_TCP_TIMEOUT_S)
        s.connect(socket.getaddrinfo(mqtt["host"], mqtt["port"])[0][-1])
        link._room = None
        gc.collect()  # the TLS socket object wants one block of heap: the room just let go
        s = link._ctx.wrap_socket(s, server_hostname=mqtt["host"])
    except Exception:
        s.close()
        raise
    s.setblocking(False)  # reads and writes wait in link._park, with their time limit
    link._sock = s
    link._poll.register(s, select.POLLIN)
    link._rx = link._tx = time.ticks_ms()
    status = (link._prefix + "status").encode()
    uid = _str(link.uid)
    link._send(0x10, _CONNECT, uid, _str(status), _str(_WILL), uid, _str(mqtt["password"]))
    head, body = link._packet()
    if head != 0x20 or body[1]:  # CONNACK and its return code
        raise OSError("broker refused the connection (CONNACK %02x %r)" % (head, bytes(body)))
    # Subscribed before `status` says online: the backend sends a command as soon as it sees the board
    # online, and a command published before the subscription would be lost.
    for topic in link._subs:
        link._subscribe(topic)
    link._publish(status, json.dumps(link._status()), True)
    link.up = True
    link._since = time.ticks_ms()
    link._ping_at = None
    log("link: online as %s (tls %s)" % (link.uid, "verified" if link.verified else "UNVERIFIED"))
