"""Following something on the server until it is over, by reading it again (simpler than the live event stream, and
it sees every end: an expiry, an OTA job's outcome)."""

import time


class StillOpen(Exception):
    """It was not over in time; `last` is what the last read returned."""

    def __init__(self, last):
        super().__init__(last)
        self.last = last


def until_over(read, is_over, *, interval, timeout, seen=None):
    """Call `read()` every `interval` seconds (and `seen(value)` on each value) until `is_over(value)`; returns that
    value. Raises StillOpen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if seen:
            seen(value)
        if is_over(value):
            return value
        if time.monotonic() > deadline:
            raise StillOpen(value)
        time.sleep(interval)
