"""`mpfleet serve` as a real process on a free port, for tests that need the command itself."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MPFLEET = str(Path(sys.executable).with_name("mpfleet"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The server's output goes to `log_path` beside its data dir: a pipe nobody drains while the
    test runs would stall the server once full."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir.with_name(self.data_dir.name + "-serve.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=15):
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [MPFLEET, "serve", "--data", str(self.data_dir), "--host", "127.0.0.1", "--http-port", str(self.port),
                 "--mqtt-port", "0", "--mqtt-tls-port", "0"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("mpfleet serve exited:\n" + self.log_path.read_text())
            try:
                urllib.request.urlopen(self.url + "/v1/platforms", timeout=1).close()
                return self
            except OSError:
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
