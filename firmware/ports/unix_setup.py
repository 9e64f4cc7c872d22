"""The emulated board's setup listener: ports/unix.py's setup_listen() imports this module in setup mode only, so
none of it is in the heap of a board that boots into its app."""

import os
import socket


def listen(ap_name):
    """(a listening TCP socket, the setup page's URL): 127.0.0.1 on a free port. Raises OSError when 50 random ports
    were all taken."""
    for _ in range(50):
        port = 20000 + int.from_bytes(os.urandom(2), "little") % 40000
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            s.listen(2)
            return s, "http://127.0.0.1:%d/" % port
        except OSError:
            s.close()
    raise OSError("setup: no free port")
