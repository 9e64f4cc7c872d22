"""Where and as whom the backend connects to a broker, from a URL like mqtt://user:pass@host:port."""

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls_context: ssl.SSLContext | None = None

    @classmethod
    def from_url(cls, url, ca_file=None):
        """`mqtt://user:pass@host:port`, or `mqtts://…` verified against `ca_file` (else the system CAs).

        Raises ValueError for anything else.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("The broker URL must look like mqtt://user:password@host:port or mqtts://...")
        tls = ssl.create_default_context(cafile=ca_file) if parts.scheme == "mqtts" else None
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls_context=tls,
        )
