"""Webhook deliveries: alarm changes posted to their user's webhook channels (docs/api.md, Alarms and notifications),
signed, retried and logged, in background tasks that neither ingest nor the API ever waits for.

    sender = WebhookSender(channels)       # storage/notifications.py:ChannelStore
    await sender.start()                   # its HTTP client (lifecycle.alarms_ctx)
    await sender.notify(user_id, event)    # queues the event for each enabled webhook of the user, and returns
    attempt = await sender.test(channel)   # one attempt now, of at most TEST_TIMEOUT_SECONDS
    await sender.close()                   # what is still queued is not sent

Each channel has a queue of its own (at most CHANNEL_QUEUE deliveries) and, while it holds any, a task of its own
that posts them one at a time in order: a receiver that hangs or fails holds up only its own channel. An attempt
may take REQUEST_TIMEOUT_SECONDS; one that fails (no answer, an answer other than 2xx, a redirect: none is
followed) is tried again after BACKOFF_SECONDS x 2^(n-1), up to ATTEMPTS in all. A delivery that finds its
channel's queue full, or MAX_QUEUED deliveries waiting in all, is dropped: counted in `stats`, and logged once a
minute per channel with how many. Every attempt goes to the channel's delivery log. A channel deleted or disabled
meanwhile gets nothing more.

The body is the event as JSON; X-Mpfleet-Signature is `sha256=` and the hex HMAC-SHA256 of those exact bytes with
the channel's secret (signature()); a channel without a secret sends none. The secret and the URL (which may hold a
token of its own) are never logged.
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass

import aiohttp
import orjson

from .storage.alarms import iso
from .storage.notifications import Attempt

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
TEST_TIMEOUT_SECONDS = 5.0  # the test request waits for its one attempt
ATTEMPTS = 5
BACKOFF_SECONDS = 1.0  # 1, 2, 4, 8 s between the attempts
CHANNEL_QUEUE = 100
MAX_QUEUED = 10_000
DROP_LOG_SECONDS = 60.0
USER_AGENT = "mpfleet-webhooks/1"
SIGNATURE_HEADER = "X-Mpfleet-Signature"


def signature(secret, body):
    """The X-Mpfleet-Signature of `body` (bytes) with `secret` (text): "sha256=<hex HMAC-SHA256>"."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Delivery:
    id: str
    event: str  # alarm.<timeline event>, or test
    alarm_id: int | None
    body: bytes


class _ChannelQueue:
    def __init__(self):
        self.deliveries = deque()
        self.task = None
        self.dropped = 0  # since the last warning
        self.warned_at = float("-inf")


