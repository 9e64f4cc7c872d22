"""SLOW (~40 s): mpfleet installed from its wheel, outside the checkout. The wheel is built from this tree (`pip wheel`),
installed with its `firmware` extra into a fresh virtualenv (dependencies from the configured package index), and
only that virtualenv's `mpfleet` is used, from a directory outside the checkout: `serve`, `provision`, then
`emulate`, which builds the firmware from the installed package data and fetches umqtt.simple into the default
download cache ($XDG_CACHE_HOME/mpfleet, here a temporary one). The board must come online over the REST API, and
the dashboard's files (package data) must be served.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .polling import wait_until
from .server_process import answers, free_port

pytestmark = pytest.mark.network  # the emulator's first build fetches umqtt.simple from the package index

REPO = Path(__file__).resolve().parent.parent
PACKAGED = ("pyproject.toml", "README.md", "backend", "boards", "firmware", "tools")  # what the wheel is built from


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """bin/ of a fresh virtualenv holding mpfleet[firmware] from a wheel of this tree."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"  # a copy: the build leaves build/ and *.egg-info behind, never in the checkout
    source.mkdir()
    for name in PACKAGED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", work / "wheels", source])
    (wheel,) = (work / "wheels").glob("mpfleet-*.whl")
    run([sys.executable, "-m", "venv", work / "venv"])
    run([work / "venv" / "bin" / "pip", "install", "--quiet", f"{wheel}[firmware]"])
    return work / "venv" / "bin"


def run(argv, **kw):
    done = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def api(url, token, path):
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["data"]


def test_slow_the_installed_package_brings_an_emulated_board_online(installed, tmp_path):
    cwd = tmp_path / "elsewhere"  # not the checkout: nothing of it can be imported or found from here
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPFLEET_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    mpfleet = str(installed / "mpfleet")

    location = run([installed / "python", "-c", "import mpfleet.tools.firmware_build as b; print(b.firmware_dir())"],
                   cwd=cwd, env=env).stdout.strip()
    assert Path(location).is_relative_to(installed.parent) and (Path(location) / "ports" / "unix.py").is_file()
    assert "FLASH_DIR" in run([installed / "python", "-m", "mpfleet.tools.firmware_build", "--help"],
                              cwd=cwd, env=env).stdout

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen([mpfleet, "serve", "--data", "var", "--host", "127.0.0.1", "--http-port", str(port),
                                   "--mqtt-port", "0", "--mqtt-tls-port", "0", "--device-port", "0"],
                                  cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    emulator = None
    try:
        wait_until(lambda: (cwd / "var" / "admin.token").exists() and answers(url), 30, "mpfleet serve")
        token = (cwd / "var" / "admin.token").read_text().strip()
        run([mpfleet, "provision", "--server", url, "--token", token, "--board", "unix", "--mqtt-host", "127.0.0.1",
             "--out", "board"], cwd=cwd, env=env)
        uid = json.loads((cwd / "board" / "config.json").read_text())["mqtt"]["uid"]
        with open(tmp_path / "emulate.log", "w") as log:
            emulator = subprocess.Popen([mpfleet, "emulate", "board"], cwd=cwd, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        device = wait_until(lambda: _online(url, token, uid), 60, "the board online")
        assert device["meta"]["tls_verified"] is True
        _dashboard_is_served(url)
    finally:
        if emulator is not None:
            emulator.send_signal(signal.SIGINT)
            emulator.wait(timeout=20)
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    log = (tmp_path / "emulate.log").read_text()
    assert emulator.returncode == 0, log
    assert (tmp_path / "cache" / "mpfleet" / "micropython-umqtt.simple-1.3.4.tar.gz").is_file(), log
    assert (cwd / "board" / "lib" / "umqtt" / "simple.mpy").is_file() and (cwd / "board" / "app.mpy").is_file()


def _dashboard_is_served(url):
    """The dashboard's files are in the wheel (package data) and served from it, its modules as JavaScript."""
    with urllib.request.urlopen(url + "/", timeout=5) as response:
        assert b'src="/ui/js/main.js"' in response.read()
    for path in ("/ui/app.css", "/ui/js/main.js", "/ui/js/pages/devices.js", "/ui/js/pages/telemetry.js",
                 "/ui/vendor/uPlot.iife.min.js", "/ui/vendor/uPlot.min.css"):  # (npm's, copied in by the Makefile)
        with urllib.request.urlopen(url + path, timeout=5) as response:
            assert response.status == 200 and response.read(), path
            if path.endswith(".js"):  # a browser runs a module only with a JavaScript type
                assert response.headers["Content-Type"].startswith("text/javascript"), path


def _online(url, token, uid):
    device = api(url, token, f"/v1/user/devices/{uid}")
    return device if device["status"] == "online" else None
