"""The partition method of an OTA (ESP32): an app image written into the next OTA slot, read back, then booted.

    start(b, size)                  # the update slot, checked for room (repeatable: a resumed download calls it again)
    write(b, offset, buf, n)        # each block as the download brings it (offset a multiple of 4096)
    md5, sha256 = digest(b, size)   # read back from flash: compared with the command's before anything switches
    apply(b, md5, version)          # remembered for the slot, set_boot(); the caller resets
    # after the reset, in the new app, once it reached the broker:
    confirm(b)                      # mark_app_valid_cancel_rollback(): the bootloader no longer rolls it back
    running(b)                      # {"version", "md5"} of the running slot, when an OTA wrote it

b is the board module; b.ota_partition() is esp32.Partition on an ESP32, the emulated board's stand-in
(ports/unix_partition.py) on the unix port, None on the ESP8266. The new slot boots on trial: a reset before
confirm() returns to the previous one (ESP-IDF's app rollback, enabled in MicroPython's ESP32 builds since 1.21; a
board whose bootloader was flashed before that never rolls back, as an OTA does not replace the bootloader).

What an OTA wrote into each slot is kept in ota_slots.json, {"<slot label>": {"md5", "version"}}: the bootloader
decides which slot runs, and running() looks the answer up there, so that status reports the new md5 after an OTA and
the old one after a rollback. A slot deployed over USB (esptool) has no entry.

Heap: one 512-byte read-back buffer, made at the first write() or digest(), besides the caller's 4096-byte block.
"""

import json
import os

from micropython import const

_BLOCK = const(4096)  # the ESP32 port's block: writeblocks(n, buf) erases and programs whole 4096-byte sectors
_CHUNK = const(512)  # bytes read back at a time: verifying costs this, not a second block
_FACTS = "ota_slots.json"

_slot = None  # the update slot (start())
_chunk = None  # the read-back buffer


def start(b, size):
    """The next update slot for an image of `size` bytes, checked for room; its facts in ota_slots.json are dropped
    (its bytes are about to change). Writes nothing to flash.

    Raises OSError("this build has no OTA partitions") (the ESP8266; an ESP32 build without OTA slots),
    ValueError("image larger than the OTA slot (N > M bytes)").
    """
    global _slot
    slot = _update_slot(b)
    room = slot.info()[3]
    if size > room:
        raise ValueError("image larger than the OTA slot (%d > %d bytes)" % (size, room))
    if size < 1:
        raise ValueError("empty image")
    _remember(slot.info()[4], None)
    _slot = slot
    return slot


def write(b, offset, buf, n):
    """Write the first n bytes of buf (0 < n <= 4096) at `offset` of the update slot (a multiple of 4096), then read
    them back.

    buf: a bytearray of at least 4096 bytes; past n it is filled with 0xFF (erased flash), since the block is written
    whole. The form writeblocks(block, buf) is used, the one that erases the block first: the slot still holds an
    older image, and programming flash only clears bits (writeblocks(block, buf, offset) does not erase).
    Raises ValueError (offset, n or buf), OSError (the flash refused the write, or read back other bytes).
    """
    if offset % _BLOCK or not 0 < n <= _BLOCK or len(buf) < _BLOCK:
        raise ValueError("OTA write: %d bytes at %d" % (n, offset))
    for i in range(n, _BLOCK):
        buf[i] = 0xFF
    block = memoryview(buf)[:_BLOCK] if len(buf) > _BLOCK else buf
    slot = _update_slot(b)
    number = offset // _BLOCK
    slot.writeblocks(number, block)
    chunk = _buffer()
    view = memoryview(block)
    for i in range(0, _BLOCK, _CHUNK):
        slot.readblocks(number, chunk, i)
        if chunk != view[i : i + _CHUNK]:
            raise OSError("flash write failed at byte %d of the OTA slot" % (offset + i))


def digest(b, size):
    """(md5 hex, sha256 hex) of the first `size` bytes of the update slot, read back from flash. Feeds the watchdog."""
    import hashlib
    from binascii import hexlify

    slot = _update_slot(b)
    md5 = hashlib.md5()
    sha = hashlib.sha256()
    chunk = _buffer()
    pos = 0
    while pos < size:
        slot.readblocks(pos // _BLOCK, chunk, pos % _BLOCK)
        part = chunk if size - pos >= _CHUNK else memoryview(chunk)[: size - pos]
        md5.update(part)
        sha.update(part)
        pos += _CHUNK
        if not pos % _BLOCK:
            b.feed()
    return hexlify(md5.digest()).decode(), hexlify(sha.digest()).decode()


def apply(b, md5, version):
    """Remember {md5, version} for the update slot, then make it boot next (set_boot()). The caller resets.

    Raises OSError when set_boot() refuses the image (it validates it as the bootloader will: "not a bootable ESP32
    app image (ESP_ERR_OTA_VALIDATE_FAILED)"); nothing switched then. The facts go first: a power cut between the
    two leaves them for a slot that does not boot, never a booting slot without them.
    """
    slot = _update_slot(b)
    label = slot.info()[4]
    _remember(label, {"md5": md5, "version": version})
    try:
        slot.set_boot()
    except OSError as e:
        _remember(label, None)
        raise OSError("not a bootable ESP32 app image (%s)" % (e.args[-1] if e.args else e))


def confirm(b):
    """The running app reached the broker: mark it valid, so that no reset rolls it back. True when done (also when
    it was valid already: nothing is written then); False where there is nothing to confirm: no OTA partitions
    (ESP-IDF: ESP_ERR_NOT_FOUND, no otadata), or no otadata entry chooses a slot (ESP_FAIL). Call it once running()
    reports the job's md5: ESP-IDF marks the newest entry valid even when the bootloader had to pass over its image
    and booted the other slot."""
    P = b.ota_partition()
    if P is None:
        return False
    try:
        P.mark_app_valid_cancel_rollback()
        return True
    except OSError:
        return False


def running(b):
    """{"version", "md5"} of the running slot when an OTA wrote it, else None. Costs one failed open until a
    partition OTA wrote ota_slots.json."""
    facts = _facts()
    if not facts:
        return None
    P = b.ota_partition()
    if P is None:
        return None
    fact = facts.get(P(P.RUNNING).info()[4])
    if type(fact) is not dict:
        return None
    return {"version": fact.get("version"), "md5": fact.get("md5")}


def _update_slot(b):
    global _slot
    if _slot is None:
        P = b.ota_partition()
        try:
            if P is None:
                raise OSError(2)
            _slot = P(P.RUNNING).get_next_update()
        except OSError:  # ENOENT: the partition table has no OTA slots
            raise OSError("this build has no OTA partitions")
    return _slot


def _buffer():
    global _chunk
    if _chunk is None:
        _chunk = bytearray(_CHUNK)
    return _chunk


def _facts():
    """ota_slots.json as a dict ({} when missing or damaged); its .tmp when only that exists (a power cut inside
    a rename over the old file, which is not atomic on FAT)."""
    for name in (_FACTS, _FACTS + ".tmp"):
        try:
            with open(name) as f:
                facts = json.load(f)
            if type(facts) is dict:
                return facts
        except (OSError, ValueError):
            pass
    return {}


def _remember(label, fact):
    """Set (or, with None, drop) the entry of slot `label`; written only when it changes."""
    facts = _facts()
    if facts.get(label) == fact:
        return
    if fact is None:
        del facts[label]
    else:
        facts[label] = fact
    with open(_FACTS + ".tmp", "w") as f:
        json.dump(facts, f)
    os.rename(_FACTS + ".tmp", _FACTS)
