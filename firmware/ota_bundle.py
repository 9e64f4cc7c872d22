"""The `bundle` method of the OTA job (ota.py): an app bundle staged into the other app directory, incrementally.

    m = Stage(job, fresh)   # fresh: a new job (the staging directory emptied); else a boot resumes it
    m.step(deadline)        # work until the tick `deadline`; True once staged and verified. Raises OSError (retry)
                            # or ValueError (fail)
    m.pause()               # the connection closed (a retry, a failure)
    m.apply()               # fw.json {"version", "md5"} into the staging directory
    m.switch()              # app.ptr names it (chooser.py): the next boot runs it
    m.discard()             # the staging directory removed (a failed job)

The bundle (backend/bundle_format.py): MAGIC (16) | manifest length L (u32 LE) | manifest | the files. Steps:
1. head: bytes 0-19 by Range, then the manifest (20 .. 19+L), into <dir>/bundle.head, kept for a resume;
2. plan, one file per step: a file whose size and sha256 match the running app's file of that path is copied
   from it; the others are downloaded, each contiguous run of them by one Range request;
3. files, in the bundle's order, appended to <dir>/<path> (so a resume continues each where its size says);
4. verify, read back from flash: the md5 (and sha256, where the port has it) of bundle.head and every file in
   order, i.e. of the bundle's bytes whether downloaded or copied, against the command's; each file's sha256
   against the manifest; the size.

Downloads (httpget.py): only a 206 whose Content-Range starts at the byte asked for continues; a 200 (a server that
ignored the Range) is the whole bundle from 0: read from its start, the bytes before the ones needed dropped; a 416
means the server has fewer bytes than the command says. RAM: the job's one block buffer (_BLOCK bytes), the plan
(one byte per file and two numbers per run of changed files), one open file at a time.
"""

import os
import struct
import time
from binascii import hexlify

from httpget import Get
from micropython import const

_MAGIC = b"MPFLEET-BUNDLE\x00\x01"
_HEAD = const(20)
_MAX_MANIFEST = const(16384)
_BLOCK = const(1024)
_WAIT_MS = const(20)  # how long a step waits for the server's next bytes before the loop gets its turn
_P_HEAD = const(0)  # the phases of a Stage
_P_PLAN = const(1)
_P_FILES = const(2)
_P_VERIFY = const(3)

try:
    from hashlib import sha256
except ImportError:  # no port of ours lacks it; without it nothing is copied, and only md5 is checked
    sha256 = None


def _mkdirs(path):
    """The directories of file `path`."""
    i = path.find("/")
    while i > 0:
        try:
            os.mkdir(path[:i])
        except OSError:
            pass
        i = path.find("/", i + 1)


def _rmtree(d):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + "/" + e[0]
        if e[1] == 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d)


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


