"""GET /v1/user/events: the user's live events over a WebSocket (events.py; docs/api.md, Live events).

The token comes as the bearer header or, for a browser's WebSocket, as `?token=` (middlewares.token_in_query).
Each message is one JSON object with a `type`. The server sends, the client only listens (what it sends is read
and dropped, so that its pings and close frames are answered). A client that falls behind is closed with code 1008
(events.py: TOO_SLOW), one that does not take a message within SEND_TIMEOUT_S is dropped.
"""

import asyncio

from aiohttp import web

from .. import keys
from ..errors import ApiError
from . import common

HEARTBEAT_S = 30.0  # aiohttp pings; a client that does not answer is closed
SEND_TIMEOUT_S = 10.0
NOT_A_WEBSOCKET = "This path is a WebSocket: connect with an Upgrade: websocket request."


async def live_events(request):
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, NOT_A_WEBSOCKET)
    subscription = request.app[keys.EVENTS].subscribe(common.user(request).id)
    await ws.prepare(request)
    listening = asyncio.create_task(_drop_incoming(ws))
    try:
        while True:
            next_event = asyncio.create_task(subscription.next())
            await asyncio.wait({next_event, listening}, return_when=asyncio.FIRST_COMPLETED)
            if not next_event.done():  # the client closed (or the connection went)
                next_event.cancel()
                break
            event = next_event.result()
            if isinstance(event, tuple):  # the subscription ended: too slow, or the server stops
                code, reason = event
                await ws.close(code=code, message=reason.encode())
                break
            await asyncio.wait_for(ws.send_json(event), SEND_TIMEOUT_S)
    except (asyncio.TimeoutError, ConnectionError):
        pass  # (its connection is aborted below)
    finally:
        subscription.close()
        listening.cancel()
        if not ws.closed:
            await ws.close()
    return ws


async def _drop_incoming(ws):
    async for _ in ws:
        pass
