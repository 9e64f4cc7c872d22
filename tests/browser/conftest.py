"""Fixtures of the dashboard's browser tests: a real `mpfleet serve`, its users, boards emulated by `mpfleet emulate`
(the MicroPython unix port running the firmware), and Debian's Chromium driven by Playwright.

    def test_x(dashboard, page, screenshot):
        dashboard.open(page, "#/devices")          # signed in as the test's own user (dashboard.user)
        screenshot(page, "devices")                # artifacts/screenshots/devices.png
    board = emulated_board(dashboard.user)         # a board provisioned for that user, online (its uid)

Chromium is /usr/bin/chromium (`make chromium` installs it from Debian); Playwright never downloads a browser. Each
test gets a user of its own (so its device list holds only its devices), a new browser context (an empty profile:
no session storage of another test) and a page whose uncaught script errors fail the test.
"""

import json
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from mpfleet.tools import firmware_build

from ..polling import wait_until
from ..server_process import MPFLEET, ServerProcess, rest_call

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # one step of a page (a board coming online waits longer, by its own timeout)


@dataclass
class User:
    name: str
    token: str


class Dashboard:
    """The served dashboard as one user sees it."""

    def __init__(self, server, user):
        self.server = server
        self.user = user
        self.url = server.url

    def open(self, page, route="#/devices"):
        """Sign in on `page` through `/#token=...` and go to `route`; returns the page."""
        page.goto(f"{self.url}/#token={self.user.token}")
        page.wait_for_url("**/#/devices")
        if route != "#/devices":
            page.goto(f"{self.url}/{route}")
        return page

    def call(self, method, path, body=None):
        """(status, JSON answer) of one REST request as this user."""
        return rest_call(self.url, self.user.token, method, path, body)

    def register(self, name="sensor", platform="unix", board="unix"):
        """A new device of this user that no board runs: its registration's `data`."""
        status, body = self.call("POST", "/v1/user/devices", {"name": name, "platform": platform, "board": board})
        assert status == 201, body
        return body["data"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One `mpfleet serve` for the browser tests of a worker, without rate limits, its broker on 127.0.0.1."""
    data = tmp_path_factory.mktemp("dashboard") / "var"
    server = ServerProcess(data, args=["--mqtt-port", "0", "--mqtt-tls-port", "0", "--public-host", "127.0.0.1"])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def user(server):
    """A new user of the server and its API token (`mpfleet user add`)."""
    name = "user-" + uuid.uuid4().hex[:8]
    added = subprocess.run([MPFLEET, "user", "add", name, "--data", str(server.data_dir)],
                           capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    return User(name, added.stdout.strip())


@pytest.fixture
def dashboard(server, user):
    return Dashboard(server, user)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Not longer: Playwright's sync API keeps an event loop set as running in the
    thread while it is started, and a pytest-asyncio test of another module in the same worker then cannot run."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a new browser context at desktop size; an uncaught script error on it fails the test."""
    yield from _page(browser, viewport=DESKTOP)


@pytest.fixture
def phone_page(browser):
    """A page at a phone's size (390x844, touch), as `page`."""
    yield from _page(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def _page(browser, **context_options):
    context = browser.new_context(**context_options)  # an empty profile: no other test's session storage
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def screenshot():
    """screenshot(page, name, full_page=True): the whole page (else the window: a modal dialog's backdrop covers
    only that) to artifacts/screenshots/<name>.png (docs/dashboard.md lists them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name, full_page=True):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def emulated_board(server, tmp_path):
    """emulated_board(user, name="board"): a board provisioned for `user` through `mpfleet provision` and run by
    `mpfleet emulate` (the MicroPython unix port, the real firmware), online; returns its uid.
    `.provision(user, name)` only registers it (pending) and `.run(uid)` starts it later; `.stop(uid)` stops it
    (the backend sees it go offline); `.pause(uid)` and `.resume(uid)` hold and release the board (SIGSTOP and
    SIGCONT: a command sent meanwhile stays `sent`). Every board is stopped after the test."""
    flashes = {}  # uid -> (user, flash dir)
    running = {}  # uid -> the `mpfleet emulate` process

    def provision(user, name="board"):
        flash = tmp_path / f"flash-{len(flashes)}"
        provisioned = subprocess.run(
            [MPFLEET, "provision", "--server", server.url, "--token", user.token, "--board", "unix", "--out",
             str(flash), "--name", name, "--mqtt-host", "127.0.0.1", "--period", "5"],
            capture_output=True, text=True, timeout=60)
        assert provisioned.returncode == 0, provisioned.stderr
        uid = json.loads((flash / "config.json").read_text())["mqtt"]["uid"]
        flashes[uid] = (user, flash)
        return uid

    def run(uid, wait_online=True):
        user, flash = flashes[uid]
        log = flash.with_name(flash.name + "-emulate.log")  # a file: a pipe nobody drains would stall the board
        with open(log, "a") as out:
            running[uid] = subprocess.Popen(
                [MPFLEET, "emulate", str(flash)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, firmware_build.CACHE_ENV: str(firmware_build.default_cache_dir())})
        if wait_online:
            wait_until(lambda: rest_call(server.url, user.token, "GET", f"/v1/user/devices/{uid}")[1]["data"]
                       ["status"] == "online", timeout=60, what=f"the emulated board online ({log})")
        return uid

    def stop(uid):
        emulator = running.pop(uid)
        emulator.send_signal(signal.SIGINT)
        try:
            emulator.wait(timeout=20)
        except subprocess.TimeoutExpired:  # never leave a board running after the tests
            os.killpg(emulator.pid, signal.SIGKILL)
            emulator.wait()

    def pause(uid):
        for pid in _boards_of(running[uid].pid):  # (each board is a process group of its own, under the emulator)
            os.kill(pid, signal.SIGSTOP)

    def resume(uid):
        for pid in _boards_of(running[uid].pid):
            os.kill(pid, signal.SIGCONT)

    def start(user, name="board", wait_online=True):
        return run(provision(user, name), wait_online)

    start.provision, start.run, start.stop, start.pause, start.resume = provision, run, stop, pause, resume
    yield start
    for uid in list(running):
        resume(uid)
        stop(uid)


def _boards_of(emulator_pid):
    """The pids of the micropython processes an `mpfleet emulate` runs (its children, from /proc); fails if none."""
    children = Path(f"/proc/{emulator_pid}/task/{emulator_pid}/children").read_text().split()
    boards = [int(pid) for pid in children if b"micropython" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert boards, f"no board runs under the emulator {emulator_pid}"
    return boards
