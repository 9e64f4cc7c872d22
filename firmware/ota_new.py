"""The `ota` command checked and its job's state made (ota.py loads this module for it): ota.json written, the
staging directory emptied. check() raises ValueError saying what is wrong (app.py acks it `failed`)."""

import sys

_KINDS = ("bundle", "esp32-app")


def check(app, cmd_id, p):
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
          "dir": "b" if here == "a" else "a"}
    if kind == "bundle":
        import ota_end

        ota_end.rmtree(st["dir"])
    import ota

    ota.save(st)
    return st
