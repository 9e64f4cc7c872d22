"""firmware/telemetry.py on the unix port: the offline ring, kept within the heap a reconnect needs."""

import json

from .micropython import check

# 40 samples while the link is down, then the link comes back: prints what was kept and what was published.
OFFLINE_THEN_BACK = """
import gc, json
from telemetry import Telemetry

class Link:
    up = False
    sent = []
    def publish(self, name, data):
        if self.up:
            self.sent.append(json.loads(data)["values"]["uptime"])
        return self.up

n = [0]
def sample():
    n[0] += 1
    return {"relay": False, "uptime": n[0], "free_mem": 12345, "rssi": -50}

link = Link()
t = Telemetry(link, sample, 5)
for _ in range(40):
    t._next = 0  # due now
    t.tick()
gc.collect()
kept, dropped, free = t._count, t.dropped, gc.mem_free()
link.up = True
t.flush()
print(json.dumps({"kept": kept, "dropped": dropped, "free": free, "sent": link.sent}))
"""


def test_the_last_32_samples_are_kept_and_sent_oldest_first(flash):
    out = json.loads(check(OFFLINE_THEN_BACK, flash))
    assert (out["kept"], out["dropped"]) == (32, 8)
    assert out["sent"] == list(range(9, 41))


def test_on_a_small_heap_fewer_are_kept_and_room_for_a_reconnect_is_left(flash):
    out = json.loads(check(OFFLINE_THEN_BACK, flash, heapsize="10k"))
    assert 1 <= out["kept"] < 32 and out["kept"] + out["dropped"] == 40
    assert out["free"] >= 3072 - 200  # _ROOM, less the one sample kept past it
    assert out["sent"] == list(range(41 - out["kept"], 41))  # the newest, oldest first
