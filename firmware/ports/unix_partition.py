"""The emulated board's esp32.Partition: an ESP32's two OTA app slots and its bootloader's otadata, in `.board/`.

Imported only when needed (ports/unix.py: ota_partition(), which boot() calls once .board/otadata exists), and for
that caller alone (load()). It does what
MicroPython's esp32.Partition does on an ESP32 with the OTA partition table (partitions-4MiB-ota.csv: ota_0 and
ota_1, 1.5 MiB each, no factory app) and an ESP-IDF bootloader built with app rollback, so that
firmware/ota_partition.py runs the same code here as there:

  .board/ota_0, .board/ota_1  the slots' bytes; past a file's end lies erased flash (0xFF). A missing ota_0 holds the
                              app the board was deployed with (valid; its bytes are not kept).
  .board/otadata              the bootloader's two entries (two flash sectors on a board), one line each:
                              "<seq> <state>", or "-" for an erased one. Missing: as after the first boot of a
                              deployed board (seq 1, valid: ota_0).
  .board/ota_size             the slots' size in bytes; "0": a partition table without OTA slots (one factory app,
                              MicroPython's default ESP32 build), where get_next_update() raises OSError(ENOENT).

The bootloader's rules (ESP-IDF bootloader_utility.c and esp_ota_ops.c): of the entries whose state is not
"invalid" or "aborted", the one with the highest sequence number chooses the slot, (seq - 1) % 2 (none: ota_0).
set_boot() validates the image, then writes the other entry with the sequence number that selects its slot and the
state "new". A boot makes "new" "pending_verify"; a boot that finds "pending_verify" (the app never called
mark_app_valid_cancel_rollback()) makes it "aborted", and the previous entry chooses again: the rollback. A chosen
slot whose image does not verify is passed over for the other one. Each write of otadata is atomic (a rename), as
the two sectors make it on a board.

Flash as on a board: writeblocks(n, buf) erases whole 4096-byte blocks, then writes; writeblocks(n, buf, offset)
does not erase, and programming only clears bits (new = old & data). ESP-IDF's errors are raised as the ESP32 port
raises them, OSError(-code, "ESP_ERR_..."); a partition that does not exist is OSError(ENOENT).
"""

import hashlib
import os
import sys

from ports import unix as _board
from ports.unix import _file  # the board layer's one helper for the small files of .board/

BLOCK = 4096
_SLOTS = ("ota_0", "ota_1")
_SLOT_SIZE = 0x180000  # partitions-4MiB-ota.csv
_FACTORY_SIZE = 0x1F0000  # partitions-4MiB.csv
_APP_ADDR = 0x10000  # flash address of the first app partition in both tables
_CHIP_ID = 0  # the extended header's chip id of an ESP32 (S2: 2, C3: 5, S3: 9): what this board accepts
_MAX_SEGMENTS = 16  # ESP_IMAGE_MAX_SEGMENTS
_CHUNK = 256  # bytes read at a time while an image is verified (its integers stay small on a 32 KB heap)
_ENOENT = 2
_SKIPPED = ("invalid", "aborted")  # entries the bootloader no longer counts



def load(boot):
    """The Partition class, for the caller of ports/unix.py's ota_partition() alone: this module leaves sys.modules
    and the package (which goes too: app.py unloads it once the board module is known), so its heap goes back once the
    caller drops the class. With `boot` (unix.py's boot()): the bootloader's step first; the slot it chose stays in
    the board module (_slot) for the rest of the boot."""
    del sys.modules["ports.unix_partition"]
    pkg = sys.modules.pop("ports", None)
    if pkg is not None:  # (a caller may still hold the package: it keeps no reference to this module)
        pkg.__dict__.pop("unix_partition", None)
    if boot:
        _board._slot = Partition.bootloader()
    return Partition


def _error(code, name):
    return OSError(-code, name)  # as the ESP32 port's check_esp_err raises it


