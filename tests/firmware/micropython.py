"""Run code on the emulated board: the real `micropython` unix port, as a subprocess, in a flash directory, started
by the board launcher (tools/launcher.py) as every emulated board is.

Firmware logic is never imported into CPython; every firmware test goes through run().
"""

import subprocess
from dataclasses import dataclass

from mpfleet.tools.launcher import launch_code


@dataclass
class Result:
    code: int  # exit code: 0 ok, 1 an uncaught exception (its traceback is in out)
    out: str  # stdout; the unix port prints uncaught tracebacks there too
    err: str

    def __str__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def run(code, flash, *, path_before=(), heapsize=None, timeout=10):
    """Run the MicroPython source `code` with `flash` as the working directory and a board's sys.path.

    sys.path is the given `path_before` directories (e.g. stubs hiding a built-in module), then a board's:
    "" (the flash), ".frozen" (the port's frozen modules), "lib". `heapsize` is `-X heapsize=`, e.g. "16k".
    """
    spec = launch_code(flash, code, heapsize=heapsize, path_before=path_before)
    done = subprocess.run(spec.argv, cwd=spec.cwd, env=spec.env, capture_output=True, text=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def check(code, flash, **kw):
    """run(), assert it exited 0, return its stdout."""
    result = run(code, flash, **kw)
    assert result.code == 0, str(result)
    return result.out
