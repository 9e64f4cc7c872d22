"""`mpfleet setup-board` as a maker runs it (the installed entry point, in a subprocess): a real `mpfleet serve` with
its embedded broker, the emulated board's REPL on a pseudo-terminal (tests/pty_board.py: the MicroPython unix port,
through mpremote's serial transport as a USB board) and, for the flash step, esp32-mock-bootloader on a
pseudo-terminal (tests/test_flash.py's Mock).

The unix port has no hardware reset: deploy's reset ends its process, where a board restarts. The tests stand in for
that restart (boot_after_reset): once the REPL's process has ended, the board boots its flash (`micropython -m main`),
while setup-board waits for it online.
"""

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from . import esp_images
from .maker_shell import maker_env, run_script, running_script
from .polling import wait_until
from .pty_board import PtyBoard
from .server_process import MPFLEET
from .test_deploy import cache, server  # noqa: F401 (fixtures: `mpfleet serve`, umqtt.simple's download cache)
from .test_emulate import micropython_processes_in
from .test_flash import Mock

pytestmark = pytest.mark.network  # umqtt.simple and the ESP32 image are fetched from the package index once

DOC = Path(__file__).resolve().parent.parent / "docs" / "setup-board.md"
# esptool's own warning on a pseudo-terminal, which has no RTS/DTR lines to reset a chip with
ESPTOOL_NO_RESET = ("WARNING: Chip was NOT reset. Setting RTS/DTR lines is not supported for port '{port}'. Set "
                    "--before and --after arguments to 'no-reset' and switch to bootloader manually to avoid this "
                    "warning.")


@pytest.fixture
def env(tmp_path):
    """The environment of a maker's shell: no MPFLEET_* variables, a config folder of its own without a login file,
    the virtual environment's bin/ on PATH (micropython, socat's child)."""
    return maker_env(XDG_CONFIG_HOME=str(tmp_path / "config"))


@pytest.fixture
def board(tmp_path):
    board = PtyBoard(tmp_path / "flash", tmp_path / "ttyBOARD")
    yield board
    board.stop()


@pytest.fixture
def mock(tmp_path):
    started = []
    yield lambda chip: started.append(Mock(chip, tmp_path, pty=True)) or started[-1]
    for server in started:
        server.stop()


def boot_after_reset(board, process):
    """Boot `board` from its flash once deploy's reset has ended its REPL's process, as a board restarts; nothing if
    `process` (setup-board) ends first."""
    while process.poll() is None:
        if board.repl.poll() is not None:
            board.boot()
            return
        time.sleep(0.05)


