"""firmware/md5.py and the board layer's md5 choice, on the unix port, from the compiled .mpy."""

import hashlib
import json
import random

from .micropython import check

# RFC 1321, appendix A.5.
RFC_1321_VECTORS = {
    "": "d41d8cd98f00b204e9800998ecf8427e",
    "a": "0cc175b9c0f1b6a831c399e269772661",
    "abc": "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    "abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": "d174ab98d277d9f5a5611c2c9f419d9f",
    "1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
}


def hide_native_md5(tmp_path):
    """A directory with a hashlib.py like the ESP8266's (sha1 and sha256, no md5), to put first on the path."""
    stubs = tmp_path / "esp8266"
    stubs.mkdir()
    (stubs / "hashlib.py").write_text("sha1 = sha256 = None  # no md5, as on the ESP8266 port\n")
    return stubs


def test_rfc_1321_vectors_with_native_md5_hidden(flash, tmp_path):
    code = f"""
import hashlib, ports
from md5 import md5
assert not hasattr(hashlib, "md5")
assert ports.md5().__class__ is md5
for message, expected in {RFC_1321_VECTORS!r}.items():
    m = message.encode()
    assert md5(m).hexdigest() == expected, message
    assert ports.md5(m).hexdigest() == expected, message
    h = md5()  # byte by byte
    for i in range(len(m)):
        h.update(m[i : i + 1])
    assert h.hexdigest() == expected, message
print("ok", len({RFC_1321_VECTORS!r}))
"""
    assert check(code, flash, path_before=[hide_native_md5(tmp_path)]) == "ok 7\n"


def test_same_as_native_around_block_edges(flash):
    lengths = [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 1000]
    lengths += random.Random(7).sample(range(2, 700), 10)
    code = f"""
import hashlib, os
from md5 import md5
for n in {lengths!r}:
    data = os.urandom(n)
    mine = md5(data)
    assert mine.digest() == hashlib.md5(data).digest(), n
    assert mine.digest() == hashlib.md5(data).digest(), n  # digest() leaves the object as it was
    mine.update(b"more")
    assert mine.digest() == hashlib.md5(data + b"more").digest(), n
print("ok")
"""
    assert check(code, flash) == "ok\n"


def test_10_kb_in_odd_chunks(flash):
    data = random.Random(1321).randbytes(10 * 1024 + 5)
    (flash / "data.bin").write_bytes(data)
    chunk_sizes = [1, 3, 7, 13, 55, 56, 61, 63, 64, 65, 127, 129, 1000, 4097]
    code = f"""
import hashlib
from md5 import md5
data = open("data.bin", "rb").read()
out = []
for size in {chunk_sizes!r}:
    h = md5()
    for i in range(0, len(data), size):
        h.update(memoryview(data)[i : i + size])
    out.append(h.hexdigest())
native = hashlib.md5(data).digest()
assert md5(bytearray(data)).digest() == native
print(out)
"""
    # Compared with CPython's md5 here, not only with the port's.
    digests = json.loads(check(code, flash).replace("'", '"'))
    assert digests == [hashlib.md5(data).hexdigest()] * len(chunk_sizes)


def test_hexdigest_is_hexlified_digest(flash):
    code = """
from binascii import hexlify
from md5 import md5
h = md5(b"mpfleet")
print(h.hexdigest() == hexlify(h.digest()).decode(), len(h.digest()), type(h.hexdigest()) is str)
"""
    assert check(code, flash) == "True 16 True\n"


def test_board_layer_picks_the_native_md5_when_present(flash):
    code = """
import hashlib, ports
h = ports.md5(b"abc")
print(type(h) is hashlib.md5, h.digest() == hashlib.md5(b"abc").digest())
"""
    assert check(code, flash) == "True True\n"


def test_hashes_10_kb_in_a_12_kb_heap(flash):
    # Memory: state, one block buffer and short-lived temporaries; the input is never copied whole.
    code = """
from md5 import md5
block = bytearray(1024)
h = md5()
for i in range(10):
    block[0] = i
    h.update(block)
print(h.hexdigest())
"""
    expected = hashlib.md5(b"".join(bytes([i]) + bytes(1023) for i in range(10))).hexdigest()
    assert check(code, flash, heapsize="12k") == expected + "\n"
