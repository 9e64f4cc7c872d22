"""Firmware files on disk, named by their md5: DATA/firmware/<md5>.bin.

An upload is streamed into DATA/firmware/incoming/ while it is hashed, then
moved into place with one rename. Anything left in incoming/ (a crash mid-upload)
and any blob no firmware row refers to (a crash between rename and commit) is
removed by `sweep()` at start-up.
"""

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from ..bundle_format import MAGIC as BUNDLE_MAGIC
from ..bundle_format import BundleError, check_file
from ..esp_image import ESP_IMAGE_MAGIC

__all__ = ["BlobStore", "BundleError", "IncomingBlob", "TooLarge", "image_kind", "sha256_of"]

log = logging.getLogger(__name__)

# The first bytes that tell an image kind apart (see docs/firmware-images.md).
ESP32_APP_MAGIC = bytes([ESP_IMAGE_MAGIC])  # an app image's, or a full flash image's: esp_image.py tells them apart
# (the bundle magic: bundle_format.py)


class TooLarge(Exception):
    """The upload passed the size limit; nothing of it is kept."""


def image_kind(head):
    """`esp32-app`, `bundle` or `raw`, from the first bytes of an image."""
    if head.startswith(BUNDLE_MAGIC):
        return "bundle"
    if head.startswith(ESP32_APP_MAGIC):
        return "esp32-app"
    return "raw"


class IncomingBlob:
    """A file being received: hashed and size-checked chunk by chunk, never held in memory."""

    def __init__(self, folder, limit):
        fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self._head = b""
        self.limit = limit
        self.size = 0
        self._finished = None

    def write(self, chunk):
        """Append a chunk. Raises TooLarge past the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(self.size)
        if len(self._head) < len(BUNDLE_MAGIC):
            self._head += chunk[: len(BUNDLE_MAGIC)]
        self._md5.update(chunk)
        self._sha256.update(chunk)
        # A blocking write of one chunk lands in the page cache in microseconds;
        # a thread hop per chunk would cost more than it saves.
        self._file.write(chunk)

    def finish(self):
        """Flush to disk; return (md5 hex, sha256 hex, size, kind). A bundle is checked against its manifest
        (bundle_format.check_file): raises BundleError saying what is wrong. Blocking: call it in a thread.
        A second call returns the first one's answer (the service finishes an upload to check it before storage
        records it)."""
        if self._finished is None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            kind = image_kind(self._head)
            if kind == "bundle":
                check_file(self.path)
            self._finished = self._md5.hexdigest(), self._sha256.hexdigest(), self.size, kind
        return self._finished

    def discard(self):
        self._file.close()
        self.path.unlink(missing_ok=True)


def sha256_of(path):
    """The sha256 hex of the file at `path`, read in chunks (blocking: call it in a thread)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


class BlobStore:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.incoming = self.folder / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path(self, md5):
        return self.folder / f"{md5}.bin"

    def receive(self, limit):
        return IncomingBlob(self.incoming, limit)

    def adopt(self, incoming, md5):
        """Move a finished upload into place. A blob with this md5 has the same bytes."""
        os.replace(incoming.path, self.path(md5))

    def remove(self, md5):
        self.path(md5).unlink(missing_ok=True)

    def sweep(self, referenced):
        """Delete unfinished uploads and blobs whose md5 is not in `referenced`."""
        for leftover in self.incoming.iterdir():
            leftover.unlink(missing_ok=True)
        for blob in self.folder.glob("*.bin"):
            if blob.stem not in referenced:
                log.info("removing orphan firmware blob %s", blob.name)
                blob.unlink(missing_ok=True)
