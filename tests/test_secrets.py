"""Secrets stay out of logs and error bodies, and every error body is JSON, those aiohttp makes itself
included (backend/http_server.py): tried on a real `mpfleet serve` process and on a test server."""

import asyncio
import json
import logging
import secrets
import socket

import aiomqtt
import pytest
from mpfleet.backend import keys
from mpfleet.backend.app import init_app
from mpfleet.backend.redaction import REDACTED, RedactSecrets, redact

from .conftest import Backend
from .fake_device import FakeDevice
from .json_errors_server import TestServer
from .server_process import ServerProcess


def bad_requests(token):
    """(what, raw request) that aiohttp's parser refuses before any middleware, each carrying `token`."""
    auth = f"Authorization: Bearer {token}".encode()

    def get(*headers, line=b"GET /v1/user/devices HTTP/1.1"):
        return line + b"\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n"

    return [
        ("NUL after the token", get(auth + b"\x00")),
        ("NUL inside the token", get(auth[:-4] + b"\x00" + auth[-4:])),
        ("a control character", get(auth + b"\x01x")),
        ("DEL", get(auth + b"\x7f")),
        ("a bare CR", get(auth + b"\rx")),
        ("a line without a colon after it", get(auth, token.encode())),
        ("a header over 8 KB", get(auth + b"x" * 9000)),
        ("129 headers", get(auth, *[f"X-{i}: {token}".encode() for i in range(129)])),
        ("a bad request line", get(auth, line=f"GET /v1/user/devices/{token} HTTP/1.1 extra".encode())),
        ("a NUL in the request line", get(auth, line=f"GET /{token}\x00 HTTP/1.1".encode())),
        ("a method with a NUL", get(auth, line=b"G\x00ET /v1/user/devices HTTP/1.1")),
        ("a request line over 8 KB", get(auth, line=f"GET /{token}{'x' * 9000} HTTP/1.1".encode())),
        ("a chunk that is not one", b"PATCH /v1/user/devices/x HTTP/1.1\r\nHost: x\r\n" + auth
         + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"na\r\nzz\r\n"),
    ]


def app_errors(token):
    """(what, raw request, status) that reach the app: its middlewares answer them, never with the token."""
    auth = f"Authorization: Bearer {token}".encode()
    get = b"GET /v1/user/devices HTTP/1.1\r\nHost: x\r\n"
    close = b"Connection: close\r\n\r\n"
    return [
        ("bytes that are not UTF-8 after the token", get + auth + b"\xff\xfe\r\n" + close, 401),
        ("a latin-1 letter as the token", get + b"Authorization: Bearer \xe9\r\n" + close, 401),
        ("a wrong token", get + auth + b"x\r\n" + close, 401),
        ("no route", f"GET /v1/{token} HTTP/1.1\r\nHost: x\r\n".encode() + auth + b"\r\n" + close, 404),
        ("a wrong method", b"PUT /v1/user/devices HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n" + close, 405),
        ("a body over 1 MB", b"POST /v1/user/devices HTTP/1.1\r\nHost: x\r\n" + auth
         + b"\r\nContent-Length: 2000000\r\n" + close + b"x" * 2_000_000, 413),
    ]


def exchange(port, request):
    """Send `request` whole on a fresh connection; return the answer as (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all (a body over the limit)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_without(answer, token, status):
    got, headers, body = answer
    assert got == status, answer
    assert headers["content-type"].startswith("application/json"), headers
    message = json.loads(body)
    assert list(message) == ["message"] and isinstance(message["message"], str), message
    assert token.encode() not in body and b"mpf_" not in body, body


async def try_everything(port, token):
    for what, request in bad_requests(token):
        assert_json_without(await asyncio.to_thread(exchange, port, request), token, 400), what
    for what, request, status in app_errors(token):
        assert_json_without(await asyncio.to_thread(exchange, port, request), token, status), what


async def connect_with_wrong_password(registered, wrong):
    device = FakeDevice(registered["mqtt"], registered["port"])
    with pytest.raises(aiomqtt.MqttError):
        await device.connect(password=wrong)


async def test_a_served_backend_answers_json_and_logs_no_secret(tmp_path):
    server = ServerProcess(tmp_path / "var", args=("--mqtt-port", "0", "--mqtt-tls-port", "0", "--access-log"))
    server.start()
    try:
        token = server.token
        registered = [server.register(f"sensor-{i}") for i in range(2)]
        device = FakeDevice(registered[0]["mqtt"], registered[0]["port"])
        await device.connect()
        await device.close()
        wrong = "wrong-" + secrets.token_urlsafe(18)
        await connect_with_wrong_password(registered[1], wrong)
        await try_everything(server.port, token)
        # The access log writes the request line: the filter blanks a token put there all the same.
        assert server.call("GET", f"/v1/platforms?token={token}")[0] == 200
    finally:
        log = server.stop()
    assert "Created user 'admin'" in log and str(server.data_dir / "admin.token") in log
    assert "unparsable HTTP request from 127.0.0.1: BadHttpMessage" in log
    for secret in [token, wrong] + [r["mqtt"]["password"] for r in registered]:
        assert secret not in log
    assert "mpf_" not in log and "Traceback" not in log
    assert f"token={REDACTED}" in log


async def test_a_test_server_on_the_same_runner_answers_alike(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactSecrets())  # as serve's log has it (its access log writes request lines)
    app = init_app(Backend(tmp_path / "var").settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        _, token = await app[keys.STORAGE].users.create("alice")
        await try_everything(server.port, token)
    finally:
        await server.close()
    assert "unparsable HTTP request from 127.0.0.1: LineTooLong" in caplog.text
    assert token not in caplog.text and not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("line", [
    "GET /x HTTP/1.1 Authorization: Bearer abc.DEF-ghi_jkl\x00'",
    "token mpf_AbC-dEf_123 in a path",
    'CONNECT(client_id=d1, username=d1, password=s3cr3t-Pa55)',
    '{"username": "d1", "password": "s3cr3t-Pa55"}',
])
def test_the_log_filter_blanks_what_looks_like_a_secret(line):
    clean = redact(line)
    assert REDACTED in clean
    for secret in ("abc.DEF-ghi_jkl", "mpf_AbC-dEf_123", "s3cr3t-Pa55"):
        assert secret not in clean
