"""The `esp32-app` method of the OTA job (ota.py): an ESP32 application image written to the next OTA partition
through ota_partition.py (the board's esp32.Partition, or the unix board's file-backed stand-in), the same
interface as ota_bundle.Stage: step(deadline) -> True once written and verified, pause(), apply(), switch(),
discard().

The image is downloaded from where the slot got to (ota.json `offset`, saved every _SAVE_EVERY bytes, a multiple
of the 4096-byte block): a resumed download starts at the last saved block, a 200 (the Range ignored) starts again
at 0. Each block is written whole (ota_partition.write); the last one may be short. Then ota_partition.digest()
reads the slot back: its md5 and sha256 against the command's. apply() records {md5, version} of the slot and sets
it to boot (ota_partition.apply); switch() has nothing more to do: the reset boots it, pending verification, and
the bootloader goes back to the old image at the next reset unless the new app confirms (ota.py, once it reached the
broker). RAM: one 4096-byte block.
"""

import time

import ota_partition
from httpget import Get
from micropython import const

_BLOCK = const(4096)
_SAVE_EVERY = const(65536)
_WAIT_MS = const(20)


class Image:
    def __init__(self, job, fresh):
        self.job = job
        st = job.st
        self.size = st["size"]
        ota_partition.start(job.app.b, self.size)  # ValueError/OSError: no slot, or too small
        if fresh:
            st["offset"] = 0
        self.pos = st.get("offset", 0)  # bytes written to the slot
        self.buf = memoryview(bytearray(_BLOCK))
        self.fill = 0
        self._get = None
        self._saved = self.pos

    def step(self, deadline):
        if self.pos >= self.size:
            return self._verify()
        b = self.job.app.b
        while time.ticks_diff(deadline, time.ticks_ms()) > 0 and self.pos < self.size:
            g = self._get
            if g is None:
                g = self._get = Get(self.job.app.link._ctx, self.job.st["url"], self.pos + self.fill)
                if g.status == 416 or g.total != self.size:
                    self.pause()
                    raise ValueError("the server has %s bytes, the command says %d" % (g.total, self.size))
                if g.status == 200:  # the whole image again, from its first block
                    self.pos = self.fill = 0
                elif g.first != self.pos + self.fill:
                    self.pause()
                    raise OSError("the server answered bytes from %d, not %d" % (g.first, self.pos + self.fill))
            want = min(_BLOCK, self.size - self.pos)
            n = g.readinto(self.buf[self.fill : want], _WAIT_MS)
            if not n:
                return False
            self.fill += n
            if self.fill == want:
                ota_partition.write(b, self.pos, self.buf, want)
                self.pos += want
                self.fill = 0
                if self.pos - self._saved >= _SAVE_EVERY:
                    self._save()
            self.job.moved(self.pos + self.fill)
        return False

    def _save(self):
        self.job.st["offset"] = self.pos
        self.job.save()
        self._saved = self.pos

    def _verify(self):
        self.pause()
        st = self.job.st
        md5, sha = ota_partition.digest(self.job.app.b, self.size)
        if md5 != st["md5"]:
            raise ValueError("md5 mismatch: the slot's image gives %s, the command says %s" % (md5, st["md5"]))
        if st["sha256"] and sha and sha != st["sha256"]:
            raise ValueError("sha256 mismatch: the slot's image does not give the command's sha256")
        return True

    def pause(self):
        if self._get is not None:
            self._get.close()
            self._get = None
            self.fill = 0  # a partial block is fetched again

    def apply(self):
        st = self.job.st
        ota_partition.apply(self.job.app.b, st["md5"], st["version"])

    def switch(self):
        pass

    def discard(self):
        pass
