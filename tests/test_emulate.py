"""`mpfleet emulate` as a real process, on stub main.py files run by the MicroPython unix port (--no-build).

The stub keeps a boot counter in its flash directory: it exits 75 (a reset) while n < resets, raises while
n < resets + crashes, then prints "steady" and sleeps.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from mpfleet.tools import emulate, firmware_build

from .server_process import MPFLEET

STUB = """\
import sys, time
try:
    n = int(open("count").read())
except OSError:
    n = 0
open("count", "w").write(str(n + 1))
print("boot", n)
if n < {resets}:
    sys.exit(75)
if n < {resets} + {crashes}:
    raise ValueError("boom")
if n < {resets} + {crashes} + {exits}:
    sys.exit(0)
print("steady")
while True:
    time.sleep(1)
"""


def flash_dir(path, uid=None, *, resets=0, crashes=0, exits=0):
    path.mkdir(parents=True)
    (path / "main.py").write_text(STUB.format(resets=resets, crashes=crashes, exits=exits))
    if uid:
        (path / "config.json").write_text(json.dumps({"mqtt": {"uid": uid}, "board": "unix"}))
    return path


def micropython_processes_in(root):
    """Pids of the micropython processes whose working directory is under `root`."""
    root = str(Path(root).resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # gone, or a zombie
            continue
        if b"micropython" in cmdline and (cwd == root or cwd.startswith(root + "/")):
            found.append(int(proc.name))
    return found


class Emulator:
    """`mpfleet emulate --no-build DIR...` in the background; its output lines, with the time each arrived."""

    def __init__(self, *dirs):
        self.process = subprocess.Popen(
            [MPFLEET, "emulate", "--no-build", *map(str, dirs)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines = []  # (monotonic time, line)
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self):
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, *wanted, after=0, timeout=15):
        """Wait until a line matching each regex in `wanted` was printed (after time `after`); return the time
        each first arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                seen = {w: next((t for t, line in self.lines if t > after and re.fullmatch(w, line)), None)
                        for w in wanted}
                if None not in seen.values():
                    return [seen[w] for w in wanted]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"never printed {[w for w in wanted if seen[w] is None]}:\n{self.output}")
                self._changed.wait(min(left, 0.5))

    def stop(self, sig=signal.SIGINT, timeout=15):
        """Send `sig`; return the exit code once it is gone and all its output is read."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def run_emulator(tmp_path):
    started = []

    def start(*dirs):
        started.append(Emulator(*dirs))
        return started[-1]

    yield start
    for emulator in started:
        emulator.kill()
    for pid in micropython_processes_in(tmp_path):  # only after a failure: never leave boards running
        os.kill(pid, signal.SIGKILL)


def test_lines_carry_the_uid_and_a_reset_restarts_at_once(tmp_path, run_emulator):
    a = flash_dir(tmp_path / "a", "unix_TestBoardA", resets=2)
    plain = flash_dir(tmp_path / "plain")  # no config.json: the directory name stands for the uid
    emulator = run_emulator(a, plain)
    first, third, _ = emulator.wait_for(r"\[unix_TestBoardA\] boot 0", r"\[unix_TestBoardA\] boot 2",
                                        r"\[plain\] steady")
    emulator.wait_for(r"\[unix_TestBoardA\] steady")
    assert third - first < emulate.FIRST_DELAY  # no watchdog delay after a reset

    board_a = [line for _, line in emulator.lines if line.startswith("[unix_TestBoardA] ")]
    assert board_a == [
        "[unix_TestBoardA] boot 0", "[unix_TestBoardA] emulate: reset (exit 75), restarting",
        "[unix_TestBoardA] boot 1", "[unix_TestBoardA] emulate: reset (exit 75), restarting",
        "[unix_TestBoardA] boot 2", "[unix_TestBoardA] steady",
    ]
    assert (a / "count").read_text() == "3"

    assert emulator.stop(signal.SIGINT) == 0
    assert "[unix_TestBoardA] emulate: 3 starts, 2 resets, 0 crashes or exits" in emulator.output
    assert "[plain] emulate: 1 start, 0 resets, 0 crashes or exits" in emulator.output
    assert re.search(r"^emulate: stopped 2 boards after [\d.]+ s \(4 starts, 2 resets, 0 crashes or exits\)$",
                     emulator.output, re.M)
    assert micropython_processes_in(tmp_path) == []


def test_a_crash_or_an_exit_restarts_after_a_delay(tmp_path, run_emulator):
    crash = flash_dir(tmp_path / "crash", "unix_Crash", crashes=1)
    done = flash_dir(tmp_path / "done", "unix_Done", exits=1)
    looping = flash_dir(tmp_path / "loop", "unix_Loop", resets=1000)  # resets for ever
    emulator = run_emulator(crash, done, looping)
    crashed, rebooted = emulator.wait_for(
        r"\[unix_Crash\] emulate: crashed \(exit 1\) after [\d.]+ s; restarting in 1 s", r"\[unix_Crash\] boot 1")
    emulator.wait_for(r"\[unix_Crash\] steady", r"\[unix_Done\] steady",
                      r"\[unix_Done\] emulate: exited \(code 0\) after [\d.]+ s; restarting in 1 s")
    assert rebooted - crashed >= 0.9
    # A reset loop is slowed down like a crash.
    (looped,) = emulator.wait_for(r"\[unix_Loop\] emulate: reset loop \(5 resets within 1 s of the start\) "
                                  r"after [\d.]+ s; restarting in 1 s")
    (rebooted,) = emulator.wait_for(r"\[unix_Loop\] boot \d+", after=looped)
    assert rebooted - looped >= 0.9
    assert "[unix_Crash] ValueError: boom" in emulator.output  # the traceback, prefixed like any line
    assert emulator.stop(signal.SIGINT) == 0
    assert "[unix_Crash] emulate: 2 starts, 0 resets, 1 crash or exit" in emulator.output
    assert micropython_processes_in(tmp_path) == []


def test_thirty_boards_at_once_all_print_and_sigterm_stops_them(tmp_path, run_emulator):
    uids = [f"unix_Fleet{i:02d}" for i in range(30)]
    dirs = [flash_dir(tmp_path / uid.lower(), uid) for uid in uids]
    emulator = run_emulator(*dirs)
    emulator.wait_for(*(rf"\[{uid}\] steady" for uid in uids), timeout=20)
    assert len(micropython_processes_in(tmp_path)) == 30
    assert emulator.stop(signal.SIGTERM) == 0
    assert "emulate: stopped 30 boards" in emulator.output
    for _, line in emulator.lines:  # whole lines only, never two boards' output mixed in one
        assert re.fullmatch(r"\[unix_Fleet\d\d\] (boot 0|steady|emulate: 1 start, 0 resets, 0 crashes or exits)"
                            r"|emulate: .*", line), line
    assert micropython_processes_in(tmp_path) == []


async def test_a_board_that_ignores_sigterm_is_killed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(emulate, "STOP_TIMEOUT", 0.3)
    flash = tmp_path / "stubborn"
    flash.mkdir()
    stand_in = tmp_path / "micropython"  # a stand-in for micropython that ignores SIGTERM (and its arguments)
    stand_in.write_text("#!/bin/sh\ntrap '' TERM\necho $$ > pid\necho stubborn\nexec sleep 30\n")
    stand_in.chmod(0o755)
    board = emulate.Board(flash, "unix_Stubborn", str(stand_in))

    async def interrupt():
        for _ in range(200):
            if (flash / "pid").exists() and "stubborn" in capsys.readouterr().out:
                break
            await asyncio.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by emulate()'s loop signal handler

    task = asyncio.create_task(interrupt())
    await asyncio.wait_for(emulate.emulate([board]), 10)
    await task
    pid = int((flash / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists()
    out = capsys.readouterr().out
    assert "emulate: 1 board did not stop within 0.3 s, killing them" in out
    assert "[unix_Stubborn] emulate: 1 start, 0 resets, 0 crashes or exits" in out


def test_a_board_runs_with_a_boards_sys_path_and_the_heap_given(tmp_path, run_emulator):
    flash = tmp_path / "heap"
    flash.mkdir()
    (flash / "main.py").write_text("import gc, sys, time\nprint('path', sys.path, 'heap', gc.mem_free() + gc.mem_alloc())"
                                   "\nwhile True:\n    time.sleep(1)\n")
    emulator = run_emulator("--heapsize", "48k", flash)
    emulator.wait_for(r"\[heap\] path \['', '.frozen', 'lib'\] heap 4\d{4}")  # the flash is '', as on a board
    heap = int(next(line for _, line in emulator.lines if " heap " in line).rsplit(" ", 1)[1])
    assert 46 * 1024 <= heap <= 48 * 1024
    assert emulator.stop(signal.SIGINT) == 0


def test_errors_are_one_line(tmp_path):
    def run(*args):
        return subprocess.run([MPFLEET, "emulate", *map(str, args)], capture_output=True, text=True, timeout=30)

    missing = run("--no-build", tmp_path / "nowhere")
    assert (missing.returncode, missing.stderr) == (1, f"mpfleet: {tmp_path / 'nowhere'}: no such directory\n")
    (tmp_path / "empty").mkdir()
    empty = run("--no-build", tmp_path / "empty")
    assert (empty.returncode, empty.stderr) == (
        1, f"mpfleet: {tmp_path / 'empty'}: no main.py to run (build the firmware into it: drop --no-build)\n")
    one = flash_dir(tmp_path / "one", "unix_Same")
    two = flash_dir(tmp_path / "two", "unix_Same")
    twice = run("--no-build", one, two)
    assert twice.returncode == 1 and twice.stderr.count("\n") == 1
    assert "are the same device (unix_Same)" in twice.stderr
    assert run("--help").stdout.count("--no-build") >= 1
    bad_heap = run("--heapsize", "lots", one)
    assert bad_heap.returncode == 2 and "'lots' is not a heap size like 32k" in bad_heap.stderr


def test_the_firmware_is_built_once_into_every_directory(tmp_path, capsys):
    # A cache already holding umqtt.simple: no network needed.
    umqtt = tmp_path / "cache" / f"umqtt.simple-{firmware_build.UMQTT_VERSION}" / "umqtt" / "simple.py"
    umqtt.parent.mkdir(parents=True)
    umqtt.write_text("class MQTTClient:\n    def connect(self):\n        pass\n")
    one = tmp_path / "one"
    two = flash_dir(tmp_path / "two", "unix_Two")
    one.mkdir()
    (one / "md5.py").write_text("stale = True\n")  # a source left over: the new md5.mpy must not be shadowed

    files = emulate.install_firmware([one, two], cache_dir=tmp_path / "cache")
    assert "lib/umqtt/simple.mpy" in files and "link.mpy" in files and "md5.mpy" in files and "config.mpy" in files
    for flash in (one, two):
        for name in files:
            assert (flash / name).is_file(), name
        assert not (flash / "md5.py").exists()
    assert json.loads((two / "config.json").read_text())["mqtt"]["uid"] == "unix_Two"  # left alone
    assert "emulate: building the firmware (mpy-cross) for 2 flash directories" in capsys.readouterr().out
