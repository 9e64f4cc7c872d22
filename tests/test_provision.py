"""`mpfleet provision` against a real `mpfleet serve` process: config.json, ca.pem, and its one-line errors."""

import json
import os
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest

from .firmware.micropython import check, run
from .server_process import MPFLEET, ServerProcess, free_port

DEFAULT_SERVER = "http://127.0.0.1:8080"

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("server") / "var",
                           args=("--mqtt-port", "0", "--mqtt-tls-port", "0", "--device-port", str(free_port())))
    server.start()
    yield server
    server.stop()


NO_LOGIN = "/nonexistent/config"  # an $XDG_CONFIG_HOME without a login file: the tester's own is not read


def provision(*args, cwd=None, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
    return subprocess.run([MPFLEET, "provision", *args], capture_output=True, text=True, timeout=30, cwd=cwd,
                          env={**environ, "XDG_CONFIG_HOME": NO_LOGIN, **(env or {})})


def api_get(server, path):
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["data"]


def device_count(server):
    return len(api_get(server, "/v1/user/devices"))


def load_on_the_board(flash):
    """config.json as the firmware's own config.load() sees it, on the MicroPython unix port."""
    out = check("import config, json; print(json.dumps(config.load()))", flash, path_before=[FIRMWARE])
    return json.loads(out)


def test_an_emulator_config_holds_the_login_the_ca_and_the_host_override(server, tmp_path):
    out = tmp_path / "emu1"
    done = provision("--server", server.url, "--token", server.token, "--board", "unix", "--name", "bench one",
                     "--mqtt-host", "127.0.0.1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    uid = config["mqtt"]["uid"]
    device = api_get(server, f"/v1/user/devices/{uid}")
    ca = (server.data_dir / "tls" / "ca.pem").read_text()

    assert uid.startswith("unix_") and device["name"] == "bench one" and device["board"]["key"] == "unix"
    assert config["mqtt"] == {"host": "127.0.0.1", "port": device["meta"]["mqtt_port"], "uid": uid,
                              "password": config["mqtt"]["password"], "ca": ca}
    assert len(config["mqtt"]["password"]) >= 16
    assert config["board"] == "unix" and "pins" not in config  # the emulated board has none
    assert config["ota"] == {"port": int(server.args[-1])}  # the device listener's, for people and tools
    assert "telemetry" not in config and json.loads((out / "settings.json").read_text()) == {"period": 60}
    assert (out / "ca.pem").read_text() == ca
    assert stat.S_IMODE((out / "config.json").stat().st_mode) == 0o600
    assert uid in done.stdout and config["mqtt"]["password"] not in done.stdout + done.stderr
    assert f"mpfleet emulate {out}" in done.stdout
    assert load_on_the_board(out) == config  # the firmware's validate() accepts it, nothing to default


def test_a_real_board_gets_its_wifi_and_the_servers_broker_host(server, tmp_path):
    out = tmp_path / "kitchen"
    done = provision("--server", server.url, "--token", server.token, "--board", "d1_mini", "--out", str(out),
                     "--wifi-ssid", "home", "--wifi-password", "secret pass", "--period", "30")
    assert done.returncode == 0, done.stderr
    config = load_on_the_board(out)
    assert config["wifi"] == {"ssid": "home", "password": "secret pass"}
    assert config["mqtt"]["host"] == socket.gethostname()  # the server's own name: no --public-host given
    assert config["board"] == "d1_mini" and json.loads((out / "settings.json").read_text()) == {"period": 30}
    (d1_mini,) = [board for board in api_get(server, "/v1/boards") if board["key"] == "d1_mini"]
    assert config["pins"] == d1_mini["pins"] == {"led": 2, "led_active_low": True, "relay": 5}
    device = api_get(server, f"/v1/user/devices/{config['mqtt']['uid']}")
    assert device["name"] == "kitchen"  # the default name: the directory's
    assert (device["platform"]["key"], device["board"]["key"]) == ("espressif8266", "d1_mini")


def test_the_token_defaults_to_the_environment_then_the_data_dir(server, tmp_path):
    from_env = provision("--server", server.url, "--board", "unix", "--out", str(tmp_path / "a"),
                         env={"MPFLEET_TOKEN": server.token})
    assert from_env.returncode == 0, from_env.stderr
    # Run where ./var is the server's data directory: its admin.token is used.
    from_file = provision("--server", server.url, "--board", "unix", "--out", str(tmp_path / "b"),
                          cwd=server.data_dir.parent)
    assert from_file.returncode == 0, from_file.stderr
    none = provision("--server", server.url, "--board", "unix", "--out", str(tmp_path / "c"), cwd=tmp_path)
    assert none.returncode == 1 and none.stderr == (
        "mpfleet: no API token: give --token, set $MPFLEET_TOKEN, run `mpfleet login` (it writes "
        f"{NO_LOGIN}/mpfleet/login.json), or run where var/admin.token exists\n")


def test_the_server_is_found_as_the_rest_client_finds_it_then_the_old_variable_then_this_machine(server, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    found = provision("--board", "unix", "--out", str(tmp_path / "a"),
                      env={"MPFLEET_URL": server.url, "MPFLEET_SERVER": closed, "MPFLEET_TOKEN": server.token})
    assert found.returncode == 0 and f"on {server.url} ..." in found.stdout, found.stderr
    old = provision("--board", "unix", "--out", str(tmp_path / "b"),
                    env={"MPFLEET_SERVER": server.url, "MPFLEET_TOKEN": server.token})
    assert old.returncode == 0, old.stderr
    flag = provision("--url", closed, "--board", "unix", "--out", str(tmp_path / "c"),
                     env={"MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token})
    assert flag.returncode == 1 and flag.stderr.startswith(f"mpfleet: cannot reach the server at {closed} (from "
                                                            "--url): "), flag.stderr
    # Nothing anywhere: the server on this machine, its default port, named as the default.
    default = provision("--board", "unix", "--out", str(tmp_path / "d"), env={"MPFLEET_TOKEN": "mpf_x"})
    assert default.returncode == 1, default.stdout
    # (A `make run` on this machine answers instead, and refuses the token.)
    assert default.stderr.startswith(f"mpfleet: cannot reach the server at {DEFAULT_SERVER} (from the default for a "
                                     "server on this machine): ") or "HTTP 401" in default.stderr, default.stderr


def test_the_login_file_of_mpfleet_login_gives_server_and_token(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    login = subprocess.run([MPFLEET, "login", "--url", server.url, "--token", server.token], capture_output=True,
                           text=True, timeout=30, env=env)
    assert login.returncode == 0, login.stderr
    done = provision("--board", "unix", "--out", str(tmp_path / "a"), cwd=tmp_path, env=env)
    assert done.returncode == 0 and f"on {server.url} ..." in done.stdout, done.stderr
    # A token the server refuses is named by where it came from.
    (tmp_path / "config" / "mpfleet" / "login.json").write_text(json.dumps({"url": server.url, "token": "mpf_no"}))
    done = provision("--board", "unix", "--out", str(tmp_path / "b"), cwd=tmp_path, env=env)
    assert done.returncode == 1 and done.stderr.endswith(
        f"(HTTP 401: the server refused the token from {tmp_path}/config/mpfleet/login.json)\n"), done.stderr


def test_an_existing_config_is_kept_unless_forced(server, tmp_path):
    out = tmp_path / "emu"
    args = ("--server", server.url, "--token", server.token, "--board", "unix", "--out", str(out))
    assert provision(*args).returncode == 0
    first = (out / "config.json").read_text()
    devices = device_count(server)

    again = provision(*args)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and again.stderr.startswith(f"mpfleet: {out} is already provisioned")
    assert "--force" in again.stderr
    assert (out / "config.json").read_text() == first and device_count(server) == devices  # nothing registered

    forced = provision(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    second = json.loads((out / "config.json").read_text())
    assert second["mqtt"]["uid"] != json.loads(first)["mqtt"]["uid"] and device_count(server) == devices + 1


def test_a_bad_token_is_one_line_and_writes_nothing(server, tmp_path):
    done = provision("--server", server.url, "--token", "mpf_wrong", "--board", "unix", "--out", str(tmp_path / "x"))
    assert (done.returncode, done.stderr) == (1, "mpfleet: Unauthenticated. (HTTP 401: the server refused the token "
                                                 "from --token)\n")
    assert not (tmp_path / "x").exists()


def test_an_unknown_board_lists_the_known_keys(server, tmp_path):
    devices = device_count(server)
    done = provision("--server", server.url, "--token", server.token, "--board", "d2_maxi", "--out", str(tmp_path))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("mpfleet: unknown board 'd2_maxi'; known boards: ")
    for key in ("d1_mini", "esp32dev", "unix"):
        assert key in done.stderr
    assert device_count(server) == devices


def test_a_real_board_without_wifi_is_left_to_its_setup_mode(server, tmp_path):
    done = provision("--server", server.url, "--token", server.token, "--board", "esp32dev", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "setup mode" in done.stdout
    config = json.loads((tmp_path / "config.json").read_text())
    assert "wifi" not in config and config["mqtt"]["uid"].startswith("espressif32_")
    # The firmware finds no usable configuration and goes to setup mode, which keeps the broker settings.
    result = run("import config\ntry:\n config.load()\nexcept config.ConfigError as e:\n print(e)", tmp_path,
                 path_before=[FIRMWARE])
    assert result.out == "config.json: wifi: missing\n"


def test_an_unreachable_server_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = provision("--server", url, "--token", "mpf_x", "--board", "unix", "--out", str(tmp_path / "x"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"mpfleet: cannot reach the server at {url} (from --server): ")
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()


def test_help_explains_the_options():
    text = subprocess.run([MPFLEET, "provision", "--help"], capture_output=True, text=True, timeout=30).stdout
    for option in ("--url", "--server", "--token", "--board", "--out", "--wifi-ssid", "--mqtt-host", "--force",
                   "MPFLEET_URL", "MPFLEET_SERVER", "MPFLEET_TOKEN", "login", "http://127.0.0.1:8080"):
        assert option in text