def setup_board(board, args, *, env, cwd, timeout=180):
    """`mpfleet setup-board ARGS` on the pty board's port, the board restarting after the deploy: the finished
    process (stdout and stderr read)."""
    board.start()
    process = subprocess.Popen([MPFLEET, "setup-board", "--port", board.port, *map(str, args)], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    restarter = threading.Thread(target=boot_after_reset, args=(board, process))
    restarter.start()
    try:
        process.stdout_text, process.stderr_text = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        restarter.join()
    return process


def device(server, uid):
    status, body = server.call("GET", f"/v1/user/devices/{uid}")
    assert status == 200, body
    return body["data"]


def uid_in(config_dir):
    return json.loads((config_dir / "config.json").read_text())["mqtt"]["uid"]


def steps(stdout):
    return re.findall(r"^\[(\d)/4\] (\w+)", stdout, re.M)


def test_a_board_with_micropython_ends_online_found_by_the_login_file(server, cache, board, env, tmp_path):
    login = subprocess.run([MPFLEET, "login", "--url", server.url, "--token", server.token], env=env,
                           capture_output=True, text=True, timeout=30)
    assert login.returncode == 0, login.stderr
    started = time.monotonic()
    done = setup_board(board, ["--board", "unix", "--name", "bench one", "--mqtt-host", "127.0.0.1",
                               "--cache", cache, "--timeout", 60], env=env, cwd=tmp_path)
    took = time.monotonic() - started
    out = done.stdout_text
    assert done.returncode == 0, out + done.stderr_text
    assert steps(out) == [("1", "flash"), ("2", "provision"), ("3", "deploy"), ("4", "online")]
    assert "[1/4] flash: skipped (no --image: the board must run MicroPython already)" in out
    config_dir = tmp_path / "bench-one"  # the default --out: named after the device
    uid = uid_in(config_dir)
    assert f"on {server.url} ..." in out and "Resetting the board" in out
    assert re.search(rf"^Done in [\d.]+ s: {uid} \('bench one'\) is online", out, re.M), out
    detail = device(server, uid)  # the REST API says so too
    assert detail["status"] == "online" and detail["name"] == "bench one"
    assert detail["meta"]["boot"]["count"] == 1
    print(f"setup-board on the pty board (no --image): {took:.1f} s")


def test_a_board_that_cannot_reach_the_broker_times_out_with_what_to_check(server, cache, board, env, tmp_path):
    env = {**env, "MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token}
    # 127.0.0.2 is this machine too, but the broker listens on 127.0.0.1 only (and its certificate does not name it).
    done = setup_board(board, ["--board", "unix", "--name", "lost", "--mqtt-host", "127.0.0.2", "--cache", cache,
                               "--timeout", 8], env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout_text + done.stderr_text
    uid = uid_in(tmp_path / "lost")
    lines = done.stderr_text.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mpfleet: {uid} is not online after 8 s (status pending): "
                                                   "check the Wi-Fi network 'emulator'"), done.stderr_text
    port = json.loads((tmp_path / "lost" / "config.json").read_text())["mqtt"]["port"]
    assert f"the broker 127.0.0.2:{port} named in lost/config.json" in lines[0]
    assert f"mpremote connect {board.port} repl" in lines[0]
    assert "[4/4] online: waiting for" in done.stdout_text and device(server, uid)["status"] == "pending"
    assert board.running is not None and board.running.poll() is None  # it booted, and keeps trying


def test_the_checks_that_need_no_board_come_before_anything_is_written(server, board, env, tmp_path):
    env = {**env, "MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token}
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    image = esp_images.etboard_full_images()[1]
    count = len(server.call("GET", "/v1/user/devices")[1]["data"])
    for args, says in (
        (["--board", "unix", "--name", "taken"], "taken is already provisioned"),
        (["--board", "unix", "--name", "x", "--erase"], "--erase goes with --image"),
        (["--board", "d1_mini", "--name", "x", "--image", image], "is an ESP32 image; board d1_mini is an ESP8266"),
        (["--board", "unix", "--name", "x", "--token", "mpf_wrong"], "the server refused the token from --token"),
        (["--board", "d2_maxi", "--name", "x"], "unknown board 'd2_maxi'"),
    ):
        done = subprocess.run([MPFLEET, "setup-board", "--port", board.port, *map(str, args)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1 and done.stdout == "", (args, done.stdout)
        assert len(done.stderr.splitlines()) == 1 and says in done.stderr, (args, done.stderr)
    assert len(server.call("GET", "/v1/user/devices")[1]["data"]) == count  # nothing registered
    assert not (tmp_path / "x").exists()


def doc_blocks():
    return re.findall(r"^```sh\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_docs_esp32_command_flashes_on_the_mock_bootloader_then_the_deploy_fails_in_one_line(
        server, mock, env, tmp_path):
    """The mock answers esptool's protocol but runs no firmware: no REPL after the flash. So the command shows the
    flash step and the provision step done, and the deploy step refused with one line that says how to finish."""
    esp32, _ = doc_blocks()
    board = mock("esp32")
    # The port by a link's name, as /dev/ttyUSB0 or /dev/serial/by-id/...: mpremote reads a /dev/pts/N path (QEMU's)
    # without a timeout, and would wait for ever on a mock that never answers as a REPL.
    port = tmp_path / "ttyUSB0"
    port.symlink_to(board.url)
    image = "ESP32_GENERIC-20240602-v1.23.0.bin"
    shutil.copy(esp_images.etboard_full_images()[1], tmp_path / image)  # a MicroPython ESP32 build, as downloaded
    env = {**env, "MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token, "PORT": str(port), "IMAGE": image}
    started = time.monotonic()
    done = run_script(esp32, cwd=tmp_path, env=env)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert steps(done.stdout) == [("1", "flash"), ("2", "provision"), ("3", "deploy")]
    assert re.search(rf"^Flashed {re.escape(image)} to the ESP32 on {port} at 0x1000 in ", done.stdout, re.M)
    name = re.search(r"--name (\S+)", esp32).group(1)
    uid = uid_in(tmp_path / name)
    assert device(server, uid)["status"] == "pending"
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(f"mpfleet: the board on {port} gave no MicroPython REPL within 15 s"), done.stderr
    assert lines[-1].endswith(f"device {uid} is registered and its config is in {name}: once the board answers, "
                             f"finish with `mpfleet deploy --port {port} --config {name}`")
    assert len(lines) == 1 or lines[:-1] == [ESPTOOL_NO_RESET.format(port=port)], done.stderr
    print(f"setup-board with --image on the mock bootloader, to the deploy's refusal: {took:.1f} s")


def test_the_docs_emulated_board_runs_as_written_and_comes_online(server, cache, env, tmp_path):
    _, emulated = doc_blocks()
    env = {**env, "MPFLEET_URL": server.url, "MPFLEET_TOKEN": server.token,  # as after `mpfleet login`
           "MPFLEET_CACHE": str(cache)}
    with running_script(emulated, cwd=tmp_path, env=env) as done:  # the emulator runs on until the checks are done
        assert done.returncode == 0, done.stdout + done.stderr
        uid = uid_in(tmp_path / "bench")
        assert f"{uid} ('bench') is online" in done.stdout and "[1/4] flash: skipped" in done.stdout
        assert device(server, uid)["status"] == "online"
    wait_until(lambda: not micropython_processes_in(tmp_path), timeout=20, what="the emulated board stopped")


def test_help_explains_each_step_and_where_server_and_token_come_from():
    text = subprocess.run([MPFLEET, "setup-board", "--help"], capture_output=True, text=True, timeout=30).stdout
    for word in ("1. flash", "2. provision", "3. deploy", "4. online", "--image", "--url", "--server", "--token",
                 "--timeout", "$MPFLEET_URL", "`mpfleet login`", "http://127.0.0.1:8080", "mpremote"):
        assert word in text, word
