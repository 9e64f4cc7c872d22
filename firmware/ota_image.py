"""The first phase of an `esp32-app` OTA (ota.py): the ESP32 application image written to the next OTA partition
through ota_partition.py (the board's esp32.Partition, or the unix board's file-backed stand-in), then read back.

The download starts where the slot got to (ota.json `offset`, saved every _SAVE_EVERY bytes, a multiple of the
4096-byte block: a boot resumes at the last saved block); a 200 (the Range ignored) starts again at 0. Each block
is written whole (ota_partition.write; the last one may be short), from the job's 4096-byte buffer. Then
ota_partition.digest() reads the slot back: md5 and sha256 against the command's (ValueError when they differ).
ota_switch.py then records and boots the slot (ota_partition.apply), which boots pending verification: the
bootloader goes back to the old image at the next reset unless the new app confirms (ota_confirm.py).
"""

import time

import ota_partition
from micropython import const

_SAVE_EVERY = const(65536)
_WAIT_MS = const(20)


def step(job, deadline):
    st = job.st
    size = st["size"]
    b = job.app.b
    if not hasattr(job, "pos"):
        ota_partition.start(b, size)  # ValueError/OSError with the reason: no slot, or too small
        job.pos = job.saved = st.get("offset", 0)  # bytes written to the slot
        job.fill = 0
    if job.pos >= size:
        job.pause()
        md5, sha = ota_partition.digest(b, size)
        if md5 != st["md5"]:
            raise ValueError("md5 mismatch: the slot's image gives %s, the command says %s" % (md5, st["md5"]))
        if st["sha256"] and sha and sha != st["sha256"]:
            raise ValueError("sha256 mismatch: the slot's image does not give the command's sha256")
        return True
    while time.ticks_diff(deadline, time.ticks_ms()) > 0 and job.pos < size:
        g = job.get
        if g is None:
            job.fill = 0  # a partial block is fetched again
            g = job.open(job.pos, None)
            if g.status == 200:  # the whole image again, from its first block
                job.pos = 0
        want = min(len(job.buf), size - job.pos)
        n = g.readinto(job.buf[job.fill : want], _WAIT_MS)
        if not n:
            return False
        job.fill += n
        if job.fill == want:
            ota_partition.write(b, job.pos, job.buf, want)
            job.pos += want
            job.fill = 0
            if job.pos - job.saved >= _SAVE_EVERY:
                st["offset"] = job.saved = job.pos
                __import__("ota_job").save(st)
        job.moved(job.pos + job.fill)
    return False
