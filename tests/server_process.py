"""`mpfleet serve` as a real process on a free port, for tests that need the command itself."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

MPFLEET = str(Path(sys.executable).with_name("mpfleet"))
# The tests poll at 20-50 requests a second with one token, past the default limits: the servers they start have
# none, unless their args say otherwise (the last value wins). tests/test_rate_limits.py tests the limits; the
# walkthroughs of the docs start `mpfleet serve` as written, with the defaults.
NO_RATE_LIMIT = ("--rate-limit-read", "0", "--rate-limit-write", "0")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url):
    """Whether the mpfleet server at `url` answers (its catalog, which needs no token)."""
    try:
        urllib.request.urlopen(url + "/v1/platforms", timeout=1).close()
        return True
    except OSError:
        return False


def rest_call(base_url, token, method, path, body=None):
    """(status, JSON answer) of one REST request with `token`."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def memory_kb(pid, field):
    """VmRSS, VmHWM, ... of /proc/<pid>/status, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class ServerProcess:
    """The server's output goes to `log_path` beside its data dir: a pipe nobody drains while the
    test runs would stall the server once full.

    `args` replace the default broker options (the embedded broker on ports the OS picks), e.g.
    `["--broker", url, ...]` for an external Mosquitto.
    """

    def __init__(self, data_dir, args=("--mqtt-port", "0", "--mqtt-tls-port", "0")):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir.with_name(self.data_dir.name + "-serve.log")
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    @property
    def token(self):
        """The admin's API token, made by the first start."""
        return (self.data_dir / "admin.token").read_text().strip()

    def start(self, timeout=15):
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [MPFLEET, "serve", "--data", str(self.data_dir), "--host", "127.0.0.1", "--http-port", str(self.port),
                 "--device-port", "0", *NO_RATE_LIMIT, *self.args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("mpfleet serve exited:\n" + self.log_path.read_text())
            if answers(self.url):
                return self
            time.sleep(0.05)
        raise TimeoutError("mpfleet serve did not answer")

    def stop(self, sig=signal.SIGINT):
        """Stop the server; return everything it printed."""
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log_path.read_text()

    def memory_kb(self, field="VmRSS"):
        return memory_kb(self.process.pid, field)

    def call(self, method, path, body=None):
        """(status, JSON answer) of one REST request as the admin."""
        return rest_call(self.url, self.token, method, path, body)

    def register(self, name="sensor"):
        """A new unix device of the admin: its registration answer's `data`."""
        status, body = self.call("POST", "/v1/user/devices", {"name": name, "platform": "unix", "board": "unix"})
        assert status == 201, body
        return body["data"]
