"""The download tokens of OTA jobs: an HMAC-SHA256, with a key of this installation, over the device uid,
the firmware id, the job id and an expiry. Nothing is stored per token; the key is made once:

    DATA/ota.key    32 random bytes, 0600; replacing it ends every download link handed out

A token is `<uid>.<firmware id>.<job id>.<expiry>.<mac>` (expiry: unix seconds; mac: the first 16 bytes
of the HMAC in unpadded base64url), at most ~105 characters of [A-Za-z0-9_.-]: a board keeps it in its
job file. Checking one needs no database: a forged or altered one fails on the mac alone.
"""

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass

from .private_files import write_private

KEY_FILE = "ota.key"
_KEY_BYTES = 32
_MAC_BYTES = 16  # 128 bits: far beyond guessing within a token's lifetime, and keeps the URL short
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,40})\.([0-9]{1,19})\.([A-Za-z0-9]{1,64})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})")


class BadToken(Exception):
    """A token that is not one of ours, or no longer valid; str() says which, for the 403 answer."""


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: the download of firmware `firmware_id` by device `uid` for job `job_id`."""

    uid: str
    firmware_id: int
    job_id: str
    expires: int


class TokenSigner:
    def __init__(self, key):
        self._key = key

    @classmethod
    def for_data_dir(cls, data_dir):
        """The signer of the installation at `data_dir`, making DATA/ota.key on first use."""
        path = data_dir / KEY_FILE
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = os.urandom(_KEY_BYTES)
            write_private(path, key)
        if len(key) != _KEY_BYTES:
            raise RuntimeError(f"{path} must hold {_KEY_BYTES} bytes; remove it to make a new one "
                               "(download links handed out so far then stop working)")
        return cls(key)

    def make(self, uid, firmware_id, job_id, expires):
        """A token for these, valid until `expires` (unix seconds)."""
        expires = int(expires)
        return f"{uid}.{firmware_id}.{job_id}.{expires}.{self._mac(uid, firmware_id, job_id, expires)}"

    def read(self, token, now=None):
        """The Grant of `token`. Raises BadToken when it is malformed, forged or altered, or expired."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise BadToken("This download link is not valid.")
        uid, firmware_id, job_id, expires, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(uid, int(firmware_id), job_id, int(expires))):
            raise BadToken("This download link is not valid.")
        if int(expires) < (time.time() if now is None else now):
            raise BadToken("This download link has expired.")
        return Grant(uid, int(firmware_id), job_id, int(expires))

    def _mac(self, uid, firmware_id, job_id, expires):
        message = f"{uid}\n{firmware_id}\n{job_id}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
