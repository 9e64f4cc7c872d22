"""docs/hil.md's pytest command lines, run as written with the values its shell lines give their variables: pytest
must take every option and select the hil steps (collected only: no board is here, and no fixture opens the port or
reads the image)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hil.md"
# Only the plugin the suite's configuration needs: the others installed (schemathesis's, hypothesis's) take ~3 s
# to load, and collecting loads nothing else of theirs.
QUICK_START = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
STEPS = 8  # test_board.py's steps, each for the emulated and for a real board


def shell_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def pytest_commands():
    """(variables, line) of each pytest line of the doc's sh blocks: the variables its block assigns before it."""
    found = []
    for block in shell_blocks(DOC.read_text()):
        variables = {}
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "export":
                words = words[1:]
            if len(words) == 1 and "=" in words[0]:
                name, value = words[0].split("=", 1)
                variables[name] = value
            elif words[:3] == [".venv/bin/python", "-m", "pytest"]:
                found.append((variables, line))
    return found


def test_the_docs_pytest_commands_take_their_options_and_select_the_steps():
    commands = pytest_commands()
    assert len(commands) == 2, commands  # the emulated run and the real board's
    runs = []
    for variables, line in commands:  # both at once: most of each is pytest's start-up
        expanded = re.sub(r'"?\$(\w+)"?', lambda m: shlex.quote(variables[m.group(1)]), line)
        argv = [sys.executable, *shlex.split(expanded)[1:], "--collect-only", "--verbosity=-1", "-p", "no:cacheprovider",
                "-p", "pytest_asyncio.plugin"]
        runs.append((line, subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env={**os.environ, **QUICK_START})))
    for line, run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, (line, out[-2000:], err[-2000:])
        collected = [n for n in out.splitlines() if n.startswith("tests/hil/test_board.py::")]
        assert len(collected) == 2 * STEPS, (line, out[-2000:])
