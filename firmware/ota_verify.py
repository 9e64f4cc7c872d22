"""Phase 3 of a bundle's OTA (ota.py): everything staged read back from flash, bundle.head first and then each file
in the manifest's order, i.e. the bundle's bytes whether they were downloaded or copied: their md5 (the port's
hashlib.md5, else firmware/md5.py: ports.md5()) and sha256 (where the port has it) against the command's, each
file's sha256 against the manifest, and the size. Raises ValueError saying what does not match.
"""

import time
from binascii import hexlify

from ota_job import entry

try:
    from hashlib import sha256
except ImportError:
    sha256 = None


def step(job, deadline):
    v = getattr(job, "v", None)
    if v is None:
        import ports

        job.md5 = ports.md5()
        job.sha = sha256() if sha256 else None
        job.n = 0
        job.bad = None
        job.mf.seek(job.first)
        v = job.v = [open(job.st["dir"] + "/bundle.head", "rb"), None, None, None]  # file, its sha256, want, path
    buf = job.buf
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        n = v[0].readinto(buf)
        if n:
            mv = buf[:n]
            job.md5.update(mv)
            if job.sha:
                job.sha.update(mv)
            if v[1]:
                v[1].update(mv)
            job.n += n
            continue
        v[0].close()
        if v[1] and hexlify(v[1].digest()) != v[2] and job.bad is None:
            job.bad = v[3]
        line = job.mf.readline()
        if not line:
            return _judge(job)
        sha, _, path = entry(line)
        v[:] = [open(job.st["dir"] + "/" + path, "rb"), sha256() if sha256 else None, sha, path]
    return False


def _judge(job):
    job.mf.close()
    job.mf = None
    st = job.st
    md5 = hexlify(job.md5.digest()).decode()
    if job.n != st["size"]:
        raise ValueError("size mismatch: %d bytes staged, the command says %d" % (job.n, st["size"]))
    if md5 != st["md5"]:
        raise ValueError("md5 mismatch: the bundle's bytes give %s, the command says %s" % (md5, st["md5"]))
    if job.bad is not None:
        raise ValueError("sha256 mismatch: %s does not match the manifest" % job.bad)
    if job.sha and st["sha256"] and hexlify(job.sha.digest()).decode() != st["sha256"]:
        raise ValueError("sha256 mismatch: the bundle's bytes do not give the command's sha256")
    return True
