"""The backend's listening sockets (HTTP, MQTT over TLS, plain MQTT), each bound before the server
it carries starts, so that a port that is taken stops `mpfleet serve` with one line saying which
listener, where and why, and nothing half started is left behind."""

import os
import socket

_BACKLOG = 100  # connections waiting to be accepted, as asyncio's start_server would listen


class ListenerError(Exception):
    """A listener could not be opened; the text says which, on which address, and why."""


def bind(what, host, port):
    """A listening TCP socket on `host`:`port` (0: a port the OS picks). Raises ListenerError.

    `what` names the listener in the error, e.g. "MQTT over TLS".
    """
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        # `proto` (IPPROTO_TCP, as asyncio's own servers make it, not socket.create_server's 0): asyncio sets
        # TCP_NODELAY only on connections of such a socket. Without it a small reply (a PUBACK, an HTTP
        # answer) waited for the peer's delayed ACK: a command's round trip grew by ~40 ms.
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
        return sock
    except OSError as error:  # gaierror (an unknown host name) included
        if sock is not None:
            sock.close()
        why = os.strerror(error.errno) if isinstance(error.errno, int) and error.errno > 0 else error.strerror
        raise ListenerError(f"cannot listen on {host}:{port} ({what}): {why}") from None
