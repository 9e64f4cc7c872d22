"""docs/ota.md's walk-through, run as it is written: its shell block in bash, in an empty directory, with the
installed `mpfleet` first on PATH — serve, provision, emulate, bundle, curl — until the job ends `updated`.

The only changes are the ports (free ones instead of 8080 and the defaults, and provision told so by
$MPFLEET_SERVER), so that the test runs beside others.
"""

import re
from pathlib import Path

import pytest

from .maker_shell import maker_env, run_script
from .server_process import free_port

pytestmark = pytest.mark.network  # the firmware build fetches umqtt.simple from the package index once

DOC = Path(__file__).resolve().parent.parent / "docs" / "ota.md"


def walk_through():
    """The first ```sh block after the heading `## Try it with an emulated board`."""
    text = DOC.read_text()
    section = text.split("## Try it with an emulated board", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_ota_walk_through_of_the_docs_runs_and_ends_updated(tmp_path):
    script = walk_through()
    http = free_port()
    serve = "mpfleet serve --data var --public-host 127.0.0.1"  # then its ports
    assert serve in script and "http://127.0.0.1:8080" in script
    script = script.replace(serve, f"{serve} --http-port {http} --device-port 0 --mqtt-port 0 --mqtt-tls-port 0")
    script = script.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{http}")
    # Background jobs (serve, emulate) stopped whatever happens; every command must succeed.
    env = maker_env(MPFLEET_SERVER=f"http://127.0.0.1:{http}")  # provision's default server, on that port
    result = run_script(script, cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    last = result.stdout.strip().splitlines()[-1]  # the job, as the last curl printed it
    assert re.search(r'"state": *"updated"', last), output[-4000:]
    assert re.search(r'"version": *"0.2.0"', last)
