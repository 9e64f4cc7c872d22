"""Users and their API tokens."""

import time
from dataclasses import dataclass

from .. import credentials
from .database import utc_now
from .errors import Conflict, NotFound


@dataclass(frozen=True)
class User:
    id: int
    name: str


# Every API request looks its token up; remembering recent answers saves a query
# and a thread hop per request. Tokens cannot be revoked yet; when they can, the
# TTL bounds how long a revoked token still works in another process.
_TOKEN_CACHE_SECONDS = 60
_TOKEN_CACHE_SIZE = 1024


class UserStore:
    def __init__(self, db):
        self.db = db
        self._token_cache = {}  # token hash -> (User, expiry on the monotonic clock)

    async def count(self):
        row = await self.db.fetch_one("SELECT count(*) FROM users")
        return row[0]

    async def create(self, name):
        """Create a user with a first token. Returns (User, token). Raises Conflict for a taken name."""
        token = credentials.new_token()
        async with self.db.transaction() as tx:
            if await (await tx.execute("SELECT 1 FROM users WHERE name = ?", (name,))).fetchone():
                raise Conflict(f"A user named {name!r} already exists.")
            cursor = await tx.execute("INSERT INTO users (name, created_at) VALUES (?, ?)", (name, utc_now()))
            user = User(cursor.lastrowid, name)
            await _insert_token(tx, user.id, token)
        return user, token

    async def create_token(self, name):
        """A new token for an existing user. Raises NotFound."""
        token = credentials.new_token()
        async with self.db.transaction() as tx:
            row = await (await tx.execute("SELECT id FROM users WHERE name = ?", (name,))).fetchone()
            if row is None:
                raise NotFound(f"No user named {name!r}.")
            await _insert_token(tx, row["id"], token)
        return token

    async def for_token(self, token):
        """The user a bearer token belongs to, or None. Unknown tokens are never cached."""
        token_hash = credentials.hash_token(token)
        cached = self._token_cache.get(token_hash)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        row = await self.db.fetch_one(
            "SELECT users.id, users.name FROM tokens JOIN users ON users.id = tokens.user_id"
            " WHERE tokens.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
            self._token_cache.clear()
        user = User(row["id"], row["name"])
        self._token_cache[token_hash] = (user, time.monotonic() + _TOKEN_CACHE_SECONDS)
        return user


async def _insert_token(tx, user_id, token):
    await tx.execute(
        "INSERT INTO tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)",
        (user_id, credentials.hash_token(token), utc_now()),
    )
