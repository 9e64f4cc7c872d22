"""Emulated boards for the device tests: the real `micropython` running the built firmware from a flash dir.

    flash = make_flash(built_flash, tmp_path / "flash", registration)   # a copy, plus config.json
    async with Board(flash) as board:          # boots it (tools/launcher.py), restarts it like the emulator
        await board.wait_for("link: online")
    board.lines                                # every log line, with "--- exit N" between runs

A run that exits with 75 (machine.reset of the unix board layer) is started again at once; any other
exit after a short pause, as a watchdog would. Asyncio subprocesses, so an in-process backend keeps serving.
"""

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

from mpfleet.tools.launcher import RESET_EXIT, launch_board

WATCHDOG_PAUSE = 0.5


def config_for(registration, **overrides):
    """config.json for a board registered as `registration`, its broker at 127.0.0.1 (as `mpfleet provision` writes
    it, less the indentation)."""
    mqtt = registration["mqtt"]
    cfg = {
        "wifi": {"ssid": "lab", "password": "secret"},
        "mqtt": {"host": "127.0.0.1", "port": mqtt["port"], "uid": registration["uid"],
                 "password": mqtt["password"], "ca": mqtt["ca_cert"]},
        "board": "unix",
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def make_flash(built, flash, registration=None, *, period=5, **overrides):
    """A copy of the built flash `built` at `flash`, with config.json for `registration` (if given) and settings.json
    with the telemetry `period`."""
    shutil.copytree(built, flash)
    if registration is not None:
        (Path(flash) / "config.json").write_text(json.dumps(config_for(registration, **overrides)))
        (Path(flash) / "settings.json").write_text(json.dumps({"period": period}))
    return Path(flash)


class Board:
    def __init__(self, flash, *, heapsize=None):
        self.flash = Path(flash)
        self.heapsize = heapsize
        self.lines = []
        self.exits = []  # exit codes of the runs so far
        self._proc = None
        self._task = None
        self._stopping = False
        self._changed = asyncio.Event()

    async def __aenter__(self):
        self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()

    def start(self):
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self):
        spec = launch_board(self.flash, heapsize=self.heapsize)  # as `mpfleet emulate` starts a board
        while not self._stopping:
            self._proc = await asyncio.create_subprocess_exec(
                *spec.argv, cwd=spec.cwd, env=spec.env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            while line := await self._proc.stdout.readline():
                self._add(line.decode(errors="replace").rstrip("\n"))
            code = await self._proc.wait()
            self.exits.append(code)
            self._add(f"--- exit {code}")
            if code != RESET_EXIT and not self._stopping:
                await asyncio.sleep(WATCHDOG_PAUSE)

    def _add(self, line):
        self.lines.append(line)
        self._changed.set()

    async def wait_for(self, pattern, timeout=5.0, start=0):
        """The first match of regex `pattern` in a line from index `start` on; fails after `timeout` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        while True:
            for i in range(seen, len(self.lines)):
                match = regex.search(self.lines[i])
                if match:
                    return match
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or (self._task and self._task.done()):
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.log()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def mark(self):
        """The index of the next line, for wait_for(start=...)."""
        return len(self.lines)

    def log(self):
        return "\n".join(self.lines)

    async def stop(self):
        self._stopping = True
        if self._proc and self._proc.returncode is None:
            self._proc.terminate()
        if self._task:
            try:
                await asyncio.wait_for(self._task, 5)
            except TimeoutError:
                self._proc.kill()
                await self._task
