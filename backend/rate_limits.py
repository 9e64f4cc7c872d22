"""Requests per minute for each API token: a read limit (GET, HEAD) and a write limit (every other method).

    limiter = RateLimiter({"read": 1200, "write": 600})
    quota = limiter.take(key, "read")     # key: who asks (middlewares.rate_limit: the token's hash, else the address)
    quota.allowed, quota.limit, quota.remaining, quota.reset_at, quota.retry_after

A fixed window per key and kind: it opens with the first request and lasts WINDOW_S; `reset_at` is when it ends, in
Unix seconds (X-RateLimit-Reset). A limit of 0 (or none for a kind) means no limit: take() then answers None.

Memory stays bounded: windows that ended are swept once their count passes SWEEP_AT, so keys that come and go (a
client rotating tokens, many addresses) hold no memory beyond the windows still open.
"""

import math
import time
from dataclasses import dataclass

WINDOW_S = 60.0
SWEEP_AT = 10_000  # open windows kept before the ended ones are swept out


@dataclass(frozen=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the window ends
    retry_after: int  # whole seconds until then (at least 1)


def kind_of(method):
    """"read" for GET and HEAD (and OPTIONS), "write" for the rest."""
    return "read" if method in ("GET", "HEAD", "OPTIONS") else "write"


class RateLimiter:
    def __init__(self, limits, *, clock=time.monotonic, wall=time.time):
        self._limits = {kind: n for kind, n in limits.items() if n}
        self._clock = clock
        self._wall = wall
        self._windows = {}  # (key, kind) -> [ends (clock), requests counted]

    def take(self, key, kind):
        """Count one request of `key` and `kind`: its Quota, or None when the kind has no limit."""
        limit = self._limits.get(kind)
        if limit is None:
            return None
        now = self._clock()
        window = self._windows.get((key, kind))
        if window is None or window[0] <= now:
            if len(self._windows) >= SWEEP_AT:
                self._sweep(now)
            window = self._windows[(key, kind)] = [now + WINDOW_S, 0]
        allowed = window[1] < limit
        if allowed:
            window[1] += 1
        left = window[0] - now
        return Quota(allowed=allowed, limit=limit, remaining=limit - window[1],
                     reset_at=math.ceil(self._wall() + left), retry_after=max(1, math.ceil(left)))

    def _sweep(self, now):
        self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
