"""Secrets on disk (the TLS keys, the OTA download key): written whole or not at all, owner-only from the first byte."""

import os
import tempfile
from pathlib import Path


def write_private(path, data):
    """Write bytes `data` to `path` atomically (a new file in the same folder, synced, renamed over the old one),
    readable by the owner only from the first byte."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
