"""Secrets we hand out and how we keep them: API tokens, device uids, MQTT passwords."""

import base64
import hashlib
import hmac
import secrets
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_UID_RANDOM_CHARS = 12
TOKEN_PREFIX = "mpf_"
# Device passwords are 192-bit random strings, so a slow hash buys nothing against
# guessing; a modest PBKDF2 keeps a broker's reconnect storm cheap to verify.
_PBKDF2_ITERATIONS = 1000


def new_token():
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def new_device_uid(platform_key):
    """`<platform key>_<12 random base62 chars>`, e.g. espressif8266_G8VfdNhn7jqN."""
    return platform_key + "_" + "".join(secrets.choice(_BASE62) for _ in range(_UID_RANDOM_CHARS))


def new_device_password():
    return secrets.token_urlsafe(24)


def hash_password(password):
    """A salted PBKDF2-SHA256 hash: `pbkdf2_sha256$<iterations>$<salt>$<hash>`, base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ITERATIONS)
    return "$".join(("pbkdf2_sha256", str(_PBKDF2_ITERATIONS), _b64(salt), _b64(digest)))


def verify_password(password, stored):
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _b64(raw):
    return base64.b64encode(raw).decode()
