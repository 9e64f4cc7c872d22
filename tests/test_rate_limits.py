"""Requests a minute per token (backend/rate_limits.py, middlewares.rate_limit): the X-RateLimit-* headers on every
answer, 429 with Retry-After past a limit before anything is done, reads and writes counted apart, each token apart,
no limit at 0; the limiter's windows with a clock of the test's."""

import subprocess
import time

import pytest

from mpfleet.backend.rate_limits import SWEEP_AT, WINDOW_S, RateLimiter

from .conftest import Backend
from .openapi_check import check_response
from .server_process import MPFLEET

READS, WRITES = 5, 3


@pytest.fixture
async def limited(tmp_path):
    backend = Backend(tmp_path / "var", rate_limit_read=READS, rate_limit_write=WRITES)
    await backend.start()
    yield backend
    await backend.stop()


async def request(api, method, path, *, token=None, json=None):
    """(status, headers, body) of one request as `api`'s user (or with `token`), its answer checked against the
    spec."""
    response = await api.client.request(method, path, json=json, headers=api.headers(token))
    body = await response.json()
    check_response(method, path, response.status, body)
    return response.status, response.headers, body


async def test_every_answer_says_the_limit_what_is_left_and_when_the_window_ends(limited):
    api = await limited.api_for("alice")
    seen = []
    for _ in range(3):
        status, headers, _ = await request(api, "GET", "/v1/user/devices")
        assert status == 200
        seen.append(int(headers["X-RateLimit-Remaining"]))
        assert headers["X-RateLimit-Limit"] == str(READS)
        assert time.time() < int(headers["X-RateLimit-Reset"]) <= time.time() + WINDOW_S + 1
    assert seen == [READS - 1, READS - 2, READS - 3]
    status, headers, _ = await request(api, "GET", "/v1/user/devices/nope")  # an error answer counts and says so
    assert status == 404 and headers["X-RateLimit-Remaining"] == str(READS - 4)


async def test_past_the_read_limit_the_answer_is_429_with_retry_after_and_writes_still_go(limited):
    api = await limited.api_for("alice")
    for _ in range(READS):
        assert (await request(api, "GET", "/v1/user/devices"))[0] == 200
    status, headers, body = await request(api, "GET", "/v1/user/devices")
    assert status == 429
    assert body["message"] == (f"Too many requests: this token may make {READS} read requests a minute; "
                               f"try again in {headers['Retry-After']} s.")
    assert 1 <= int(headers["Retry-After"]) <= WINDOW_S
    assert headers["X-RateLimit-Remaining"] == "0"
    status, headers, _ = await request(api, "POST", "/v1/user/devices",
                                       json={"name": "w", "platform": "unix", "board": "unix"})
    assert status == 201 and headers["X-RateLimit-Limit"] == str(WRITES)


async def test_a_write_refused_past_its_limit_changes_nothing(limited):
    api = await limited.api_for("alice")
    answers = [(await request(api, "POST", "/v1/user/devices",
                              json={"name": f"d{n}", "platform": "unix", "board": "unix"}))[0]
               for n in range(WRITES + 1)]
    assert answers == [201] * WRITES + [429]
    _, _, body = await request(api, "GET", "/v1/user/devices")
    assert sorted(d["name"] for d in body["data"]) == [f"d{n}" for n in range(WRITES)]


async def test_each_token_has_its_own_count_a_wrong_one_too(limited):
    alice, bob = await limited.api_for("alice"), await limited.api_for("bob")
    for _ in range(READS):
        await request(alice, "GET", "/v1/user/devices")
    assert (await request(alice, "GET", "/v1/user/devices"))[0] == 429
    status, headers, _ = await request(bob, "GET", "/v1/user/devices")
    assert status == 200 and headers["X-RateLimit-Remaining"] == str(READS - 1)
    status, headers, body = await request(alice, "GET", "/v1/user/devices", token="mpf_wrong")
    assert status == 401 and headers["X-RateLimit-Remaining"] == str(READS - 1)


async def test_a_limit_of_0_is_no_limit_and_no_headers(tmp_path):
    backend = Backend(tmp_path / "var", rate_limit_read=0, rate_limit_write=WRITES)
    await backend.start()
    try:
        api = await backend.api_for("alice")
        for _ in range(READS * 3):
            status, headers, _ = await request(api, "GET", "/v1/user/devices")
            assert status == 200 and "X-RateLimit-Limit" not in headers
        _, headers, _ = await request(api, "POST", "/v1/user/devices", json={"name": "x", "platform": "unix",
                                                                            "board": "unix"})
        assert headers["X-RateLimit-Limit"] == str(WRITES)
    finally:
        await backend.stop()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_window_opens_with_the_first_request_and_a_new_one_after_it_ended():
    clock = Clock()
    limiter = RateLimiter({"read": 2}, clock=clock, wall=lambda: 5000.0 + clock.now)
    first = limiter.take("k", "read")
    assert (first.allowed, first.remaining, first.reset_at) == (True, 1, 6000 + WINDOW_S)
    clock.now += 10
    assert limiter.take("k", "read").remaining == 0
    late = limiter.take("k", "read")
    assert (late.allowed, late.retry_after) == (False, WINDOW_S - 10)
    clock.now += WINDOW_S - 10  # the window ends
    again = limiter.take("k", "read")
    assert (again.allowed, again.remaining) == (True, 1)
    assert limiter.take("k", "write") is None  # no limit for that kind


def test_windows_of_keys_that_are_gone_are_swept_out():
    clock = Clock()
    limiter = RateLimiter({"read": 1}, clock=clock)
    for n in range(SWEEP_AT):
        limiter.take(f"token {n}", "read")
    clock.now += WINDOW_S
    limiter.take("one more", "read")  # a new window with SWEEP_AT open: the ended ones go
    assert len(limiter._windows) == 1


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_serve_refuses_a_limit_that_is_no_whole_number(value, tmp_path):
    done = subprocess.run([MPFLEET, "serve", "--data", str(tmp_path / "var"), "--rate-limit-read", value],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"argument --rate-limit-read: {value!r} is not a whole number of requests (0 or more)" in done.stderr
