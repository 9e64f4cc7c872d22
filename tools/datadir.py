"""The local data directory: the --data option, and running storage work on it."""

import asyncio
from pathlib import Path

from mpfleet.backend.config import default_data_dir

from .errors import CommandError


def add_option(parser):
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        metavar="DIR",
        help="data directory: database, firmware files, certificates (default: $MPFLEET_DATA or ./var)",
    )


def with_storage(data_dir, work):
    """Open the data directory's storage, `await work(storage)`, close it; return the result."""
    from mpfleet.backend.storage import Storage, StorageError  # (here: every command imports this module)

    async def main():
        storage = Storage(data_dir)
        await storage.open()
        try:
            return await work(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(main())
    except StorageError as error:
        raise CommandError(error.message) from None
