"""First start: an empty database gets an `admin` user, whose token is written to DATA/admin.token."""

import os

ADMIN = "admin"


async def ensure_admin(storage, data_dir):
    """Create the admin user when there is no user at all. Returns its token, or None if users exist."""
    if await storage.users.count():
        return None
    _, token = await storage.users.create(ADMIN)
    path = os.path.join(data_dir, "admin.token")
    # Created with mode 0600 from the start: the token is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
