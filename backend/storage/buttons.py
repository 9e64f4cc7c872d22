"""Saved command buttons of a device."""

import json
import sqlite3
from dataclasses import dataclass

from .. import jsonvalues
from .database import utc_now
from .errors import Conflict, NotFound

EXISTS = "A command button with this id already exists."
NOT_FOUND = "Command button not found."


@dataclass(frozen=True)
class Button:
    id: str
    label: str
    payload: dict | None  # None: a stored payload that breaks the JSON-value rule (jsonvalues.stored)
    confirm: bool


def _button_from_row(row):
    # Decoded defensively, as commands are (storage/commands.py).
    return Button(row["button_id"], row["label"], jsonvalues.stored(row["payload"]), bool(row["confirm"]))


class ButtonStore:
    def __init__(self, db):
        self.db = db

    async def list(self, device):
        rows = await self.db.fetch_all(
            "SELECT button_id, label, payload, confirm FROM command_buttons WHERE device_id = ?"
            " ORDER BY created_at, rowid",
            (device.id,),
        )
        return [_button_from_row(row) for row in rows]

    async def get(self, device, button_id):
        row = await self.db.fetch_one(
            "SELECT button_id, label, payload, confirm FROM command_buttons WHERE device_id = ? AND button_id = ?",
            (device.id, button_id),
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        return _button_from_row(row)

    async def create(self, device, button):
        """Save a button. Raises Conflict when the device has one with this id."""
        try:
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO command_buttons (device_id, button_id, label, payload, confirm, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (device.id, button.id, button.label, json.dumps(button.payload), int(button.confirm), utc_now()),
                )
        except sqlite3.IntegrityError as error:
            if "UNIQUE" in str(error):
                raise Conflict(EXISTS) from None
            raise NotFound("Device not found.") from None
        return button

    async def delete(self, device, button_id):
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "DELETE FROM command_buttons WHERE device_id = ? AND button_id = ?", (device.id, button_id)
            )
            if cursor.rowcount == 0:
                raise NotFound(NOT_FOUND)
