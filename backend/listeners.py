"""The backend's listening sockets (HTTP, MQTT over TLS, plain MQTT), each bound before the server
it carries starts, so that a port that is taken stops `mpfleet serve` with one line saying which
listener, where and why, and nothing half started is left behind."""

import os
import socket


class ListenerError(Exception):
    """A listener could not be opened; the text says which, on which address, and why."""


def bind(what, host, port):
    """A listening TCP socket on `host`:`port` (0: a port the OS picks). Raises ListenerError.

    `what` names the listener in the error, e.g. "MQTT over TLS".
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:  # gaierror (an unknown host name) included
        # os.strerror: create_server() appends the address to the error's own text.
        why = os.strerror(error.errno) if isinstance(error.errno, int) and error.errno > 0 else error.strerror
        raise ListenerError(f"cannot listen on {host}:{port} ({what}): {why}") from None
