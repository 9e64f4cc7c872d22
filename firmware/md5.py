"""MD5 (RFC 1321) in plain MicroPython, for ports built without hashlib.md5 (ESP8266).

    h = md5(b"first part")
    h.update(b"more")
    h.hexdigest()  # '...' (32 hex digits)

Memory: one 64-byte buffer and four state words per object; whole blocks are hashed straight from the
caller's buffer, only a partial block is copied. digest() may be called at any time, and update() goes
on after it (unlike the native hashlib.md5 of MicroPython).
"""

from binascii import hexlify
from struct import pack, pack_into, unpack_from

from micropython import const

_MASK = const(0xFFFFFFFF)

# T[i] = floor(2**32 * abs(sin(i + 1))), RFC 1321 section 3.4.
_T = (
    0xD76AA478, 0xE8C7B756, 0x242070DB, 0xC1BDCEEE,
    0xF57C0FAF, 0x4787C62A, 0xA8304613, 0xFD469501,
    0x698098D8, 0x8B44F7AF, 0xFFFF5BB1, 0x895CD7BE,
    0x6B901122, 0xFD987193, 0xA679438E, 0x49B40821,
    0xF61E2562, 0xC040B340, 0x265E5A51, 0xE9B6C7AA,
    0xD62F105D, 0x02441453, 0xD8A1E681, 0xE7D3FBC8,
    0x21E1CDE6, 0xC33707D6, 0xF4D50D87, 0x455A14ED,
    0xA9E3E905, 0xFCEFA3F8, 0x676F02D9, 0x8D2A4C8A,
    0xFFFA3942, 0x8771F681, 0x6D9D6122, 0xFDE5380C,
    0xA4BEEA44, 0x4BDECFA9, 0xF6BB4B60, 0xBEBFBC70,
    0x289B7EC6, 0xEAA127FA, 0xD4EF3085, 0x04881D05,
    0xD9D4D039, 0xE6DB99E5, 0x1FA27CF8, 0xC4AC5665,
    0xF4292244, 0x432AFF97, 0xAB9423A7, 0xFC93A039,
    0x655B59C3, 0x8F0CCC92, 0xFFEFF47D, 0x85845DD1,
    0x6FA87E4F, 0xFE2CE6E0, 0xA3014314, 0x4E0811A1,
    0xF7537E82, 0xBD3AF235, 0x2AD7D2BB, 0xEB86D391,
)

# The message word each step of rounds 2, 3 and 4 reads: (1 + 5i), (5 + 3i) and 7i, modulo 16.
_X = (
    1, 6, 11, 0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12,
    5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2,
    0, 7, 14, 5, 12, 3, 10, 1, 8, 15, 6, 13, 4, 11, 2, 9,
)


