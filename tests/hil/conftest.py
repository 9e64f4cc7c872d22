"""Fixtures of the hardware-in-the-loop steps (test_board.py): one target, one backend and one user's shell for
the whole module; the steps run in file order on the same board.

`target` is parametrized: `emulated` runs in the default suite and is skipped when --port is given; `board` (a real
board on --port) is skipped without it. The options are in options.py (registered by tests/conftest.py).
"""

import json
import os
import subprocess

import pytest
from mpfleet.tools import firmware_build

from ..server_process import MPFLEET, ServerProcess
from .targets import BoardTarget, EmulatedTarget


@pytest.fixture(scope="module", params=["emulated", "board"])
def target(request, tmp_path_factory):
    options = request.config.option
    if request.param == "emulated":
        if options.port:
            pytest.skip(f"--port {options.port} given: the real board is tested instead of the emulated one")
        chosen = EmulatedTarget(tmp_path_factory.mktemp("hil-emulated"))
    else:
        if not options.port:
            pytest.skip("no real board: give --port PORT --board KEY (docs/hil.md); the emulated run covers the "
                        "same steps")
        chosen = BoardTarget(options)
        if chosen.problems():
            pytest.fail("; ".join(chosen.problems()), pytrace=False)
    try:
        yield chosen
    finally:
        chosen.stop()


@pytest.fixture(scope="module")
def hil(target, tmp_path_factory):
    """The run shared by the steps: the backend, a logged-in user, what earlier steps made."""
    root = tmp_path_factory.mktemp("hil")
    server = ServerProcess(root / "var", args=target.server_args()).start()
    run = Run(target, server, root)
    try:
        done = run.mpfleet("login", "--url", server.url, "--token", server.token)
        assert done.returncode == 0, done.stderr
        yield run
    finally:
        server.stop()


class Run:
    """A user's shell: `mpfleet(...)` runs the installed command with a HOME of its own (its login file there);
    `passed` names the steps that passed, `need()` skips a step whose earlier step did not."""

    def __init__(self, target, server, root):
        self.target = target
        self.server = server
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.uid = None
        self.passed = set()

    def mpfleet(self, *args, timeout=120):
        """`mpfleet ARGS` as typed in the user's shell: (CompletedProcess)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
        env = {**clean, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"), "COLUMNS": "200",
               firmware_build.CACHE_ENV: str(firmware_build.default_cache_dir())}  # the user's download cache
        return subprocess.run([MPFLEET, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)

    def ok(self, *args, timeout=120):
        """stdout of `mpfleet ARGS`, which must exit 0."""
        done = self.mpfleet(*args, timeout=timeout)
        assert done.returncode == 0, f"mpfleet {' '.join(map(str, args))} exited {done.returncode}:\n" \
                                     f"{done.stdout}\n{done.stderr}\nboard console:\n{self.target.console()[-3000:]}"
        return done.stdout

    def json(self, *args, timeout=120):
        return json.loads(self.ok(*args, "--json", timeout=timeout))

    def need(self, step):
        if step not in self.passed:
            pytest.skip(f"the {step} step did not run or did not pass")

    def device(self):
        """The device's detail, from the REST API."""
        status, body = self.server.call("GET", f"/v1/user/devices/{self.uid}")
        assert status == 200, body
        return body["data"]
