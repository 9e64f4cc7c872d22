"""An emulated board whose REPL is on a pseudo-terminal, for `mpfleet deploy` as a maker runs it on a USB board.

    board = PtyBoard(flash_dir, tmp_path / "ttyBOARD").start()   # a bare REPL on the port, nothing running
    board.start(app=True)                                         # or the board running its app, the REPL after
    mpfleet deploy --port board.port ...                          # mpremote opens board.port as a serial port
    board.wait_gone()                                             # deploy's reset ends the unix port's process
    board.boot()                                                  # then the board starts for real: -m main
    board.drop()                                                  # the cable pulled: the port vanishes

The board is the real MicroPython unix port, started as tools/launcher.py starts a board (cwd = the flash,
MICROPYPATH a board's sys.path) but without `-m main`: its REPL, the same raw REPL and raw-paste an ESP board's
UART offers (unix port, MicroPython >= 1.27), on a pseudo-terminal that socat makes (`make socat`) and links at
`port`. A soft reset in raw REPL ends the unix process instead of restarting it, so what a board does after
deploy's reset (boot its flash) is boot(): a separate process, the launcher's own, with its output kept.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from mpfleet.tools.launcher import launch_board, launch_code

SOCAT = "socat"


class PtyBoard:
    def __init__(self, flash, port):
        self.flash = Path(flash)
        self.port = str(port)
        self.repl = None  # socat, with the REPL's micropython as its child
        self.running = None  # the board booted for real (boot())
        self.log_path = self.flash.with_name(self.flash.name + "-boot.log")

    def start(self, timeout=5, *, app=False):
        """The bare REPL on `port`, or with `app` the board running its flash (`-m main`) with its output on `port`
        and the REPL after it (`-i`), as on a UART: Ctrl-C there stops the app with KeyboardInterrupt (the
        pseudo-terminal is its controlling terminal and turns Ctrl-C into SIGINT; the REPL then reads it raw). Returns
        self once the port exists."""
        self.flash.mkdir(parents=True, exist_ok=True)
        if app:
            spec = launch_board(self.flash)  # as a board boots, then its REPL
            command = " ".join([spec.argv[0], "-i", *spec.argv[1:]])
            tty = "pty,setsid,ctty,echo=0,opost=0,stderr"  # not raw: ISIG on; opost off, as a UART adds no \r
        else:
            spec = launch_code(self.flash, "")  # a board's cwd and env; its argv without a script: the REPL
            command, tty = spec.argv[0], "pty,raw,echo=0,stderr"
        self.repl = subprocess.Popen(
            [SOCAT, f"PTY,link={self.port},raw,echo=0", f"EXEC:{command},{tty}"],
            cwd=spec.cwd, env=spec.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.port):
            if self.repl.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat did not make {self.port} (exit {self.repl.poll()})")
            time.sleep(0.01)
        return self

    def wait_gone(self, timeout=5):
        """Wait for the REPL's process to end (deploy's reset ends it); its exit code, socat's."""
        return self.repl.wait(timeout=timeout)

    def drop(self):
        """The board drops off: its REPL process and the pseudo-terminal go at once, as a pulled USB cable."""
        if self.repl and self.repl.poll() is None:
            os.killpg(self.repl.pid, signal.SIGKILL)
            self.repl.wait()

    def boot(self):
        """The board starts from its flash, as after a reset: `micropython -m main` (tools/launcher.py); its output
        goes to log_path."""
        spec = launch_board(self.flash)
        with open(self.log_path, "a") as log:
            self.running = subprocess.Popen(spec.argv, cwd=spec.cwd, env=spec.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self):
        """Everything this board started, ended."""
        self.drop()
        if self.running and self.running.poll() is None:
            os.killpg(self.running.pid, signal.SIGTERM)
            try:
                self.running.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.running.pid, signal.SIGKILL)
                self.running.wait()
