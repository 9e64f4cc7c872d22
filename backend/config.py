"""Settings of one backend process, with their defaults."""

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

MAX_FIRMWARE_BYTES = 4 * 1024 * 1024  # seed 004: "maximum file size is 4 MB"


def default_data_dir():
    return Path(os.environ.get("MPFLEET_DATA", "var"))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "0.0.0.0"
    http_port: int = 8080
    public_host: str | None = None  # the name boards use to reach this host
    mqtt_tls_port: int = 8883  # devices: TLS (embedded broker's listener, or the external broker's)
    mqtt_port: int = 1883  # backend and local tools: plain, loopback only (embedded broker)
    broker_url: str | None = None  # mqtt://user:pass@host:port of an external Mosquitto; None = embedded
    broker_ca_file: str | None = None  # CA of an mqtts:// broker URL, and the one devices get
    command_timeout: float = 60.0  # seconds without a final ack before a command is `expired`
    telemetry_retention_days: float = 30.0
    max_firmware_bytes: int = MAX_FIRMWARE_BYTES

    @property
    def mqtt_public_host(self):
        return self.public_host or socket.gethostname()