def _transform(h, buf, off):
    # Hash the 64-byte block at buf[off:] into the state list h (four 32-bit words A, B, C, D).
    x = unpack_from("<16I", buf, off)
    t_ = _T
    x_ = _X
    a, b, c, d = h
    # Round 1: F(b, c, d) = (b & c) | (~b & d); rotations 7, 12, 17, 22.
    for i in range(0, 16, 4):
        t = (a + (d ^ (b & (c ^ d))) + x[i] + t_[i]) & _MASK
        a = (b + ((t << 7 | t >> 25) & _MASK)) & _MASK
        t = (d + (c ^ (a & (b ^ c))) + x[i + 1] + t_[i + 1]) & _MASK
        d = (a + ((t << 12 | t >> 20) & _MASK)) & _MASK
        t = (c + (b ^ (d & (a ^ b))) + x[i + 2] + t_[i + 2]) & _MASK
        c = (d + ((t << 17 | t >> 15) & _MASK)) & _MASK
        t = (b + (a ^ (c & (d ^ a))) + x[i + 3] + t_[i + 3]) & _MASK
        b = (c + ((t << 22 | t >> 10) & _MASK)) & _MASK
    # Round 2: G(b, c, d) = (b & d) | (c & ~d); rotations 5, 9, 14, 20.
    for i in range(16, 32, 4):
        t = (a + (c ^ (d & (b ^ c))) + x[x_[i - 16]] + t_[i]) & _MASK
        a = (b + ((t << 5 | t >> 27) & _MASK)) & _MASK
        t = (d + (b ^ (c & (a ^ b))) + x[x_[i - 15]] + t_[i + 1]) & _MASK
        d = (a + ((t << 9 | t >> 23) & _MASK)) & _MASK
        t = (c + (a ^ (b & (d ^ a))) + x[x_[i - 14]] + t_[i + 2]) & _MASK
        c = (d + ((t << 14 | t >> 18) & _MASK)) & _MASK
        t = (b + (d ^ (a & (c ^ d))) + x[x_[i - 13]] + t_[i + 3]) & _MASK
        b = (c + ((t << 20 | t >> 12) & _MASK)) & _MASK
    # Round 3: H(b, c, d) = b ^ c ^ d; rotations 4, 11, 16, 23.
    for i in range(32, 48, 4):
        t = (a + (b ^ c ^ d) + x[x_[i - 16]] + t_[i]) & _MASK
        a = (b + ((t << 4 | t >> 28) & _MASK)) & _MASK
        t = (d + (a ^ b ^ c) + x[x_[i - 15]] + t_[i + 1]) & _MASK
        d = (a + ((t << 11 | t >> 21) & _MASK)) & _MASK
        t = (c + (d ^ a ^ b) + x[x_[i - 14]] + t_[i + 2]) & _MASK
        c = (d + ((t << 16 | t >> 16) & _MASK)) & _MASK
        t = (b + (c ^ d ^ a) + x[x_[i - 13]] + t_[i + 3]) & _MASK
        b = (c + ((t << 23 | t >> 9) & _MASK)) & _MASK
    # Round 4: I(b, c, d) = c ^ (b | ~d); rotations 6, 10, 15, 21.
    for i in range(48, 64, 4):
        t = (a + (c ^ (b | (d ^ _MASK))) + x[x_[i - 16]] + t_[i]) & _MASK
        a = (b + ((t << 6 | t >> 26) & _MASK)) & _MASK
        t = (d + (b ^ (a | (c ^ _MASK))) + x[x_[i - 15]] + t_[i + 1]) & _MASK
        d = (a + ((t << 10 | t >> 22) & _MASK)) & _MASK
        t = (c + (a ^ (d | (b ^ _MASK))) + x[x_[i - 14]] + t_[i + 2]) & _MASK
        c = (d + ((t << 15 | t >> 17) & _MASK)) & _MASK
        t = (b + (d ^ (c | (a ^ _MASK))) + x[x_[i - 13]] + t_[i + 3]) & _MASK
        b = (c + ((t << 21 | t >> 11) & _MASK)) & _MASK
    h[0] = (h[0] + a) & _MASK
    h[1] = (h[1] + b) & _MASK
    h[2] = (h[2] + c) & _MASK
    h[3] = (h[3] + d) & _MASK


class md5:
    """A hashlib-like MD5: update(data), digest() -> 16 bytes, hexdigest() -> 32 lowercase hex digits."""

    def __init__(self, data=None):
        self._h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
        self._buf = bytearray(64)  # the pending partial block
        self._fill = 0  # bytes pending in _buf
        self._len = 0  # bytes hashed so far
        if data is not None:
            self.update(data)

    def update(self, data):
        """Add the bytes of `data` (any object with the buffer protocol)."""
        mv = memoryview(data)
        n = len(mv)
        self._len += n
        buf = self._buf
        fill = self._fill
        i = 0
        if fill:
            i = min(64 - fill, n)
            buf[fill : fill + i] = mv[:i]
            fill += i
            if fill < 64:
                self._fill = fill
                return
            _transform(self._h, buf, 0)
        h = self._h
        while n - i >= 64:
            _transform(h, mv, i)
            i += 64
        fill = n - i
        if fill:
            buf[:fill] = mv[i:]
        self._fill = fill

    def digest(self):
        """The 16-byte digest of everything added so far; the object stays usable."""
        h = list(self._h)
        fill = self._fill
        block = bytearray(64)
        block[:fill] = memoryview(self._buf)[:fill]
        block[fill] = 0x80
        if fill >= 56:  # no room left for the length: it goes in one more block
            _transform(h, block, 0)
            block = bytearray(64)
        bits = self._len << 3
        pack_into("<II", block, 56, bits & _MASK, (bits >> 32) & _MASK)
        _transform(h, block, 0)
        return pack("<4I", h[0], h[1], h[2], h[3])

    def hexdigest(self):
        return hexlify(self.digest()).decode()
