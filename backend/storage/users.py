"""Users and their API tokens."""

from dataclasses import dataclass

from .. import credentials
from .database import utc_now
from .errors import Conflict, NotFound


@dataclass(frozen=True)
class User:
    id: int
    name: str


class UserStore:
    def __init__(self, db):
        self.db = db

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
        """The user a bearer token belongs to, or None."""
        row = await self.db.fetch_one(
            "SELECT users.id, users.name FROM tokens JOIN users ON users.id = tokens.user_id"
            " WHERE tokens.token_hash = ?",
            (credentials.hash_token(token),),
        )
        return User(row["id"], row["name"]) if row else None


async def _insert_token(tx, user_id, token):
    await tx.execute(
        "INSERT INTO tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)",
        (user_id, credentials.hash_token(token), utc_now()),
    )