def _ota_size():
    text = _file("ota_size")
    return int(text) if text else _SLOT_SIZE


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=BLOCK):
        if block_size != BLOCK:
            raise ValueError("block_size: only %d here" % BLOCK)
        ota = _ota_size()
        labels = _SLOTS if ota else ("factory",)
        if id == Partition.RUNNING:
            id = _board._slot or labels[0]
        elif id == Partition.BOOT:
            id = labels[_boot_slot(_read())] if ota else labels[0]
        if id not in labels:
            raise OSError(_ENOENT)
        self._label = id
        self._size = ota or _FACTORY_SIZE
        self._path = ".board/" + id

    def info(self):
        """(type, subtype, addr, size, label, encrypted), as the ESP32 port answers."""
        if self._label == "factory":
            return (0, 0, _APP_ADDR, self._size, "factory", False)
        i = _SLOTS.index(self._label)
        return (0, 0x10 + i, _APP_ADDR + i * self._size, self._size, self._label, False)

    def get_next_update(self):
        """The other OTA slot; OSError(ENOENT) when the partition table has none."""
        if self._label == "factory":
            raise OSError(_ENOENT)
        return Partition(_SLOTS[1 - _SLOTS.index(self._label)])

    def readblocks(self, n, buf, offset=0):
        start = n * BLOCK + offset
        self._check(start, len(buf))
        got = 0
        try:
            with open(self._path, "rb") as f:
                f.seek(start)
                got = f.readinto(buf) or 0
        except OSError:  # no file: all erased
            pass
        for i in range(got, len(buf)):
            buf[i] = 0xFF

    def writeblocks(self, n, buf, offset=None):
        start = n * BLOCK
        if offset is None:  # erase, then write: esp_partition_erase_range takes whole blocks only
            if len(buf) % BLOCK:
                raise _error(0x104, "ESP_ERR_INVALID_SIZE")
            self._check(start, len(buf))
            data = buf
        else:
            start += offset
            self._check(start, len(buf))
            old = bytearray(len(buf))
            self.readblocks(0, old, start)
            data = (int.from_bytes(old, "big") & int.from_bytes(buf, "big")).to_bytes(len(buf), "big")
        self._put(start, data)

    def ioctl(self, op, arg):
        if op in (1, 2, 3):  # init, deinit, sync
            return 0
        if op == 4:
            return self._size // BLOCK
        if op == 5:
            return BLOCK
        if op == 6:  # erase one block
            self.writeblocks(arg, b"\xff" * BLOCK)
            return 0
        return None

    def set_boot(self):
        """Boot this slot at the next reset, "new" (on trial). Refuses an image the bootloader would not load
        (OSError ESP_ERR_OTA_VALIDATE_FAILED), as esp_ota_set_boot_partition() does."""
        if not _verify(self):
            raise _error(0x1503, "ESP_ERR_OTA_VALIDATE_FAILED")
        if self._label == "factory":  # a table without OTA slots has no otadata partition
            raise _error(0x105, "ESP_ERR_NOT_FOUND")
        slot = _SLOTS.index(self._label)
        entries = _read()
        active = _active(entries)
        if active < 0:
            i, seq = 0, slot + 1
        elif (entries[active][0] - 1) % 2 == slot:  # already chosen: only its state changes
            i, seq = active, entries[active][0]
        else:  # the other entry, with the next sequence number that selects this slot
            i, seq = 1 - active, entries[active][0] + 1
        entries[i] = [seq, "new"]
        _write(entries)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        """The running app is good: its entry becomes "valid", and no boot rolls it back.

        Nothing is written when it is valid already. OSError ESP_ERR_NOT_FOUND without an otadata partition;
        ESP_FAIL when no entry counts (ESP-IDF's "Running firmware is factory").
        """
        if not _ota_size():
            raise _error(0x105, "ESP_ERR_NOT_FOUND")
        entries = _read()
        active = _active(entries)
        if active < 0:
            raise _error(-1, "ESP_FAIL")
        if entries[active][1] != "valid":
            entries[active][1] = "valid"
            _write(entries)

    @staticmethod
    def bootloader():
        """The stand-in's own (load() at boot()): what an ESP32's bootloader does at a reset. The
        label of the slot this boot runs, chosen by the rules above, with otadata updated."""
        if not _ota_size():
            return "factory"
        entries = _read()
        changed = False
        for e in entries:
            if e and e[1] == "pending_verify":  # its app had its boot and never confirmed it
                e[1] = "aborted"
                changed = True
        active = _active(entries)
        if active >= 0 and entries[active][1] == "new":
            entries[active][1] = "pending_verify"
            changed = True
        if changed:
            _write(entries)
        first = _boot_slot(entries)
        for i in (first, 1 - first):
            if _verify(Partition(_SLOTS[i])):
                return _SLOTS[i]
        raise OSError("bootloader: no bootable app in ota_0 or ota_1")

    def _check(self, start, n):
        if start > self._size:
            raise _error(0x102, "ESP_ERR_INVALID_ARG")
        if n > self._size - start:
            raise _error(0x104, "ESP_ERR_INVALID_SIZE")

    def _put(self, start, data):
        try:
            f = open(self._path, "r+b")
        except OSError:  # a new slot file (and .board/, on a board that never booted)
            try:
                os.mkdir(".board")
            except OSError:
                pass
            f = open(self._path, "w+b")
        with f:
            end = f.seek(0, 2)
            while end < start:  # never a hole of zeros: what was never written is erased flash
                end += f.write(b"\xff" * min(BLOCK, start - end))
            f.seek(start)
            f.write(data)

    def _exists(self):
        try:
            os.stat(self._path)
            return True
        except OSError:
            return False


