"""The `ota` command checked and its job's state made: ota.json written.

    start(app, cmd_id, payload)     ota.py, for a job beside the app: checked, then started (ota_job.begin)
    check(app, cmd_id, payload, boot=False) -> the job's state (ota_run.py: boot true, the job runs in that boot)

Both raise ValueError saying what is wrong with the command (app.py acks it `failed`).
"""

import json
import sys

_KINDS = ("bundle", "esp32-app")


def start(app, cmd_id, p):
    st = check(app, cmd_id, p)
    import ota_job

    ota_job.begin(app, st)


def check(app, cmd_id, p, boot=False):
    """ota.json's state for command `cmd_id` of payload `p` (boot: for ota_run.py, the job runs in this boot)."""
    url, md5, sha, size, kind = p.get("url"), p.get("md5"), p.get("sha256"), p.get("size"), p.get("kind")
    if not (isinstance(url, str) and url[:8] == "https://" and len(url) <= 400):
        raise ValueError("url must be an https:// address")
    if not (isinstance(md5, str) and len(md5) == 32):
        raise ValueError("md5 must be 32 hex digits")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise ValueError("sha256 must be 64 hex digits")
    if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
        raise ValueError("size must be a positive number of bytes")
    if kind not in _KINDS:
        raise ValueError("kind must be one of %s" % (_KINDS,))
    if kind == "esp32-app" and app.b.ota_partition() is None:
        raise ValueError("this board has no OTA partitions: send an app bundle")
    here = sys.path[0] if sys.path[0] in ("a", "b") else ""
    st = {"id": cmd_id, "url": url, "md5": md5.lower(), "sha256": sha and sha.lower(), "size": size,
          "version": p.get("version"), "kind": kind, "state": "downloading", "from": here,
          "dir": "b" if here == "a" else "a", "boot": boot}
    st["fresh"] = True  # the staging directory is emptied by the first phase (ota_head.py)
    import chooser  # its write(): the one atomic write (FAT included); not kept in the heap after it

    chooser.write("ota.json", json.dumps(st))
    del sys.modules["chooser"]
    return st
