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
    mqtt_tls_port: int = 8883
    max_firmware_bytes: int = MAX_FIRMWARE_BYTES

    @property
    def mqtt_public_host(self):
        return self.public_host or socket.gethostname()
