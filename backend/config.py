"""Settings of one backend process, with their defaults."""

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

MAX_FIRMWARE_BYTES = 4 * 1024 * 1024  # seed 004: "maximum file size is 4 MB"
DEVICE_HTTP_PORT = 8443  # `mpfleet serve`'s device listener (OTA downloads)
# Seconds without a final ack before a command is `expired`, per type; other types: Settings.command_timeout.
# An OTA takes minutes (a 1 MB bundle over weak Wi-Fi, the reboot, the new app reaching the broker).
COMMAND_TIMEOUTS = {"ota": 900.0}
# Requests a minute per API token (rate_limits.py), generous: a dashboard and a `mpfleet watch` of a 1,000-device
# fleet together use a fraction of them. 0: no limit.
RATE_LIMIT_READ = 1200
RATE_LIMIT_WRITE = 600


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
    command_timeouts: dict = field(default_factory=lambda: dict(COMMAND_TIMEOUTS))  # per type, see above
    # The device listener (HTTPS, OTA downloads). 0 = a port the OS picks: the default of the app itself,
    # so that test apps side by side never share one; `mpfleet serve` binds DEVICE_HTTP_PORT unless told.
    # Boards keep the URL of an open job across a backend restart, so a served backend needs a fixed port.
    device_http_port: int = 0
    device_cert_file: str | None = None  # the listener's certificate and key; None = DATA/tls (our CA's)
    device_key_file: str | None = None
    telemetry_retention_days: float = 30.0
    max_firmware_bytes: int = MAX_FIRMWARE_BYTES
    rate_limit_read: int = RATE_LIMIT_READ  # GET/HEAD requests a minute per token; 0 = no limit
    rate_limit_write: int = RATE_LIMIT_WRITE  # every other method
    ha_discovery: bool = False  # Home Assistant MQTT discovery (ha_bridge.py, docs/home-assistant.md)
    ha_user: str = "admin"  # whose devices Home Assistant sees

    @property
    def mqtt_public_host(self):
        return self.public_host or socket.gethostname()

    def timeout_for(self, command_type):
        """Seconds a command of `command_type` may stay without its final ack."""
        return self.command_timeouts.get(command_type, self.command_timeout)
