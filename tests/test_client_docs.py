"""docs/cli.md runs as written: its bash blocks, in order, in one shell (`set -e`), against a real `mpfleet serve` and
an emulated board, with the variables the page names (SERVER, TOKEN, DEVICE) and a HOME of the client's own."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .server_process import MPFLEET
from .test_client import CLIENT_COMMANDS, _cache_env, board, server  # noqa: F401: the module's fixtures, one server and board here too

pytestmark = pytest.mark.network

DOC = Path(__file__).parent.parent / "docs" / "cli.md"
_BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def bash_blocks():
    return _BASH.findall(DOC.read_text())


# Shown in the page's prose, not run: they would restart or unconfigure its one board halfway through.
NOT_RUN = (["bulk", "reboot"], ["bulk", "wifi-reset"])


def test_the_page_has_an_example_of_every_client_command():
    text = "\n".join(bash_blocks())
    missing = [" ".join(command) for command in CLIENT_COMMANDS if command not in NOT_RUN
               and not re.search(rf"\bmpfleet {re.escape(' '.join(command))}\b", text)]
    assert missing == []
    for sub in ("--ttl", "--wait"):
        assert sub in text, sub
    prose = DOC.read_text()
    assert all(f"bulk {' '.join(command[1:])}" in prose for command in NOT_RUN)


def test_every_example_runs_as_written(server, board, tmp_path):  # noqa: F811: the fixtures imported above
    script = "set -euo pipefail\nset -x\n" + "\n".join(bash_blocks())
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPFLEET_")}
    env.update(_cache_env(), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), SERVER=server.url,
               TOKEN=server.token, DEVICE=board, PATH=f"{Path(MPFLEET).parent}{os.pathsep}{env['PATH']}")
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "updated to Release build 0.2.0" in result.stdout
    assert not (home / ".config" / "mpfleet" / "login.json").exists()  # the last example logs out
    uids = [d["uid"] for d in server.call("GET", "/v1/user/devices")[1]["data"]]
    spare = json.loads((tmp_path / "spare-board" / "config.json").read_text())["mqtt"]["uid"]
    assert board in uids and spare not in uids
