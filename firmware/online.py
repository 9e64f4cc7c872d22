"""The connected session made ready: link.py imports this module for one call after connect.py (which it unloads
first: the `status` has the heap connect.py held) and unloads it again.

    run(link)   the subscriptions, then the retained `status` (link._status(), the app's): the session is up.
                Raises whatever fails.

Subscribed before `status` says online: the backend sends a command as soon as it sees the board online, and a
command published before the subscription would be lost.
"""

import json
import time


def run(link):
    client = link._client
    for topic in link._subs:
        client.subscribe(topic, 1)
    # A view of the JSON text, not its bytes copy: the length umqtt.simple takes of it is in bytes all the same.
    client.publish((link._prefix + "status").encode(), memoryview(json.dumps(link._status())), True, 1)
    link.up = True
    link._since = time.ticks_ms()
    link._ping_at = None
    link._log("link: online as %s (tls %s)" % (link.uid, "verified" if link.verified else "UNVERIFIED"))
