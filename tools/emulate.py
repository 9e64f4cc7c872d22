"""`mpfleet emulate`: run emulated boards, one MicroPython unix port process per flash directory.

A flash directory is what firmware_build.build() makes plus the config.json and settings.json of `mpfleet provision`.
Each board is started as tools/launcher.py starts every emulated board (its flash directory the working directory,
main.py run with a board's sys.path, optionally a board's heap size), in a process group of its own (a terminal's
Ctrl-C reaches the emulator only, which then stops the boards). Its stdout and stderr are printed line by line as
`[<uid>] <line>`.

Like a board's reset and watchdog:
  exit 75 (machine.reset on the unix port)  restart at once; after RESET_LOOP quick resets in a row, wait as for a crash
  any other exit (a crash, or 0)            restart after 1 s, doubling up to 30 s while it keeps stopping within
                                            HEALTHY_RUN seconds of its start
SIGINT, SIGTERM or SIGHUP stop every board (SIGTERM to its group, SIGKILL after STOP_TIMEOUT) and print a summary.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import files, firmware_build, launcher
from .errors import CommandError

RESET_EXIT = launcher.RESET_EXIT
FIRST_DELAY = 1.0  # seconds before restarting a board that stopped other than by a reset
MAX_DELAY = 30.0
HEALTHY_RUN = 30.0  # a run at least this long resets the delay to FIRST_DELAY
RESET_LOOP = 5  # resets in a row, each within QUICK_RESET of the start, make a reset loop
QUICK_RESET = 1.0
STOP_TIMEOUT = 5.0  # seconds from SIGTERM to SIGKILL
_CHUNK = 65536  # a longer line is printed in pieces


def add_parser(commands):
    parser = commands.add_parser(
        "emulate",
        help="run emulated boards (MicroPython unix port), one per flash directory",
        description="Run one emulated board per flash directory: build the firmware into each (mpy-cross), then "
        "boot it on the MicroPython unix port as a board boots (main.py, a board's sys.path). Output lines "
        "are prefixed with the board's uid (mqtt.uid of its config.json, else the directory name). A board that "
        "resets (exit 75) restarts at once; one that crashes or exits restarts after 1 s, up to 30 s if it keeps "
        "failing. Ctrl-C (or SIGTERM) stops "
        "every board and prints a summary. Make a directory with `mpfleet provision --board unix "
        "--mqtt-host 127.0.0.1 --out DIR`.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="flash directory of one board")
    parser.add_argument("--no-build", action="store_true",
                        help="run what the directories hold as it is, without building the firmware into them")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="download cache of the firmware build, where umqtt.simple is kept after its first "
                        f"download (default: ${firmware_build.CACHE_ENV}, else $XDG_CACHE_HOME/mpfleet, else "
                        "~/.cache/mpfleet)")
    parser.add_argument("--heapsize", metavar="SIZE", type=heap_size,
                        help="MicroPython heap of each board, e.g. 32k as on an ESP8266 (default: the unix port's, "
                        "2 MB)")
    parser.set_defaults(run=run)


def heap_size(text):
    """--heapsize: a number of bytes, optionally with k or m (MicroPython's -X heapsize syntax)."""
    if not re.fullmatch(r"[1-9][0-9]*[kKmM]?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a heap size like 32k")
    return text.lower()


def run(args):
    dirs = check_dirs(args.dirs)
    micropython = launcher.find_micropython()
    if not args.no_build:
        install_firmware(dirs, cache_dir=args.cache)
    for flash in dirs:
        if not (flash / "main.py").is_file():
            raise CommandError(f"{flash}: no main.py to run"
                               + (" (build the firmware into it: drop --no-build)" if args.no_build else ""))
    boards = [Board(flash, uid, micropython, heapsize=args.heapsize)
              for flash, uid in board_names(dirs, warn=not args.no_build)]
    asyncio.run(emulate(boards))


def check_dirs(dirs):
    """The flash directories, resolved, each once; raises CommandError for a missing one or a repeat."""
    seen = {}
    for given in dirs:
        if not given.is_dir():
            raise CommandError(f"{given}: no such directory")
        flash = given.resolve()
        if flash in seen:
            raise CommandError(f"{given} is given twice")
        seen[flash] = given
    return list(seen)


def board_names(dirs, *, warn):
    """(flash, uid) pairs; uid is config.json's mqtt.uid, else the directory name. Refuses a uid used twice."""
    owners = {}
    pairs = []
    for flash in dirs:
        uid = config_uid(flash)
        if uid is None:
            if warn:
                say(f"emulate: {flash} has no device uid in config.json; provision it first "
                    f"(mpfleet provision --board unix --mqtt-host 127.0.0.1 --out {flash})")
            uid = flash.name
        elif uid in owners:
            raise CommandError(f"{owners[uid]} and {flash} are the same device ({uid}): each board needs its own "
                               "`mpfleet provision`")
        else:
            owners[uid] = flash
        pairs.append((flash, uid))
    return pairs


def config_uid(flash):
    try:
        uid = json.loads((flash / "config.json").read_text())["mqtt"]["uid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return uid if isinstance(uid, str) and uid else None


def install_firmware(dirs, *, cache_dir=None):
    """Build the firmware once and copy it into every flash directory; return the files (relative).

    Like firmware_build.build() into each: a stale counterpart (.py of a new .mpy, or the reverse) is removed,
    other files (config.json, ca.pem) are left alone. Raises BuildError.
    """
    say(f"emulate: building the firmware (mpy-cross) for {_count(len(dirs), 'flash directory', 'flash directories')}"
        " ...")
    with tempfile.TemporaryDirectory(prefix="mpfleet-flash-") as staging:
        built = firmware_build.build(staging, cache_dir=cache_dir)
        for flash in dirs:
            for name in built:
                target = flash / name
                target.parent.mkdir(parents=True, exist_ok=True)
                files.remove_stale(target)
                shutil.copyfile(Path(staging, name), target)
    say(f"emulate: installed {len(built)} firmware files into each flash directory")
    return built


def say(line):
    print(line, flush=True)


class Board:
    """One emulated board: its process, restarted until the emulator stops, and its counts."""

    def __init__(self, flash, uid, micropython, *, heapsize=None):
        self.flash = flash
        self.uid = uid
        self.micropython = micropython
        self.heapsize = heapsize
        self.process = None
        self.starts = self.resets = self.other_exits = 0

    def say(self, text):
        sys.stdout.write(f"[{self.uid}] {text}\n")
        sys.stdout.flush()

    async def run(self, stopping):
        """Run, and restart, the board until `stopping` is set."""
        loop = asyncio.get_running_loop()
        delay = FIRST_DELAY
        quick_resets = 0
        while not stopping.is_set():
            started = loop.time()
            code = await self._run_once(stopping)
            if stopping.is_set():
                break
            ran = loop.time() - started
            if ran >= HEALTHY_RUN:
                delay = FIRST_DELAY
            if code == RESET_EXIT:
                self.resets += 1
                quick_resets = quick_resets + 1 if ran < QUICK_RESET else 0
                if quick_resets < RESET_LOOP:
                    self.say("emulate: reset (exit 75), restarting")
                    continue
                quick_resets = 0
                why = f"reset loop ({RESET_LOOP} resets within {QUICK_RESET:g} s of the start)"
            else:
                self.other_exits += 1
                why = _describe(code)
            self.say(f"emulate: {why} after {ran:.1f} s; restarting in {delay:g} s")
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, MAX_DELAY)

    async def _run_once(self, stopping):
        """Start the process, print its output, return its exit code (None when it could not start)."""
        spec = launcher.launch_board(self.flash, heapsize=self.heapsize, micropython=self.micropython)
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.argv, cwd=spec.cwd, env=spec.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0,
            )
        except OSError as error:
            self.say(f"emulate: cannot start {self.micropython}: {error.strerror or error}")
            return None
        self.process = process
        self.starts += 1
        if stopping.is_set():
            self.signal(signal.SIGTERM)
        pump = asyncio.create_task(self._print_lines(process.stdout))
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: never leave the process behind
                self.signal(signal.SIGKILL)
        try:
            await asyncio.wait_for(pump, 2)  # the rest of its output; bounded in case the pipe outlives it
        except TimeoutError:
            pass
        return code

    async def _print_lines(self, stream):
        rest = b""
        while chunk := await stream.read(_CHUNK):
            *lines, rest = (rest + chunk).split(b"\n")
            if len(rest) >= _CHUNK:
                lines.append(rest)
                rest = b""
            if lines:
                prefix = f"[{self.uid}] "
                sys.stdout.write("".join(prefix + _text(line) + "\n" for line in lines))
                sys.stdout.flush()
        if rest:
            self.say(_text(rest))

    def signal(self, sig):
        """Send `sig` to the board's process group, if its process still runs."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass  # it ended and was reaped just now

    def summary(self):
        return _counts(self.starts, self.resets, self.other_exits)


async def emulate(boards):
    """Run `boards` until SIGINT, SIGTERM or SIGHUP; then stop them all and print a summary."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    began = time.monotonic()

    def on_signal(sig):
        if stopping.is_set():  # a second Ctrl-C: do not wait for them
            say(f"emulate: {signal.Signals(sig).name} again, killing the boards")
            for board in boards:
                board.signal(signal.SIGKILL)
        stopping.set()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    say(f"emulate: running {_count(len(boards), 'board')} with "
        f"{boards[0].micropython}; Ctrl-C stops them")
    tasks = [asyncio.create_task(board.run(stopping)) for board in boards]
    waiter = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.set()
        await _stop(boards, tasks)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        for sig in handled:
            loop.remove_signal_handler(sig)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, BrokenPipeError):  # e.g. `mpfleet emulate DIR | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise CommandError("the output was closed (broken pipe); stopped the boards")
        if error:
            raise error  # a bug of the emulator itself: not hidden behind a clean summary
    seconds = time.monotonic() - began
    for board in boards:
        board.say(f"emulate: {board.summary()}")
    totals = _counts(*(sum(counts) for counts in zip(*((b.starts, b.resets, b.other_exits) for b in boards))))
    say(f"emulate: stopped {_count(len(boards), 'board')} after {seconds:.1f} s ({totals})")


async def _stop(boards, tasks):
    for board in boards:
        board.signal(signal.SIGTERM)
    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
    if pending:
        say(f"emulate: {_count(len(pending), 'board')} did not stop within {STOP_TIMEOUT:g} s, killing them")
        for board in boards:
            board.signal(signal.SIGKILL)
        _, pending = await asyncio.wait(pending, timeout=STOP_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _counts(starts, resets, other_exits):
    crashes = _count(other_exits, "crash or exit", "crashes or exits")
    return f"{_count(starts, 'start')}, {_count(resets, 'reset')}, {crashes}"


def _count(n, one, many=None):
    return f"{n} {one if n == 1 else many or one + 's'}"


def _describe(code):
    if code is None:
        return "could not start"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "exited (code 0)" if code == 0 else f"crashed (exit {code})"


def _text(raw):
    return raw.decode("utf-8", "replace").rstrip("\r")
