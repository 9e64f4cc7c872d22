"""What storage raises. Messages are the words the API shows (seed 004 where it has them)."""


class StorageError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class NotFound(StorageError):
    """No such row for this owner (another user's row is not found either)."""


class Conflict(StorageError):
    """The write would break a rule: a duplicate, or a row still in use."""