class Stage:
    def __init__(self, job, fresh):
        self.job = job
        st = job.st
        self.dir = st["dir"]
        self.url = st["url"]
        self.size = st["size"]
        self._ctx = job.app.link._ctx
        self._run_from = st["from"] + "/" if st["from"] else ""
        self.buf = memoryview(bytearray(_BLOCK))
        self._get = None
        self._mf = None  # bundle.head, open for its manifest lines
        self._out = self._src = None
        self._e = None  # the current file: (path, size, offset, changed)
        if fresh:
            _rmtree(self.dir)
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        self.phase = _P_HEAD

    def _path(self, name):
        return self.dir + "/" + name

    # --- steps

    def step(self, deadline):
        if self.phase == _P_HEAD:
            self._head()
        elif self.phase == _P_PLAN:
            while self.phase == _P_PLAN and time.ticks_diff(deadline, time.ticks_ms()) > 0:
                self._plan()
        elif self.phase == _P_FILES:
            self._files(deadline)
        else:
            return self._verify(deadline)
        return False

    def _head(self):
        """bundle.head complete (kept from an earlier boot, or fetched now); the plan begins."""
        name = self._path("bundle.head")
        n = _size(name)
        if n < _HEAD or n != _HEAD + self._length(name):
            with open(name, "wb") as f:
                self._fetch(f, 0, _HEAD - 1)
            length = self._length(name)
            if length > _MAX_MANIFEST or _HEAD + length > self.size:
                raise ValueError("the bundle's manifest claims %d bytes" % length)
            with open(name, "ab") as f:
                self._fetch(f, _HEAD, _HEAD + length - 1)
        self._mf = open(name, "rb")
        self._mf.seek(_HEAD)
        line = self._mf.readline()
        if line[:8] != b"version ":
            raise ValueError("the bundle's manifest has no version line")
        self.version = line[8:].strip().decode()
        self._first = self._mf.tell()  # the first file's line
        self._offset = _HEAD + self._length(name)  # of the next file in the bundle
        self.flags = bytearray()  # per file: 1 downloaded, 0 copied
        self.runs = []  # [first, last] byte of each run of downloaded files
        self.phase = _P_PLAN

    def _length(self, name):
        """The manifest's length from the first 20 bytes of file `name`. Raises ValueError for no bundle."""
        with open(name, "rb") as f:
            head = f.read(_HEAD)
        if len(head) < _HEAD:
            return -1
        if head[:16] != _MAGIC:
            raise ValueError("not an mpfleet bundle (no bundle magic at its start)")
        return struct.unpack("<I", head[16:])[0]

    def _fetch(self, f, first, last):
        """Bytes first..last of the bundle into file f, in one request (the head and the manifest: small)."""
        g = self._open(first, last)
        skip = first if g.status == 200 else 0
        want = last + 1 - first
        try:
            while want:
                self.job.app.b.feed()
                mv = self.buf[: min(_BLOCK, want + skip)]
                n = g.readinto(mv, 1000)
                if skip:
                    k = min(skip, n)
                    skip -= k
                    n -= k
                    mv = mv[k:]
                if n:
                    f.write(mv[:n])
                    want -= n
        finally:
            g.close()

    def _open(self, first, last):
        """A Get of bytes first..last, its answer checked (see the module's text)."""
        g = Get(self._ctx, self.url, first, last)
        bad = None
        if g.status == 416 or g.total != self.size:
            bad = ValueError("the server has %s bytes, the command says %d" % (g.total, self.size))
        elif g.status == 206 and g.first != first:
            bad = OSError("the server answered bytes from %d, not %d" % (g.first, first))
        if bad is not None:
            g.close()
            raise bad
        if g.status == 200:
            print("ota: the server ignored the Range: reading from the start")
        return g

    def _plan(self):
        line = self._mf.readline()
        if not line:
            if self._offset != self.size:
                raise ValueError("the bundle's files end at byte %d, the command says %d" % (self._offset, self.size))
            self._mf.seek(self._first)
            self._i = 0
            self._offset = self._first_offset = _HEAD + self._length(self._path("bundle.head"))
            self.phase = _P_FILES
            return
        sha, size, path = _entry(line)
        changed = not self._same(self._run_from + path, size, sha)
        self.flags.append(1 if changed else 0)
        if changed:
            runs = self.runs
            if runs and runs[-1] == self._offset - 1:
                runs[-1] = self._offset + size - 1
            else:
                runs.append(self._offset)
                runs.append(self._offset + size - 1)
        self._offset += size

    def _same(self, path, size, sha):
        """Whether file `path` of the running app is the bundle's file of `size` bytes and hex `sha`."""
        if sha256 is None or _size(path) != size:
            return False
        h = sha256()
        buf = self.buf
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf[:n])
        return hexlify(h.digest()) == sha

    def _files(self, deadline):
        buf = self.buf
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            e = self._e
            if e is None:
                if not self._next_file():
                    return
                e = self._e
            path, size, offset, changed = e
            left = size - self._pos
            if not left:
                self._close_file()
                continue
            mv = buf[: min(left, _BLOCK)]
            if changed:
                n = self._download(mv, offset + self._pos)
                if not n:
                    return  # nothing came yet: the loop's turn
            else:
                n = self._src.readinto(mv)
                if not n:
                    raise ValueError("%s of the running app ended while copied" % path)
            self._out.write(mv[:n])
            self._pos += n
            self.job.moved(offset + self._pos)

    def _next_file(self):
        """The next file of the manifest opened for staging, where its staged size says; False after the last."""
        line = self._mf.readline()
        if not line:
            self.phase = _P_VERIFY
            self._v = None
            return False
        sha, size, path = _entry(line)
        changed = self.flags[self._i]
        self._i += 1
        name = self._path(path)
        pos = _size(name)
        if pos > size:  # (cannot be ours: files are appended up to their size)
            os.remove(name)
            pos = -1
        if pos < 0:
            _mkdirs(name)
            pos = 0
        self._pos = pos
        self._out = open(name, "ab")
        if not changed:
            self._src = open(self._run_from + path, "rb")
            self._src.seek(pos)
        self._e = (path, size, self._offset, changed)
        self._offset += size
        return True

    def _close_file(self):
        self._out.close()
        self._out = None
        if self._src is not None:
            self._src.close()
            self._src = None
        self._e = None

    def _download(self, mv, at):
        """Bytes of the bundle from `at` into mv (the current run's request, opened when there is none); 0 when none
        came within _WAIT_MS."""
        g = self._get
        if g is None:
            runs = self.runs
            last = 0
            for i in range(0, len(runs), 2):
                if runs[i] <= at <= runs[i + 1]:
                    last = runs[i + 1]
            g = self._get = self._open(at, last)
            self._skip = at if g.status == 200 else 0
            self._last = last
        while self._skip:  # a 200: the bytes before `at` go
            n = g.readinto(mv[: min(len(mv), self._skip)], _WAIT_MS)
            if not n:
                return 0
            self._skip -= n
        n = g.readinto(mv, _WAIT_MS)
        if at + n > self._last:  # the run is complete (a 200 would go on: closed here)
            self.pause()
        return n

    def pause(self):
        if self._get is not None:
            self._get.close()
            self._get = None

    def _verify(self, deadline):
        v = self._v
        if v is None:  # bundle.head first: its bytes begin the bundle
            import ports

            self._md5 = ports.md5()
            self._sha = sha256() if sha256 is not None else None
            self._n = 0
            self._bad = None
            self._mf.seek(self._first)
            v = self._v = [open(self._path("bundle.head"), "rb"), None, None, None]  # file, sha256, expected, path
        buf = self.buf
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            f = v[0]
            n = f.readinto(buf)
            if n:
                mv = buf[:n]
                self._md5.update(mv)
                if self._sha is not None:
                    self._sha.update(mv)
                if v[1] is not None:
                    v[1].update(mv)
                self._n += n
                continue
            f.close()
            if v[1] is not None and hexlify(v[1].digest()) != v[2] and self._bad is None:
                self._bad = v[3]
            line = self._mf.readline()
            if not line:
                return self._judge()
            sha, size, path = _entry(line)
            v[:] = [open(self._path(path), "rb"), sha256() if sha256 is not None else None, sha, path]
        return False

    def _judge(self):
        """After the read-back: True, or ValueError saying what does not match."""
        self._mf.close()
        st = self.job.st
        md5 = hexlify(self._md5.digest()).decode()
        if self._n != self.size:
            raise ValueError("size mismatch: %d bytes staged, the command says %d" % (self._n, self.size))
        if md5 != st["md5"]:
            raise ValueError("md5 mismatch: the bundle's bytes give %s, the command says %s" % (md5, st["md5"]))
        if self._bad is not None:
            raise ValueError("sha256 mismatch: %s does not match the manifest" % self._bad)
        if self._sha is not None and st["sha256"] and hexlify(self._sha.digest()).decode() != st["sha256"]:
            raise ValueError("sha256 mismatch: the bundle's bytes do not give the command's sha256")
        return True

    # --- the switch

    def apply(self):
        import json

        st = self.job.st
        with open(self._path("fw.json"), "w") as f:
            json.dump({"version": st["version"] or self.version, "md5": st["md5"]}, f)

    def switch(self):
        import chooser

        chooser.write("app.ptr", self.dir)

    def discard(self):
        for f in (self._mf, self._out, self._src):
            if f is not None:
                f.close()
        _rmtree(self.dir)


def _entry(line):
    """(sha256 hex as bytes, size, path) of a manifest line. Raises ValueError for one that is not."""
    parts = line.split()
    if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
        raise ValueError("a line of the bundle's manifest is not <sha256> <size> <path>")
    path = parts[2].decode()
    if path[0] == "/" or ".." in path:
        raise ValueError("bundle path %r leaves the app directory" % path)
    return parts[0], int(parts[1]), path