def _read():
    """otadata's two entries, each [seq, state] or None (erased or unreadable)."""
    text = _file("otadata")
    if not text:
        return [[1, "valid"], None]
    entries = []
    for line in (text.split("\n") + ["", ""])[:2]:
        parts = line.split()
        try:
            entries.append([int(parts[0]), parts[1]] if len(parts) == 2 else None)
        except ValueError:
            entries.append(None)
    return entries


def _write(entries):
    _file("otadata", "".join("%d %s\n" % (e[0], e[1]) if e else "-\n" for e in entries))


def _active(entries):
    """Index of the entry that chooses the slot (the highest seq of those that count), or -1."""
    best = -1
    for i in (0, 1):
        e = entries[i]
        if e and e[1] not in _SKIPPED and (best < 0 or e[0] > entries[best][0]):
            best = i
    return best


def _boot_slot(entries):
    active = _active(entries)
    return 0 if active < 0 else (entries[active][0] - 1) % 2


def _verify(p):
    """True when p holds an ESP32 app image that ESP-IDF's esp_image_verify accepts: magic 0xE9, at most 16
    segments of a length in 4-byte words inside the partition, the ESP32's chip id, the XOR checksum and, when the
    header says one is appended, the SHA-256 of the image."""
    if p._label == "ota_0" and not p._exists():
        return True  # the app the board was deployed with
    head = bytearray(24)
    p.readblocks(0, head)
    if head[0] != 0xE9 or head[1] > _MAX_SEGMENTS or head[12] | head[13] << 8 != _CHIP_ID:
        return False
    sha = hashlib.sha256(head)
    checksum = 0xEF
    pos = 24
    seg = bytearray(8)
    chunk = bytearray(_CHUNK)
    try:
        for _ in range(head[1]):
            p.readblocks(0, seg, pos)
            sha.update(seg)
            left = int.from_bytes(seg[4:], "little")
            if left % 4:
                return False
            pos += 8
            while left:
                part = memoryview(chunk)[: min(left, _CHUNK)]
                p.readblocks(0, part, pos)
                sha.update(part)
                checksum = _xor(part, checksum)
                pos += len(part)
                left -= len(part)
        tail = memoryview(chunk)[: 16 - pos % 16]  # zero padding to 16 bytes, the checksum the last of them
        p.readblocks(0, tail, pos)
        if tail[-1] != checksum:
            return False
        sha.update(tail)
        pos += len(tail)
        if head[23] == 1:
            digest = bytearray(32)
            p.readblocks(0, digest, pos)
            return digest == sha.digest()
        return True
    except OSError:  # a length past the partition's end
        return False


def _xor(data, x):
    """x XOR every byte of data (folded as one integer: the unix port's long ints do it natively)."""
    n = len(data)
    v = int.from_bytes(data, "little")
    while n > 1:
        half = (n + 1) // 2
        v = (v & ((1 << 8 * half) - 1)) ^ (v >> 8 * half)
        n = half
    return x ^ v
