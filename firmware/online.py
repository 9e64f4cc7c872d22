"""The connected session made ready: link.py imports this module for one call after connect.py (which it unloads
first: the `status` has the heap connect.py held) and unloads it again.

    run(link)   the subscriptions, then the retained `status` (link._status(), the app's): the session is up.
                Raises whatever fails.

Subscribed before `status` says online: the backend sends a command as soon as it sees the board online, and a
command published before the subscription would be lost. But `config` after it: its retained message (the desired
configuration, up to ~600 bytes, twice while it is read) comes the moment it is subscribed, and it would come while
the status is made and sent, near the connect's lowest heap; after it, it comes into the heap the status left.
"""

import json
import time


def run(link):
    client = link._client
    late = None
    for topic in link._subs:
        if topic.endswith(b"/config"):
            late = topic
        else:
            client.subscribe(topic, 1)
    # A view of the JSON text, not its bytes copy: the length umqtt.simple takes of it is in bytes all the same.
    client.publish((link._prefix + "status").encode(), memoryview(json.dumps(link._status())), True, 1)
    if late:
        client.subscribe(late, 1)
    link.up = True
    link._since = time.ticks_ms()
    link._ping_at = None
    link._log("link: online as %s (tls %s)" % (link.uid, "verified" if link.verified else "UNVERIFIED"))
