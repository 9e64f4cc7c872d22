"""Errors the HTTP layer turns into JSON answers (see middlewares.py)."""


class ApiError(Exception):
    """An answer other than success: HTTP status plus the JSON `message`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class ValidationError(Exception):
    """Field errors, answered as 422 {"message", "errors": {field: [messages]}}."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors

    @property
    def message(self):
        """The first error, and how many more there are (the Laravel convention clients know)."""
        messages = [m for field_messages in self.errors.values() for m in field_messages]
        more = len(messages) - 1
        if more == 0:
            return messages[0]
        return f"{messages[0]} (and {more} more error{'s' if more > 1 else ''})"
