"""The supported boards: one JSON definition per board in this folder.

This package is data. The loader below is the one reader of it, shared by the
backend (platform/board catalog, registration) and the maker tools (flash
offsets, pins). A definition file is named after its board key.
"""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

# How a board applies an OTA: "partition" writes an esp32-app image to the next OTA partition (ESP32, and the
# emulated board's file-backed stand-in), "bundle" stages an app bundle into an app directory (every board).
OTA_METHODS = ("partition", "bundle")


@dataclass(frozen=True)
class Board:
    platform: dict  # {"id", "name", "key"}, as the REST API shows it
    board: dict  # {"id", "name", "key"}
    chip: str
    flash_size: str | None
    flash_offset: str | None  # esptool write offset of the MicroPython image
    pins: dict
    ota: tuple  # the OTA_METHODS the board can apply, e.g. ("partition", "bundle"); ESP8266: ("bundle",)
    notes: str

    @property
    def key(self):
        return self.board["key"]


@cache
def catalog():
    """All boards by key. Raises ValueError when the definitions disagree."""
    boards = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            fields = json.loads(entry.read_text())
            board = Board(**{**fields, "ota": tuple(fields["ota"])})
            if board.key + ".json" != entry.name:
                raise ValueError(f"{entry.name}: board key {board.key!r} must match the file name")
            if not board.ota or not set(board.ota) <= set(OTA_METHODS) or len(set(board.ota)) != len(board.ota):
                raise ValueError(f"{entry.name}: ota must list some of {OTA_METHODS}, each once")
            boards[board.key] = board
    _check_ids_unique(boards.values())
    return boards


def platforms():
    """The distinct platforms, ordered by id."""
    found = {b.platform["key"]: b.platform for b in catalog().values()}
    return sorted(found.values(), key=lambda p: p["id"])


def _check_ids_unique(boards):
    board_ids = [b.board["id"] for b in boards]
    if len(board_ids) != len(set(board_ids)):
        raise ValueError("two board definitions share an id")
    by_platform_key = {}
    for b in boards:
        seen = by_platform_key.setdefault(b.platform["key"], b.platform)
        if seen != b.platform:
            raise ValueError(f"platform {b.platform['key']!r} is defined two different ways")
    platform_ids = [p["id"] for p in by_platform_key.values()]
    if len(platform_ids) != len(set(platform_ids)):
        raise ValueError("two platforms share an id")
