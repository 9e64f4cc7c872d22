"""Phase 1 of a bundle's OTA (ota.py): the bundle's head and manifest, then the plan.

The bundle (backend/bundle_format.py): MAGIC (16) | manifest length L (u32 LE) | manifest | the files. Bytes 0-19
by Range, then 20 .. 19+L, into <dir>/bundle.head (kept: a boot that resumes the job reuses it when complete). Then,
one manifest line at a time: a file whose size and sha256 match the running app's file of that path will be
copied from it (job.flags 0), the others downloaded (1), each contiguous run of them by one Range request
(job.runs: its first and last byte, flat). RAM: one byte per file, two numbers per run.
"""

import os
import struct
import sys
import time
from binascii import hexlify

from micropython import const
from ota_job import entry

_MAGIC = b"MPFLEET-BUNDLE\x00\x01"
_HEAD = const(20)
_MAX_MANIFEST = const(16384)

try:
    from hashlib import sha256
except ImportError:  # (no port of ours): nothing is copied then
    sha256 = None


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def step(job, deadline):
    if job.mf is None:
        _head(job)
        return False
    st = job.st
    run_from = st["from"] + "/" if st["from"] else ""
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        line = job.mf.readline()
        if not line:
            if job.at != st["size"]:
                raise ValueError("the manifest's files end at byte %d, the command says %d" % (job.at, st["size"]))
            job.mf.seek(job.first)
            job.at = job.first_at
            job.i = 0  # for ota_files: the file's index, the file, its source (a copy), where it is
            job.e = job.out = job.src = None
            job.pos = 0
            return True
        sha, size, path = entry(line)
        changed = not _same(job.buf, run_from + path, size, sha)
        job.flags.append(changed)
        if changed:
            runs = job.runs
            if runs and runs[-1] == job.at - 1:
                runs[-1] = job.at + size - 1
            else:
                runs.append(job.at)
                runs.append(job.at + size - 1)
        job.at += size
    return False


def _head(job):
    st = job.st
    name = st["dir"] + "/bundle.head"
    if st.get("fresh"):  # a new job: what an earlier one left there goes
        import ota_fail

        ota_fail.rmtree(st["dir"])
        del sys.modules["ota_fail"]  # (a failure loads it again if it comes to that)
        st["fresh"] = False
        job.save()
    try:
        os.mkdir(st["dir"])
    except OSError:
        pass
    if _size(name) != _HEAD + _length(name):
        with open(name, "wb") as f:
            _fetch(job, f, 0, _HEAD - 1)
        n = _length(name)
        if n > _MAX_MANIFEST or _HEAD + n > st["size"]:
            raise ValueError("the bundle's manifest claims %d bytes" % n)
        with open(name, "ab") as f:
            _fetch(job, f, _HEAD, _HEAD + n - 1)
    mf = open(name, "rb")
    mf.seek(_HEAD)
    line = mf.readline()
    if line[:8] != b"version ":
        raise ValueError("the bundle's manifest has no version line")
    job.version = line[8:].strip().decode()
    job.first = mf.tell()  # the first file's line
    job.at = job.first_at = _HEAD + _length(name)  # the next file's offset in the bundle
    job.flags = bytearray()
    job.runs = []
    job.mf = mf


def _length(name):
    """The manifest's length from the first 20 bytes of file `name` (-1 when it has fewer)."""
    try:
        with open(name, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return -1
    if len(head) < _HEAD:
        return -1
    if head[:16] != _MAGIC:
        raise ValueError("not an mpfleet bundle (no bundle magic at its start)")
    return struct.unpack("<I", head[16:])[0]


def _fetch(job, f, first, last):
    """Bytes first..last of the bundle into file f, in one request (small: the head, the manifest)."""
    g = job.open(first, last)
    skip = first if g.status == 200 else 0  # a server that ignored the Range: from byte 0
    want = last + 1 - first
    buf = job.buf
    while want:
        job.app.b.feed()
        mv = buf[: min(len(buf), want + skip)]
        n = g.readinto(mv, 1000)
        k = min(skip, n)
        skip -= k
        if n > k:
            f.write(mv[k:n])
            want -= n - k
    job.pause()


def _same(buf, path, size, sha):
    """Whether file `path` of the running app is the bundle's file of `size` bytes and hex `sha`."""
    if sha256 is None or _size(path) != size:
        return False
    h = sha256()
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
    return hexlify(h.digest()) == sha
