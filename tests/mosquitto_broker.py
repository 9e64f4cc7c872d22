"""A real Mosquitto 2 with the dynamic security plugin, run as a child process for tests.

Needs the Debian package `mosquitto` (the broker, its dynamic security plugin and
`mosquitto_ctrl`). The system service is never used: each broker gets its own
config, ports, dynsec file and log in a work directory, and dies with `stop()`.
"""

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from mpfleet.backend.broker.limits import MAX_PACKET_BYTES

ADMIN_USERNAME = "mpfleet-admin"
MAX_INFLIGHT_MESSAGES = 10_000
MAX_QUEUED_MESSAGES = 1_000_000
_PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto*/mosquitto_dynamic_security.so",
                 "/usr/local/lib/mosquitto_dynamic_security.so")
_START_ATTEMPTS = 3  # the free ports we pick can be taken before mosquitto binds them
_LOG_TAIL_LINES = 30


class MosquittoError(RuntimeError):
    pass


class MosquittoBroker:
    """`start()` / `stop()` are synchronous (a subprocess and a short poll of the ports).

    `tls` needs `ca_cert`, `server_cert` and `server_key` paths (backend/broker/tls.py's TlsFiles).
    """

    def __init__(self, work_dir, tls, *, admin_password=None):
        self.work_dir = Path(work_dir)
        self.tls = tls
        self.admin_username = ADMIN_USERNAME
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.plain_port = None
        self.tls_port = None
        self.process = None

    @property
    def url(self):
        return f"mqtt://{self.admin_username}:{self.admin_password}@127.0.0.1:{self.plain_port}"

    def backend_settings(self):
        """The Settings of a backend that runs on this broker (its admin URL, its TLS port and CA for the boards)."""
        return {"broker_url": self.url, "mqtt_tls_port": self.tls_port, "broker_ca_file": str(self.tls.ca_cert)}

    @property
    def config_path(self):
        return self.work_dir / "mosquitto.conf"

    @property
    def dynsec_path(self):
        return self.work_dir / "dynamic-security.json"

    @property
    def log_path(self):
        return self.work_dir / "mosquitto.log"

    def start(self, timeout=10):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.dynsec_path.exists():  # a restart keeps the accounts made so far
            self._init_dynsec()
        for attempt in range(_START_ATTEMPTS):
            if attempt or self.plain_port is None:  # a restart keeps its ports while they are free
                self.plain_port, self.tls_port = _free_port(), _free_port()
            self.config_path.write_text(self._config())
            with open(self.stderr_path, "wb") as stderr:  # never a pipe: nobody would drain it
                self.process = subprocess.Popen(["mosquitto", "-c", str(self.config_path)],
                                                stdout=subprocess.DEVNULL, stderr=stderr)
            if self._wait_ready(timeout):
                return self
            output = self._reap()
            if "Address already in use" not in output or attempt == _START_ATTEMPTS - 1:
                raise MosquittoError("mosquitto exited at start\n" + output)
        return self

    def stop(self, timeout=5):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise MosquittoError("mosquitto ignored SIGTERM\n" + self.log_tail())
        finally:
            self.process = None

    @property
    def stderr_path(self):
        return self.work_dir / "mosquitto.stderr"

    def log_tail(self):
        """The end of the log and of stderr (where mosquitto writes before its log is open)."""
        return "\n".join(_tail(path) for path in (self.stderr_path, self.log_path))

    def _init_dynsec(self):
        # mosquitto_ctrl writes the admin with the plugin's own password hashing,
        # which we would otherwise have to reproduce.
        if shutil.which("mosquitto_ctrl") is None:
            raise MosquittoError("mosquitto_ctrl not found: install the Debian package `mosquitto`")
        result = subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(self.dynsec_path), self.admin_username, self.admin_password],
            capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise MosquittoError(f"mosquitto_ctrl dynsec init failed: {result.stdout}{result.stderr}")

    def _config(self):
        return "\n".join([
            # Run as whoever runs the tests: as root, mosquitto would otherwise
            # drop to user `mosquitto`, who cannot read or write this work dir.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",  # the tests restart the backend, never this broker
            "set_tcp_nodelay true",
            # What mpfleet needs of a Mosquitto, as docs/protocol.md ("Running against Mosquitto") says:
            # - larger packets end the sender's connection, judged from the fixed header;
            f"max_packet_size {MAX_PACKET_BYTES}",
            # - the bridge acknowledges a message once it is stored: the window of messages sent to it
            #   and not acknowledged must hold ~60 ms of ingest (the default 20 caps it at a few hundred
            #   msgs/s), and the queue behind it what comes while the backend is down (the default 1000
            #   drops the rest);
            f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            # - clean disconnects are read from the connection log, on $SYS/broker/log/N.
            "log_dest topic",
            "connection_messages true",
            "log_type notice",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type information",
            f"plugin {dynsec_plugin_path()}",
            f"plugin_opt_config_file {self.dynsec_path}",
            f"listener {self.plain_port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1",
            f"cafile {self.tls.ca_cert}",
            f"certfile {self.tls.server_cert}",
            f"keyfile {self.tls.server_key}",
            "",
        ])

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _accepts(self.plain_port) and _accepts(self.tls_port):
                return True
            time.sleep(0.02)
        self.process.kill()
        self.process.wait()
        raise MosquittoError(f"mosquitto did not listen within {timeout} s\n{self.log_tail()}")

    def _reap(self):
        self.process.wait()
        self.process = None
        return self.log_tail()


def dynsec_plugin_path():
    for pattern in _PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise MosquittoError("mosquitto_dynamic_security.so not found: install the Debian package `mosquitto`")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path):
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path.name}: none)"
    return f"{path.name} tail:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
