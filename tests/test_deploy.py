"""`mpfleet deploy` as a maker runs it (the installed entry point, in a subprocess) against an emulated board whose
REPL is on a pseudo-terminal (tests/pty_board.py): the real MicroPython unix port, talked to by mpremote's serial
transport as a USB board is. The backend is `mpfleet serve` with its embedded broker, the device registered with
`mpfleet provision`; a deployed board must come online there.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from mpfleet.tools import deploy as deploy_command
from mpfleet.tools import firmware_build
from mpfleet.tools.errors import CommandError

from .polling import wait_until
from .maker_shell import maker_env, run_script
from .pty_board import PtyBoard
from .server_process import MPFLEET, ServerProcess

pytestmark = pytest.mark.network  # the firmware build fetches umqtt.simple from the package index once

DOC = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"
COPIED = re.compile(r"^\s+\[\s*\d+/\d+\] (\S+) \([\d,]+ bytes\) \.\.\. ok$", re.M)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("deploy-server") / "var").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A download cache holding umqtt.simple, fetched from the package index once."""
    cache = tmp_path_factory.mktemp("deploy-cache")
    firmware_build.fetch_umqtt(cache)
    return cache


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The firmware's sources as installed, copied once: every deploy of the module builds the same tree."""
    return shutil.copytree(firmware_build.firmware_dir(), tmp_path_factory.mktemp("deploy-source") / "fw",
                           ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture(scope="module")
def built(cache, source):
    """{path: bytes} of what a build of `source` puts on a flash."""
    return dict(firmware_build.flash_files(cache_dir=cache, source=source))


def provision(server, out):
    """(out, uid) of a unix device registered with `mpfleet provision --out out`, its broker at 127.0.0.1."""
    done = subprocess.run([MPFLEET, "provision", "--server", server.url, "--token", server.token, "--board", "unix",
                           "--mqtt-host", "127.0.0.1", "--out", str(out)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return out, json.loads((out / "config.json").read_text())["mqtt"]["uid"]


@pytest.fixture
def provisioned(server, tmp_path):
    """(config dir, uid) of a device of its own, for a test whose board comes online."""
    return provision(server, tmp_path / "config")


@pytest.fixture
def board(tmp_path):
    board = PtyBoard(tmp_path / "flash", tmp_path / "ttyBOARD")
    yield board
    board.stop()


@pytest.fixture(scope="module")
def deployed_flash(server, cache, source, tmp_path_factory):
    """(flash, config dir) of a board after a first deploy of `source`, for tests that start from there and never
    bring the board online (they share its device)."""
    root = tmp_path_factory.mktemp("deployed")
    config, _ = provision(server, root / "config")
    board = PtyBoard(root / "flash", root / "ttyBOARD")
    try:
        done = run_deploy(board, config, cache, source)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        board.stop()
    return board.flash, config


@pytest.fixture
def deployed(deployed_flash, board, tmp_path):
    """(board, config dir): `board` holding a copy of deployed_flash, and a copy of its config directory."""
    flash, config = deployed_flash
    shutil.copytree(flash, board.flash)
    return board, shutil.copytree(config, tmp_path / "config")


def deploy_args(board, config, cache, source):
    return [MPFLEET, "deploy", "--port", board.port, "--config", str(config), "--cache", str(cache),
            "--source", str(source)]


def run_deploy(board, config, cache, source):
    """`mpfleet deploy` of the firmware tree `source` on the board's port (its REPL started for it); a deploy that
    succeeded ends the REPL's process with its reset, which is waited for."""
    board.start()
    done = subprocess.run(deploy_args(board, config, cache, source), capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        board.wait_gone()
    return done


def copied(done):
    return COPIED.findall(done.stdout)


def flash_state(flash):
    """{path: (sha256, mtime_ns)} of every file in `flash`."""
    return {p.relative_to(flash).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(flash.rglob("*")) if p.is_file()}


def online(server, uid):
    status, body = server.call("GET", f"/v1/user/devices/{uid}")
    assert status == 200, body
    return body["data"] if body["data"]["status"] == "online" else None


def firmware_tree(source, tmp_path, **changes):
    """A copy of the firmware tree `source` with `changes` ({module: (old text, new text)}) made."""
    tree = shutil.copytree(source, tmp_path / "fw")
    for module, (old, new) in changes.items():
        path = tree / f"{module}.py"
        text = path.read_text()
        assert old in text, (module, old)
        path.write_text(text.replace(old, new, 1))
    return tree


def test_a_first_deploy_copies_everything_and_the_board_comes_online(board, provisioned, cache, source, built,
                                                                   server):
    config, uid = provisioned
    started = time.monotonic()
    done = run_deploy(board, config, cache, source)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    wanted = {**built, "config.json": (config / "config.json").read_bytes(),
              "settings.json": (config / "settings.json").read_bytes()}
    assert sorted(copied(done)) == sorted(wanted)
    assert f"Copied {len(wanted)} files" in done.stdout and "Resetting the board" in done.stdout
    on_flash = {p.relative_to(board.flash).as_posix(): p.read_bytes() for p in board.flash.rglob("*") if p.is_file()}
    assert on_flash == wanted  # nothing else: no temporary file left, no ca.pem (config.json holds the CA)
    print(f"full deploy on the pty board: {took:.2f} s ({len(wanted)} files, {sum(map(len, wanted.values()))} bytes)")

    board.boot()
    device = wait_until(lambda: online(server, uid), timeout=20, what="the deployed board online")
    assert device["meta"]["boot"]["count"] == 1 and device["meta"]["tls_verified"] is True


def test_a_second_deploy_with_nothing_changed_copies_nothing_and_says_so(deployed, cache, source):
    board, config = deployed
    before = flash_state(board.flash)
    started = time.monotonic()
    done = run_deploy(board, config, cache, source)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied(done) == [] and "Nothing to copy: every file on the board is up to date" in done.stdout
    assert flash_state(board.flash) == before  # not one file written again
    print(f"no-change deploy on the pty board: {took:.2f} s")


def test_a_board_running_its_app_is_stopped_deployed_and_back_online(board, provisioned, cache, source, tmp_path,
                                                                     server):
    config, uid = provisioned
    assert run_deploy(board, config, cache, source).returncode == 0
    board.start(app=True)  # the deployed firmware runs, its output on the port, as on a board's UART
    wait_until(lambda: online(server, uid), timeout=20, what="the board running its app online")
    tree = firmware_tree(source, tmp_path, user=('custom("relay_toggle"', 'custom("relay_flip"'))
    done = subprocess.run(deploy_args(board, config, cache, tree), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied(done) == ["user.mpy"]
    board.wait_gone()
    board.boot()
    wait_until(lambda: (d := online(server, uid)) and d["meta"]["boot"]["count"] == 2, timeout=20,
               what="the board online again, booted a second time")


def test_a_changed_module_alone_is_copied(deployed, cache, source, tmp_path):
    board, config = deployed
    tree = firmware_tree(source, tmp_path, user=('custom("relay_toggle"', 'custom("relay_flip"'))
    done = run_deploy(board, config, cache, tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied(done) == ["user.mpy"]
    assert b"relay_flip" in (board.flash / "user.mpy").read_bytes()


def test_a_file_damaged_on_the_board_is_copied_again(deployed, cache, source, built):
    board, config = deployed
    damaged = board.flash / "link.mpy"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size, one byte off
    damaged.write_bytes(data)
    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied(done) == ["link.mpy"]
    assert damaged.read_bytes() == built["link.mpy"]


def test_a_board_that_ran_an_ota_runs_the_deployed_app_and_keeps_its_state(board, provisioned, cache, source,
                                                                           server):
    config, uid = provisioned
    assert run_deploy(board, config, cache, source).returncode == 0
    # What an OTA leaves: the app in a/ chosen by app.ptr, on trial; here an app that never goes online.
    (board.flash / "a").mkdir()
    (board.flash / "a" / "app.py").write_text("def main():\n    print('the OTA app runs')\n"
                                               "    import time\n    time.sleep(60)\n")
    (board.flash / "app.ptr").write_text("a")
    (board.flash / "app.trial").write_text(" 3")
    settings = board.flash / "settings.json"
    settings.write_text(json.dumps({"period": 30, "ota_trial_s": 60}))  # what commands changed on the board
    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Removed app.ptr, app.trial: the board ran an OTA's app" in done.stdout
    assert not (board.flash / "app.ptr").exists() and not (board.flash / "app.trial").exists()
    assert (board.flash / "a" / "app.py").exists()  # kept for the next OTA
    assert json.loads(settings.read_text()) == {"period": 30, "ota_trial_s": 60}
    assert "Kept the board's settings.json" in done.stdout

    board.boot()
    wait_until(lambda: online(server, uid), timeout=20, what="the deployed app online")
    assert "the OTA app runs" not in board.log()


def test_a_stale_source_module_goes_and_the_boards_own_files_stay(deployed, cache, source):
    board, config = deployed
    (board.flash / "app.py").write_text("raise SystemExit('the old app.py runs')\n")  # imported before app.mpy
    own = {"ota.json": '{"id": "x", "state": "downloading"}', "unreached": "2", "fw.json": '{"version": "0.1.0"}',
           ".board/boots": "7", "notes.txt": "the maker's"}
    for name, text in own.items():
        (board.flash / name).parent.mkdir(exist_ok=True)
        (board.flash / name).write_text(text)
    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Removed app.py: it would be imported instead of the deployed app.mpy" in done.stdout
    assert not (board.flash / "app.py").exists()
    assert "Note: the board has an unfinished OTA job (ota.json); it carries on after the reset" in done.stdout
    assert {name: (board.flash / name).read_text() for name in own} == own
    assert copied(done) == []


def test_the_wifi_a_board_was_given_in_setup_mode_stays(deployed, cache, source):
    board, config = deployed
    # Provisioned without --wifi-ssid (as for an ESP board that asks for its network in setup mode).
    mine = json.loads((config / "config.json").read_text())
    del mine["wifi"]
    (config / "config.json").write_text(json.dumps(mine, indent=2) + "\n")
    assert run_deploy(board, config, cache, source).returncode == 0
    # Setup mode saved the network into the board's config.json (config.py's save: compact JSON).
    on_board = board.flash / "config.json"
    on_board.write_text(json.dumps({**mine, "wifi": {"ssid": "home", "password": "secret"}}))

    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Kept the Wi-Fi network 'home' of the board's config.json" in done.stdout
    assert json.loads(on_board.read_text()) == {**mine, "wifi": {"ssid": "home", "password": "secret"}}
    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0 and copied(done) == [], done.stdout + done.stderr

    # Another device's config.json: its Wi-Fi is not carried over.
    on_board.write_text(json.dumps({**mine, "mqtt": {**mine["mqtt"], "uid": "unix_other"}, "wifi": {"ssid": "x"}}))
    done = run_deploy(board, config, cache, source)
    assert done.returncode == 0 and copied(done) == ["config.json"], done.stdout + done.stderr
    assert on_board.read_bytes() == (config / "config.json").read_bytes()


def test_a_board_that_drops_off_mid_deploy_keeps_its_old_files_whole(deployed, cache, source, tmp_path):
    board, config = deployed
    old = (board.flash / "user.mpy").read_bytes()
    # A user module of ~60 KB: its copy takes long enough to be cut in the middle.
    tree = firmware_tree(source, tmp_path, user=('custom("relay_toggle"', 'custom("relay_flip"'))
    with open(tree / "user.py", "a") as f:
        f.write("\nBLOB = %r\n" % os.urandom(60 * 1024))
    temp = board.flash / "user.mpy.deploy"

    def writing():  # 8 KB of the new user.mpy on the flash, whatever its name there
        return any(p.stat().st_size > 8 * 1024 for p in board.flash.glob("user.mpy*"))

    def drop_when_half_written():
        wait_until(writing, timeout=60, interval=0.002, what="the copy of user.mpy under way")
        board.drop()

    dropper = threading.Thread(target=drop_when_half_written)
    board.start()
    dropper.start()
    done = subprocess.run(deploy_args(board, config, cache, tree), capture_output=True, text=True, timeout=120)
    dropper.join()
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mpfleet: the board on {board.port} stopped answering while "
                                                   "writing user.mpy"), done.stderr
    assert (board.flash / "user.mpy").read_bytes() == old  # whole, the old one

    # Plugged in again: the deploy finishes, and the stray temporary file goes.
    done = run_deploy(board, config, cache, tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied(done) == ["user.mpy"] and not temp.exists()
    assert b"relay_flip" in (board.flash / "user.mpy").read_bytes()


def test_a_missing_config_or_port_is_one_line_and_exit_1(tmp_path, deployed_flash, cache):
    _, config = deployed_flash
    for args, message in (
        (["--port", "/dev/null", "--config", str(tmp_path / "none")], "config.json: not found; make it with"),
        (["--port", str(tmp_path / "no-such-tty"), "--config", str(config)], "cannot open"),
    ):
        done = subprocess.run([MPFLEET, "deploy", *args, "--cache", str(cache)], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 1 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


def test_a_board_whose_mpy_version_mpy_cross_cannot_write_for_is_refused():
    deploy_command.check_mpy(2822, (6, 3), "1.28.0")  # the unix port of 1.29: v6.3, x64 native code
    for board_mpy, says in ((5, "loads .mpy v5.0, and this mpy-cross (MicroPython 1.28.0) writes v6.3: flash"),
                            (6 | 1 << 8 | 10 << 10, "loads .mpy v6.1"),  # MicroPython 1.20-1.21, xtensawin
                            (None, "too old to say its .mpy version")):
        with pytest.raises(CommandError, match=re.escape(says)):
            deploy_command.check_mpy(board_mpy, (6, 3), "1.28.0")


def test_the_commands_of_docs_deploy_md_run_as_written(server, tmp_path, built):
    blocks = re.findall(r"^```sh\n(.*?)^```", DOC.read_text(), re.S | re.M)
    usb, first, emulate, again = blocks
    env = maker_env(MPFLEET_SERVER=server.url, MPFLEET_TOKEN=server.token)  # `make run`'s, as provision finds it

    def shell(block, cwd):  # (a socat a failed deploy leaves in the background is stopped with the script)
        return run_script(block, cwd=cwd, env=env, timeout=120)

    walk = tmp_path / "walk"
    walk.mkdir()
    done = shell(first, walk)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Copied {len(built) + 2} files" in done.stdout  # the firmware, config.json and settings.json
    uid = json.loads((walk / "bench" / "config.json").read_text())["mqtt"]["uid"]
    emulator = subprocess.Popen(["bash", "-ec", emulate], cwd=walk, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: online(server, uid), timeout=20, what="the board of docs/deploy.md online")
    finally:
        os.killpg(emulator.pid, signal.SIGINT)
        emulator.wait(timeout=20)
    done = shell(again, walk)
    assert done.returncode == 0 and "Nothing to copy" in done.stdout, done.stdout + done.stderr

    # The USB board's commands, on a pseudo-terminal board in place of /dev/ttyUSB0.
    board = PtyBoard(tmp_path / "usb" / "flash", tmp_path / "usb" / "ttyUSB0").start()
    try:
        done = shell(usb.replace("/dev/ttyUSB0", board.port), tmp_path / "usb")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Resetting the board" in done.stdout and (board.flash / "config.json").exists()
    finally:
        board.stop()