class WebhookSender:
    def __init__(self, channels):
        self.channels = channels
        self.stats = Counter()  # webhooks_queued / _delivered / _failed / _dropped
        self._queues = {}  # channel id -> _ChannelQueue, while it has deliveries
        self._queued = 0
        self._session = None
        self._closed = False

    async def start(self):
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100),
                                              headers={"User-Agent": USER_AGENT})

    async def close(self):
        self._closed = True
        tasks = [queue.task for queue in self._queues.values() if queue.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def notify(self, user_id, event):
        """Queue `event` (a JSON object with `type` and `event`) for every enabled webhook channel of the user."""
        channel_ids = await self.channels.enabled_webhooks(user_id)
        if not channel_ids:
            return
        body = orjson.dumps(event)
        name = f"{event['type']}.{event['event']}"
        for channel_id in channel_ids:
            self._offer(channel_id, _Delivery(secrets.token_hex(8), name, event["alarm"]["id"], body))

    async def test(self, channel):
        """Post a test event to `channel` once, now, waiting at most TEST_TIMEOUT_SECONDS. Returns the Attempt, which
        is in the channel's log too."""
        event = {"type": "test", "channel_id": channel.id, "timestamp": iso(time.time()),
                 "message": "A test notification from mpfleet."}
        delivery = _Delivery(secrets.token_hex(8), "test", None, orjson.dumps(event))
        status, error, took = await self._post(channel, delivery, TEST_TIMEOUT_SECONDS)
        attempt = Attempt(delivery.id, delivery.event, None, 1, time.time(), status, error,
                          "delivered" if error is None else "failed", took)
        await self.channels.log(channel.id, attempt)
        return attempt

    def _offer(self, channel_id, delivery):
        if self._closed:
            return
        queue = self._queues.setdefault(channel_id, _ChannelQueue())
        if len(queue.deliveries) >= CHANNEL_QUEUE or self._queued >= MAX_QUEUED:
            self._dropped(channel_id, queue)
            return
        queue.deliveries.append(delivery)
        self._queued += 1
        self.stats["webhooks_queued"] += 1
        if queue.task is None:
            queue.task = asyncio.get_running_loop().create_task(self._drain(channel_id, queue))

    def _dropped(self, channel_id, queue):
        self.stats["webhooks_dropped"] += 1
        queue.dropped += 1
        now = time.monotonic()
        if now - queue.warned_at >= DROP_LOG_SECONDS:
            log.warning("webhook channel %d: %d deliveries dropped, its queue is full (%d waiting; %d in all)",
                        channel_id, queue.dropped, len(queue.deliveries), self._queued)
            queue.warned_at, queue.dropped = now, 0

    async def _drain(self, channel_id, queue):
        """Deliver the channel's queue in order, until it is empty; then the channel has no task and no queue."""
        try:
            while queue.deliveries:
                try:
                    await self._deliver(channel_id, queue.deliveries[0])
                except Exception:  # noqa: BLE001 - the next delivery goes on
                    log.exception("webhook channel %d: a delivery failed unexpectedly", channel_id)
                finally:
                    queue.deliveries.popleft()
                    self._queued -= 1
        finally:
            queue.task = None
            if not queue.deliveries:
                self._queues.pop(channel_id, None)

    async def _deliver(self, channel_id, delivery):
        """Attempts until one is answered 2xx, or ATTEMPTS failed; each in the log."""
        for number in range(1, ATTEMPTS + 1):
            channel = await self.channels.find(channel_id)
            if channel is None or not channel.is_enabled:
                return
            status, error, took = await self._post(channel, delivery, REQUEST_TIMEOUT_SECONDS)
            outcome = "delivered" if error is None else "failed" if number == ATTEMPTS else "retrying"
            await self.channels.log(channel_id, Attempt(delivery.id, delivery.event, delivery.alarm_id, number,
                                                        time.time(), status, error, outcome, took))
            if error is None:
                self.stats["webhooks_delivered"] += 1
                return
            if number == ATTEMPTS:
                self.stats["webhooks_failed"] += 1
                # (its error may quote the URL, which can hold a token: the log has it, this line does not)
                log.warning("webhook channel %d: delivery %s failed %d times, the last %s", channel_id,
                            delivery.id, ATTEMPTS, f"answered {status}" if status else "had no answer")
                return
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (number - 1))

    async def _post(self, channel, delivery, timeout):
        """One POST of `delivery` to `channel`. Returns (status code or None, error or None, milliseconds)."""
        headers = {"Content-Type": "application/json", "X-Mpfleet-Event": delivery.event,
                   "X-Mpfleet-Delivery": delivery.id}
        if channel.secret:
            headers[SIGNATURE_HEADER] = signature(channel.secret, delivery.body)
        started = time.monotonic()
        status, error = None, None
        try:
            async with self._session.post(channel.url, data=delivery.body, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                status = response.status
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except aiohttp.ClientConnectorError as failure:
            error = f"cannot connect: {failure.os_error.strerror or failure.os_error or type(failure).__name__}"
        except (aiohttp.ClientError, ValueError) as failure:  # (ValueError: a URL yarl takes but aiohttp cannot use)
            error = f"{type(failure).__name__}: {failure}"[:300]
        if status is not None and not 200 <= status < 300:
            error = f"answered {status}" + (": redirects are not followed" if 300 <= status < 400 else "")
        return status, error, round(1000 * (time.monotonic() - started))
