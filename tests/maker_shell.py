"""A maker's shell, for the commands of the docs and the README run as written: bash, with the virtual environment's
bin/ first on PATH (mpfleet, micropython, esptool) and none of the tester's own MPFLEET_* variables.

    env = maker_env(MPFLEET_URL=url)          # os.environ so, plus what the walkthrough assumes
    done = run_script(script, cwd=tmp_path, env=env)
    with running_script(script, cwd=tmp_path, env=env) as done:   # its background jobs live on until the block ends
        ...                                                        # (a board checked after the script's last line)

run_script() stops at the first command that fails (`set -euo pipefail`) and, whatever happens, ends every job the
script left in the background (a server, an emulator, socat) when the script ends: a walkthrough's background
commands never outlive its test. running_script() keeps them running until its block ends, then ends the script's
whole process group (an emulator stops its boards on that SIGTERM).
"""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
# `|| true`: a kill that fails (no job left: kill's usage error) would otherwise end the trap under `set -e` with
# its own status, 2, in place of the script's.
STRICT = "set -euo pipefail\n"
STOP_JOBS = "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n"


def maker_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def run_script(script, *, cwd, env, timeout=180):
    """The CompletedProcess of `script` (text output captured), run as the module says."""
    return subprocess.run(["bash", "-c", STRICT + STOP_JOBS + script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


@contextmanager
def running_script(script, *, cwd, env, timeout=180):
    """The CompletedProcess of `script` once it ended, its background jobs still running until the block ends."""
    process = subprocess.Popen(["bash", "-c", STRICT + script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        yield subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:  # nothing of it left
            pass
