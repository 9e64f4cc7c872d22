"""`mpfleet serve` whose listener cannot open: one clear line, a non-zero exit, and no URL printed.
Real processes: a port is taken by a socket of the test, then the server is started on it."""

import asyncio
import socket
import subprocess

import pytest
from mpfleet.backend.listeners import bind

from .server_process import MPFLEET, free_port


def serve(data, http_port, mqtt_port, tls_port, *extra):
    return subprocess.run(
        [MPFLEET, "serve", "--data", str(data), "--host", "127.0.0.1", "--http-port", str(http_port),
         "--mqtt-port", str(mqtt_port), "--mqtt-tls-port", str(tls_port), *extra],
        capture_output=True, text=True, timeout=30)  # a server that keeps running fails here


@pytest.mark.parametrize("taken, name", [(0, "HTTP"), (1, "plain MQTT"), (2, "MQTT over TLS")])
def test_a_listener_that_cannot_bind_ends_serve_with_one_line(tmp_path, taken, name):
    with socket.create_server(("127.0.0.1", 0)) as holder:
        held = holder.getsockname()[1]
        # The other two are picked while the held one is bound, so the OS cannot hand it out again.
        ports = [free_port(), free_port()]
        ports.insert(taken, held)
        result = serve(tmp_path / "var", *ports)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"mpfleet: cannot listen on 127.0.0.1:{ports[taken]} ({name}): Address already in use")
    assert "Traceback" not in result.stderr
    assert "mpfleet backend: http://" not in result.stdout  # the URL only once everything listens


def test_an_unreachable_mosquitto_ends_serve_with_one_line(tmp_path):
    port = free_port()
    result = serve(tmp_path / "var", free_port(), free_port(), free_port(),
                   "--broker", f"mqtt://admin:secret@127.0.0.1:{port}")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"mpfleet: Cannot connect to Mosquitto at 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr
    assert "mpfleet backend: http://" not in result.stdout


async def test_connections_to_a_bound_listener_send_without_delay():
    # asyncio sets TCP_NODELAY only on connections of a socket made for IPPROTO_TCP: with Nagle a small
    # answer waits for the peer's delayed ACK (a command's round trip grew by ~40 ms).
    accepted = asyncio.get_running_loop().create_future()

    def serve(reader, writer):
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(serve, sock=bind("HTTP", "127.0.0.1", 0))
    try:
        _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
