"""Phase 2 of a bundle's OTA (ota.py): each file of the manifest, in the bundle's order, appended to <dir>/<path>:
copied from the running app, or downloaded (ota_head.py's plan), from where its staged size says (a resumed job
goes on where the last boot got to).

A download asks for its run of changed files by Range; only a 206 starting at the byte asked for continues
(httpget.py checks it); a 200 (the Range ignored) is the whole bundle from 0: the bytes before the ones needed are
dropped. The run's request ends at its last byte (a 200 is closed there).
"""

import os
import time

from micropython import const
from ota_job import entry

_WAIT_MS = const(20)  # how long a step waits for the server's next bytes before the loop gets its turn


def step(job, deadline):
    buf = job.buf
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        e = job.e
        if e is None:
            line = job.mf.readline()
            if not line:
                return True
            _open(job, line)
            e = job.e
        path, size, at, changed = e
        left = size - job.pos
        if not left:
            job.out.close()
            job.out = None
            if job.src is not None:
                job.src.close()
                job.src = None
            job.e = None
            continue
        mv = buf[: min(left, len(buf))]
        if changed:
            n = _download(job, mv, at + job.pos)
            if not n:
                return False  # nothing came yet: the loop's turn
        else:
            n = job.src.readinto(mv)
            if not n:
                raise ValueError("%s of the running app ended while copied" % path)
        job.out.write(mv[:n])
        job.pos += n
        job.moved(at + job.pos)
    return False


def _open(job, line):
    sha, size, path = entry(line)
    st = job.st
    changed = job.flags[job.i]
    job.i += 1
    name = st["dir"] + "/" + path
    try:
        pos = os.stat(name)[6]
    except OSError:
        pos = 0
        i = name.find("/")
        while i > 0:  # its directories
            try:
                os.mkdir(name[:i])
            except OSError:
                pass
            i = name.find("/", i + 1)
    if pos > size:  # (not ours: files are appended up to their size)
        os.remove(name)
        pos = 0
    job.pos = pos
    job.out = open(name, "ab")
    job.src = None
    if not changed:
        job.src = open((st["from"] + "/" if st["from"] else "") + path, "rb")
        job.src.seek(pos)
    job.e = (path, size, job.at, changed)
    job.at += size


def _download(job, mv, at):
    """Bundle bytes from `at` into mv (the run's request opened when there is none); 0 when none came in time."""
    g = job.get
    if g is None:
        runs = job.runs
        last = at
        for i in range(0, len(runs), 2):
            if runs[i] <= at <= runs[i + 1]:
                last = runs[i + 1]
        g = job.open(at, last)
        job.skip = at if g.status == 200 else 0
        job.last = last
        if g.status == 200:
            print("ota: the server ignored the Range: reading from the start")
    while job.skip:
        n = g.readinto(mv[: min(len(mv), job.skip)], _WAIT_MS)
        if not n:
            return 0
        job.skip -= n
    n = g.readinto(mv, _WAIT_MS)
    if at + n > job.last:  # the run is complete
        job.pause()
    return n
