"""The `mpfleet` command: serve's first start, user add, token create, --help."""

import json
import stat
import subprocess
import urllib.error
import urllib.request

from .server_process import MPFLEET, ServerProcess


def mpfleet(*args):
    return subprocess.run([MPFLEET, *args], capture_output=True, text=True, timeout=30)


def get_devices(url, token):
    request = urllib.request.Request(url + "/v1/user/devices", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_first_start_creates_admin_and_prints_its_token_once(tmp_path):
    data = tmp_path / "var"
    server = ServerProcess(data).start()
    first_output = server.stop()
    token_file = data / "admin.token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token.startswith("mpf_") and token not in first_output  # stdout is a log here, not a terminal
    assert f"Its API token is in {token_file}" in first_output
    assert "Created user 'admin'" in first_output

    server = ServerProcess(data).start()
    try:
        assert get_devices(server.url, token) == (200, {"data": [], "meta": {"total": 0, "limit": 50, "offset": 0}})
        assert get_devices(server.url, token + "x") == (401, {"message": "Unauthenticated."})
    finally:
        second_output = server.stop()
    assert token not in second_output and "Created user" not in second_output


def test_user_add_and_token_create_print_working_tokens(tmp_path):
    data = str(tmp_path / "var")
    added = mpfleet("user", "add", "bob", "--data", data)
    assert added.returncode == 0, added.stderr
    first = added.stdout.strip()
    created = mpfleet("token", "create", "bob", "--data", data)
    assert created.returncode == 0, created.stderr
    second = created.stdout.strip()
    assert first.startswith("mpf_") and second.startswith("mpf_") and first != second

    server = ServerProcess(tmp_path / "var").start()
    try:
        assert get_devices(server.url, first)[0] == 200
        assert get_devices(server.url, second)[0] == 200
    finally:
        server.stop()
    # Tokens are kept hashed: neither appears in the database.
    raw = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("mpfleet.db*"))
    assert first.encode() not in raw and second.encode() not in raw


def test_account_errors_are_one_line_and_exit_1(tmp_path):
    data = str(tmp_path / "var")
    assert mpfleet("user", "add", "bob", "--data", data).returncode == 0
    again = mpfleet("user", "add", "bob", "--data", data)
    assert (again.returncode, again.stderr) == (1, "mpfleet: A user named 'bob' already exists.\n")
    missing = mpfleet("token", "create", "carol", "--data", data)
    assert (missing.returncode, missing.stderr) == (1, "mpfleet: No user named 'carol'.\n")


def test_the_data_dir_comes_from_mpfleet_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MPFLEET_DATA", str(tmp_path / "elsewhere"))
    assert mpfleet("user", "add", "dora").returncode == 0
    assert (tmp_path / "elsewhere" / "mpfleet.db").exists()


def test_help_explains_the_commands():
    result = mpfleet("--help")
    assert result.returncode == 0
    for command in ("serve", "user", "token"):
        assert command in result.stdout
    serve_help = mpfleet("serve", "--help").stdout
    for option in ("--data", "--host", "--http-port", "--public-host", "MPFLEET_DATA"):
        assert option in serve_help


def test_a_taken_port_is_a_one_line_error(tmp_path):
    server = ServerProcess(tmp_path / "one").start()
    try:
        clash = mpfleet("serve", "--data", str(tmp_path / "two"), "--host", "127.0.0.1", "--http-port",
                        str(server.port), "--mqtt-port", "0", "--mqtt-tls-port", "0", "--device-port", "0")
    finally:
        server.stop()
    assert clash.returncode == 1
    assert clash.stderr.strip().splitlines()[-1].startswith(f"mpfleet: cannot listen on 127.0.0.1:{server.port}")
    assert "Traceback" not in clash.stderr
